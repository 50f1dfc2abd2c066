"""Local Cosmos DB (@vercel/cosmosdb-server) and Storage (Azurite) servers for the BabyBloom functions app's tests.

The session starts both from the project's node_modules on free ports on 127.0.0.1, waits until each answers a real
request, and stops them by process group at the end, also when a test or the start-up fails. Handlers run through
real func.HttpRequest / TimerRequest / QueueMessage objects against those servers.
"""

from __future__ import annotations

import base64
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import azure.functions as func
import jwt
import pytest
from azure.cosmos import CosmosClient, DatabaseProxy, PartitionKey
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient, QueueServiceClient

ROOT = Path(__file__).resolve().parents[3]
APP_DIR = ROOT / "services" / "babybloom_functions"
BIN = ROOT / "node_modules" / ".bin"
# The Functions host puts the app root on sys.path; the tests do the same to import function_app.py as it runs.
sys.path.insert(0, str(APP_DIR))

import function_app  # noqa: E402
from babybloom_app import identity, runtime, settings  # noqa: E402
from refarch.stacks.babybloom.program import CONTAINERS, DATABASE, REMINDER_QUEUE  # noqa: E402

from tests.servers import ServerProcess, wait_until  # noqa: E402

from .identity_provider import LocalIdentityProvider  # noqa: E402

# The local Cosmos server does not check keys, but the SDK needs one in key form; this one opens nothing anywhere.
EMULATOR_KEY = base64.b64encode(b"local cosmosdb-server: any key").decode()
# Azurite's published development account (it accepts only this); it exists on no Azure storage service.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT_SECONDS = 60
TODAY = date(2026, 3, 2)  # a fixed "today" so dating and ranges are exact
TENANT_ID = "7d3c0f4e-5b1a-4c8e-9f2d-1a2b3c4d5e6f"
CLIENT_ID = "0b6f2d9a-8c4e-4f1b-a3d5-6e7f8a9b0c1d"


@dataclass(frozen=True)
class LocalServers:
    cosmos_endpoint: str
    queue_endpoint: str
    startup_seconds: dict[str, float]

    @property
    def queue_connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                f"QueueEndpoint={self.queue_endpoint};")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for name, seconds in STARTUP_SECONDS.items():
        terminalreporter.write_line(f"babybloom: {name} answered {seconds:.2f} s after the session started it")


STARTUP_SECONDS: dict[str, float] = {}


@pytest.fixture(scope="session")
def local_servers() -> Iterator[LocalServers]:
    started: list[ServerProcess] = []
    workspace = tempfile.TemporaryDirectory(prefix="babybloom-azurite-")
    try:
        began = time.monotonic()
        deadline = began + START_TIMEOUT_SECONDS
        cosmos = ServerProcess("cosmosdb-server", [str(BIN / "cosmosdb-server"), "--host", "127.0.0.1", "--port", "0"],
                               cwd=ROOT)
        started.append(cosmos)
        azurite = ServerProcess("azurite", [
            # The Storage SDK speaks a newer service version than Azurite knows; the queue operations used are the same.
            str(BIN / "azurite"), "--silent", "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck",
            "--blobHost", "127.0.0.1", "--blobPort", "0", "--queueHost", "127.0.0.1", "--queuePort", "0",
            "--tableHost", "127.0.0.1", "--tablePort", "0",
        ], cwd=Path(workspace.name))
        started.append(azurite)
        cosmos_port = cosmos.wait_for(re.compile(r"HTTPS connections at 127\.0\.0\.1:(\d+)"), deadline).group(1)
        servers = LocalServers(
            cosmos_endpoint=f"https://127.0.0.1:{cosmos_port}/",
            queue_endpoint="http://127.0.0.1:{}/{}".format(
                azurite.wait_for(re.compile(r"Queue service is successfully listening at \S+:(\d+)"), deadline)
                .group(1), AZURITE_ACCOUNT),
            startup_seconds={},
        )
        client = CosmosClient(servers.cosmos_endpoint, credential=EMULATOR_KEY, connection_verify=False)
        wait_until(lambda: list(client.list_databases()), deadline, "cosmosdb-server")
        STARTUP_SECONDS["cosmosdb-server"] = servers.startup_seconds["cosmosdb-server"] = time.monotonic() - began
        queues = QueueServiceClient.from_connection_string(servers.queue_connection_string)
        wait_until(queues.get_service_properties, deadline, "azurite")
        STARTUP_SECONDS["azurite"] = servers.startup_seconds["azurite"] = time.monotonic() - began
        yield servers
    finally:
        for server in started:
            server.stop()
        workspace.cleanup()


_PROVIDER: list[LocalIdentityProvider] = []


