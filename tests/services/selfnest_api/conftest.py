"""Fixtures for the booking API: a throwaway PostgreSQL, moto (server mode) for Cognito, SNS, SQS and Secrets
Manager, and the API itself serving on 127.0.0.1 in this process.

`moto_endpoint`, `identity` and `session_events` come from tests/services/conftest.py: moto resources built from the
synthesized identity and messaging templates.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from selfnest_api.__main__ import main
from selfnest_api.api import ApiService
from selfnest_api.settings import load_settings

from .api_client import ApiClient
from .people import Identity, SessionEvents
from .postgres import DatabaseLogin, TemporaryPostgres, temporary_postgres

REGION = "eu-west-1"
PASSWORD = "Calm-Harbour-Morning-42"


# -- the API's own fixtures -----------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres() -> Iterator[TemporaryPostgres]:
    # Not pytest's tmp_path: its parent is private to the user, and as root the cluster runs as another account.
    directory = Path(tempfile.mkdtemp(prefix="selfnest-api-pg-"))
    directory.chmod(0o755)
    try:
        with temporary_postgres(directory) as cluster:
            yield cluster
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def store_secret(login: DatabaseLogin, *, region: str) -> str:
    """The login as an RDS-shaped secret in moto's Secrets Manager; returns the secret's ARN."""
    created = boto3.client("secretsmanager", region_name=region).create_secret(
        Name=f"selfnest-test/{login.dbname}-{uuid.uuid4().hex[:8]}", SecretString=login.secret_string())
    return created["ARN"]


def api_environment(*, secret_arn: str, identity: Identity, topic_arn: str,
                    **overrides: str) -> dict[str, str]:
    """The task's environment as the web stack sets it, pointed at the test PostgreSQL and moto."""
    return {"DB_SECRET_ARN": secret_arn, "DB_SSLMODE": "disable", "USER_POOL_ID": identity.pool_id,
            "USER_POOL_CLIENT_IDS": ",".join(identity.api_client_ids), "COGNITO_JWKS_URL": identity.jwks_url,
            "SESSION_EVENTS_TOPIC_ARN": topic_arn, "THERAPIST_ROSTER_SECONDS": "1", **overrides}


def migrate(owner: DatabaseLogin, *, app_secret_arn: str, identity: Identity, topic_arn: str) -> None:
    """The one-off migrate task, in this process: master secret in, application login out."""
    environment = api_environment(secret_arn=store_secret(owner, region=identity.region), identity=identity,
                                  topic_arn=topic_arn, APP_DB_SECRET_ARN=app_secret_arn)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        assert main(["migrate"]) == 0


@dataclass(frozen=True, kw_only=True)
class RunningApi:
    service: ApiService
    client: ApiClient
    login: DatabaseLogin
    secret_arn: str


class ApiLauncher:
    """Starts API services in this process, each on its own database and port; stops them all at the end."""

    def __init__(self, *, postgres: TemporaryPostgres, identity: Identity, topic_arn: str) -> None:
        self._postgres = postgres
        self._identity = identity
        self._topic_arn = topic_arn
        self._running: list[ApiService] = []

    def start(self, *, database: str, topic_arn: str | None = None, retry_seconds: float = 5.0,
              environment: dict[str, str] | None = None) -> RunningApi:
        """A migrated database (as its owner, what RDS's master user is) and the API on it as the application
        login the migrate step created from the API's own secret — never as the owner."""
        owner = self._postgres.create_database(name=database)
        login = self._postgres.application_login(owner)
        secret_arn = store_secret(login, region=self._identity.region)
        migrate(owner, app_secret_arn=secret_arn, identity=self._identity, topic_arn=topic_arn or self._topic_arn)
        settings = load_settings(api_environment(secret_arn=secret_arn, identity=self._identity,
                                                 topic_arn=topic_arn or self._topic_arn, **(environment or {})))
        service = ApiService(settings=dataclasses.replace(settings, port=0), host="127.0.0.1",
                             outbox_retry_seconds=retry_seconds)
        self._running.append(service)
        service.start()
        return RunningApi(service=service, client=ApiClient(f"http://127.0.0.1:{service.port}"), login=login,
                          secret_arn=secret_arn)

    def stop_all(self) -> None:
        while self._running:
            self._running.pop().stop()


@pytest.fixture(scope="session")
def launcher(postgres: TemporaryPostgres, identity: Identity,
             session_events: SessionEvents) -> Iterator[ApiLauncher]:
    launcher = ApiLauncher(postgres=postgres, identity=identity, topic_arn=session_events.topic_arn)
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture(scope="session")
def api(launcher: ApiLauncher) -> RunningApi:
    """The API most tests share, on database `selfnest`; tests keep apart by using their own users."""
    return launcher.start(database="selfnest")
