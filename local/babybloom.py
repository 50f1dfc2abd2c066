"""BabyBloom on this machine: cosmosdb-server and Azurite on 127.0.0.1, and the Functions app served by the local
host (functions_host) with the app settings the offline Pulumi plan gives the function app.

Settings that name Azure endpoints reached with the managed identity are pointed at the local servers instead (the
emulators accept only their well-known keys, which the app accepts only for endpoints on this machine); the
database and containers are created from the plan, with the plan's partition keys.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .identity_provider import LocalIdentityProvider, SigningKey
from .processes import LocalError, Registry, free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
APP_DIR = ROOT / "services" / "babybloom_functions"
BIN = ROOT / "node_modules" / ".bin"
# The local Cosmos server checks no key, but the SDK needs one in key form; this one opens nothing anywhere.
EMULATOR_KEY = base64.b64encode(b"local cosmosdb-server: any key").decode()
# Azurite's published development account (it accepts only this); it exists on no Azure storage service.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True, kw_only=True)
class BabyBloomEndpoints:
    functions: str
    cosmos: str
    queues: str
    issuer: str
    client_id: str
    app_settings: dict[str, str]

    def save(self, state: Path) -> None:
        (state / "babybloom.json").write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, state: Path) -> BabyBloomEndpoints | None:
        path = state / "babybloom.json"
        return cls(**json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


def offline_plan(stack: str, state: Path) -> list[dict[str, Any]]:
    """The offline Pulumi plan (what `make plan-azure` prints), written into `state`."""
    finished = subprocess.run([sys.executable, "-m", "refarch.tools.plan_azure", "--stack", stack, "--out",
                               str(state)], cwd=ROOT, capture_output=True, text=True, check=False)
    path = state / f"babybloom-{stack}.json"
    if finished.returncode != 0 or not path.is_file():
        raise LocalError(f"the BabyBloom plan failed: {(finished.stderr or finished.stdout).strip()[-300:]}")
    plan: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return plan


def function_app_settings(plan: list[dict[str, Any]]) -> dict[str, str]:
    [app] = [resource for resource in plan if resource["type"] == "azure-native:web:WebApp"
             and "functionapp" in resource["inputs"].get("kind", "")]
    return {item["name"]: item["value"] for item in app["inputs"]["siteConfig"]["appSettings"]}


def local_settings(planned: dict[str, str], *, cosmos: str, queue_connection: str, issuer: str) -> dict[str, str]:
    from babybloom_app import settings

    local = {name: value for name, value in planned.items()
             if not name.startswith((f"{settings.REMINDERS_CONNECTION}__", "AzureWebJobsStorage__",
                                     "APPLICATIONINSIGHTS_", settings.PLATFORM_AUTHENTICATION))}
    return {**local, settings.COSMOS_ENDPOINT: cosmos, settings.COSMOS_EMULATOR_KEY: EMULATOR_KEY,
            settings.REMINDERS_CONNECTION: queue_connection, "AzureWebJobsStorage": queue_connection,
            settings.AUTH_ISSUER: issuer}


def create_from_plan(plan: list[dict[str, Any]], *, cosmos: str, queue_connection: str,
                     settings_: dict[str, str]) -> None:
    from azure.core.exceptions import ResourceExistsError
    from azure.cosmos import CosmosClient, PartitionKey
    from azure.storage.queue import QueueClient
    from babybloom_app import settings

    warnings.filterwarnings("ignore", "Unverified HTTPS request is being made to host '127.0.0.1'")
    client = CosmosClient(cosmos, credential=EMULATOR_KEY, connection_verify=False)
    for resource in plan:
        if resource["type"] == "azure-native:cosmosdb:SqlResourceSqlDatabase":
            client.create_database_if_not_exists(resource["inputs"]["databaseName"])
    for resource in plan:
        if resource["type"] == "azure-native:cosmosdb:SqlResourceSqlContainer":
            inputs = resource["inputs"]
            client.get_database_client(inputs["databaseName"]).create_container_if_not_exists(
                inputs["containerName"], PartitionKey(path=inputs["resource"]["partitionKey"]["paths"][0]))
    with contextlib.suppress(ResourceExistsError):
        QueueClient.from_connection_string(queue_connection, settings_[settings.REMINDER_QUEUE]).create_queue()


def up(registry: Registry, *, stack: str) -> BabyBloomEndpoints:
    state = registry.state
    plan = offline_plan(stack, state)
    cosmos_port, queue_port, blob_port, table_port = free_port(), free_port(), free_port(), free_port()
    cosmos_process = registry.spawn("cosmosdb-server", [str(BIN / "cosmosdb-server"), "--host", "127.0.0.1",
                                                        "--port", str(cosmos_port)], env=dict(os.environ))
    (state / "azurite").mkdir(exist_ok=True)
    azurite_process = registry.spawn("azurite", [
        str(BIN / "azurite"), "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--location",
        str(state / "azurite"), "--blobHost", "127.0.0.1", "--blobPort", str(blob_port), "--queueHost", "127.0.0.1",
        "--queuePort", str(queue_port), "--tableHost", "127.0.0.1", "--tablePort", str(table_port)],
        env=dict(os.environ))
    cosmos = f"https://127.0.0.1:{cosmos_port}/"
    queues = f"http://127.0.0.1:{queue_port}/{AZURITE_ACCOUNT}"
    queue_connection = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                        f"QueueEndpoint={queues};")
    wait_for(lambda: _answers(cosmos), what="cosmosdb-server", seconds=60, log=cosmos_process.log)
    wait_for(lambda: _answers(f"{queues}?comp=list"), what="Azurite", seconds=60, log=azurite_process.log)
    planned = function_app_settings(plan)
    issuer, client_id = start_identity_provider(registry, planned)
    settings_ = local_settings(planned, cosmos=cosmos, queue_connection=queue_connection, issuer=issuer)
    create_from_plan(plan, cosmos=cosmos, queue_connection=queue_connection, settings_=settings_)
    settings_file = state / "babybloom-app-settings.json"
    settings_file.write_text(json.dumps(settings_, indent=1), encoding="utf-8")
    settings_file.chmod(0o600)
    port = free_port()
    host = registry.spawn("babybloom-functions", [
        sys.executable, "-m", "refarch.local.functions_host", "--app", str(APP_DIR), "--settings", str(settings_file),
        "--port", str(port)], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    functions = f"http://127.0.0.1:{port}/api"
    wait_for(lambda: _answers(f"{functions}/profile"), what="the BabyBloom functions host", seconds=60,
             log=host.log)
    return BabyBloomEndpoints(functions=functions, cosmos=cosmos, queues=queues, issuer=issuer, client_id=client_id,
                              app_settings=settings_)


def start_identity_provider(registry: Registry, planned: dict[str, str]) -> tuple[str, str]:
    """The local Entra ID stand-in for the plan's app registration (same tenant id and client id)."""
    from babybloom_app import settings

    client_id = planned[settings.AUTH_CLIENT_ID]
    tenant_id = planned[settings.AUTH_ISSUER].rstrip("/").split("/")[-2]
    port = free_port()
    process = registry.spawn("entra-id-stand-in", [
        sys.executable, "-m", "refarch.local.identity_provider", "--key", str(registry.state / "entra-key.pem"),
        "--tenant", tenant_id, "--client", client_id, "--port", str(port)], env=dict(os.environ))
    issuer = f"http://127.0.0.1:{port}/{tenant_id}/v2.0"
    wait_for(lambda: _answers(f"{issuer}/.well-known/openid-configuration"), what="the local Entra ID stand-in",
             seconds=30, log=process.log)
    return issuer, client_id


def sign_in(state: Path, name: str) -> str:
    """An access token for user `name` from the running Entra ID stand-in (what MSAL gets after a sign-in)."""
    endpoints = BabyBloomEndpoints.load(state)
    if endpoints is None:
        raise LocalError("BabyBloom is not running here: `make up` first")
    issuer_path = endpoints.issuer.split("/", 3)[3]   # <tenant>/v2.0
    provider = LocalIdentityProvider(tenant_id=issuer_path.split("/")[0], client_id=endpoints.client_id,
                                     key=SigningKey.load(state / "entra-key.pem"))
    provider.base = endpoints.issuer.removesuffix(f"/{issuer_path}")
    provider.server.server_close()
    return provider.access_token(str(uuid.uuid5(uuid.NAMESPACE_URL, f"refarch-local:{name}")))


def _answers(url: str) -> bool:
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE   # cosmosdb-server's self-signed certificate, on 127.0.0.1 only
    try:
        urllib.request.urlopen(url, timeout=2, context=context)  # noqa: S310 - local servers
    except urllib.error.HTTPError:
        return True   # it answered (401/404 are answers)
    except (urllib.error.URLError, OSError):
        return False
    return True