@pytest.fixture(scope="session")
def identity_provider() -> Iterator[LocalIdentityProvider]:
    """The stand-in Entra ID tenant whose tokens the app accepts (principal() signs with it)."""
    with LocalIdentityProvider(tenant_id=TENANT_ID, client_id=CLIENT_ID).running() as provider:
        _PROVIDER.append(provider)
        try:
            yield provider
        finally:
            _PROVIDER.remove(provider)


@pytest.fixture(scope="session")
def app_settings(local_servers: LocalServers, identity_provider: LocalIdentityProvider) -> dict[str, str]:
    """What local.settings.json would hold for a developer: the emulators, and nothing that reaches Azure."""
    return {
        settings.COSMOS_ENDPOINT: local_servers.cosmos_endpoint,
        settings.COSMOS_DATABASE: DATABASE,
        settings.COSMOS_EMULATOR_KEY: EMULATOR_KEY,
        settings.REMINDER_QUEUE: REMINDER_QUEUE,
        settings.REMINDERS_CONNECTION: local_servers.queue_connection_string,
        settings.AUTH_ISSUER: identity_provider.issuer,
        settings.AUTH_CLIENT_ID: identity_provider.client_id,
    }


@pytest.fixture(scope="session")
def database(local_servers: LocalServers) -> DatabaseProxy:
    """The database and containers the Pulumi program declares (same names and partition keys, not retyped)."""
    client = CosmosClient(local_servers.cosmos_endpoint, credential=EMULATOR_KEY, connection_verify=False)
    created = client.create_database_if_not_exists(DATABASE)
    for spec in CONTAINERS:
        created.create_container_if_not_exists(spec.name, PartitionKey(path=spec.partition_key))
    return created


@pytest.fixture(scope="session")
def reminder_queue(local_servers: LocalServers) -> QueueClient:
    client = QueueClient.from_connection_string(local_servers.queue_connection_string, REMINDER_QUEUE)
    client.create_queue()
    return client


@pytest.fixture
def services(app_settings: dict[str, str], database: DatabaseProxy,
             reminder_queue: QueueClient) -> Iterator[runtime.Services]:
    """The app's services built from its settings (as in Azure, through load_config), with the clock pinned."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in app_settings.items():
            patch.setenv(name, value)
        built = runtime.Services.from_config(settings.load_config(os.environ), today=lambda: TODAY)
        runtime.install(built)
        try:
            yield built
        finally:
            runtime.install(None)


@pytest.fixture
def empty_store(database: DatabaseProxy, reminder_queue: QueueClient) -> DatabaseProxy:
    """For tests that look across all users (the reminder timer): no items and no messages from other tests."""
    for spec in CONTAINERS:
        container = database.get_container_client(spec.name)
        key = spec.partition_key.lstrip("/")
        for item in list(container.query_items("SELECT * FROM c", enable_cross_partition_query=True)):
            container.delete_item(item["id"], partition_key=item[key])
    reminder_queue.clear_messages()
    return database


def principal(object_id: str | None = None) -> str:
    """A valid access token of the test tenant for a user (a new user unless `object_id` names one)."""
    assert _PROVIDER, "principal() needs the identity_provider fixture (the services fixture brings it)"
    return _PROVIDER[-1].access_token(object_id or str(uuid.uuid4()))


def signed_in(token: str) -> dict[str, str]:
    """The request headers of a caller presenting `token`."""
    return {"Authorization": f"Bearer {token}"}


def user_id_of(token: str) -> str:
    """The user id the app derives from a token (its oid), for tests that look into the store."""
    return identity.user_id_of(jwt.decode(token, options={"verify_signature": False})["oid"])


def call(function: Any, request: Any) -> Any:
    """Run a decorated function the way the worker does: the builder's user function with the trigger's object."""
    return function.build().get_user_function()(request)


def http(function: Any, request: func.HttpRequest) -> func.HttpResponse:
    response = call(function, request)
    assert isinstance(response, func.HttpResponse)
    return response


def queue_message(*, id: str, body: bytes, dequeue_count: int = 1, pop_receipt: str | None = None) -> QueueMessage:
    """The concrete message type the worker hands a queue trigger (azure.functions leaves its __init__ untyped)."""
    return QueueMessage(id=id, body=body, dequeue_count=dequeue_count,  # type: ignore[no-untyped-call]
                        pop_receipt=pop_receipt)


def snapshot(database: DatabaseProxy) -> dict[str, list[dict[str, Any]]]:
    """Every item of every container, for asserting that a refused request changed nothing."""
    return {
        spec.name: sorted(
            database.get_container_client(spec.name).query_items("SELECT * FROM c", enable_cross_partition_query=True),
            key=lambda item: str(item["id"]),
        )
        for spec in CONTAINERS
    }


__all__ = ["TODAY", "call", "function_app", "http", "principal", "queue_message", "signed_in", "snapshot",
           "user_id_of"]
