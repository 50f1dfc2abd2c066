"""The API's login with IAM database authentication: a fresh token per new connection, sent as the password over
TLS; the migrate task creates that login without a password and grants it rds_iam, or says why it cannot."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import psycopg
import pytest
from selfnest_api import __main__ as api_main
from selfnest_api.database import Database, IamAuthToken, login_for
from selfnest_api.migrations import APPLICATION_ROLE, RDS_IAM_ROLE
from selfnest_api.settings import load_settings

from tests.entry_points import run_main

from .conftest import api_environment, store_secret
from .people import Identity, SessionEvents, unique
from .postgres import DatabaseLogin, TemporaryPostgres, temporary_postgres

DB_HOST = "selfnest-lab-postgres.abcdefghijkl.eu-west-1.rds.amazonaws.com"
DB_PORT = 5432
DB_REGION = "eu-west-1"
LOGIN = "selfnest_api"


class RecordingSigner:
    """boto3's RDS client (real SigV4 signing, done locally), recording each token it signs."""

    def __init__(self) -> None:
        self._client = boto3.client("rds", region_name=DB_REGION, aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                                    aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        self.signed: list[tuple[dict[str, Any], str]] = []

    def generate_db_auth_token(self, DBHostname: str, Port: int, DBUsername: str,  # noqa: N803 - boto3's names
                               Region: str | None = None) -> str:  # noqa: N803
        token: str = self._client.generate_db_auth_token(DBHostname=DBHostname, Port=Port, DBUsername=DBUsername,
                                                         Region=Region)
        self.signed.append(({"DBHostname": DBHostname, "Port": Port, "DBUsername": DBUsername, "Region": Region},
                            token))
        return token


class RefusedHereError(Exception):
    """Stands in for the network: the test stops each connection attempt after seeing what it would send."""


@pytest.fixture
def iam_environment(identity: Identity, session_events: SessionEvents) -> dict[str, str]:
    """The API task's environment as the web stack sets it (DB_IAM_USER, no secret), with the image's TLS mode."""
    environment = api_environment(secret_arn="", identity=identity, topic_arn=session_events.topic_arn,
                                  DB_SSLMODE="verify-full", DB_SSLROOTCERT="/etc/ssl/certs/rds-global-bundle.pem")
    return {**environment, "DB_IAM_USER": LOGIN, "DB_HOST": DB_HOST, "DB_PORT": str(DB_PORT), "DB_NAME": "selfnest",
            "DB_REGION": DB_REGION}


def test_each_new_connection_signs_in_with_a_token_signed_for_it_over_tls(
        iam_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(iam_environment)
    assert isinstance(login_for(settings), IamAuthToken)   # what ApiService and the migrate task use
    signer = RecordingSigner()
    login = IamAuthToken(client=signer, user=LOGIN, host=DB_HOST, port=DB_PORT, region=DB_REGION)
    attempts: list[dict[str, Any]] = []

    def connect(cls: type[psycopg.Connection[Any]], /, conninfo: str = "", **kwargs: Any) -> psycopg.Connection[Any]:
        attempts.append(kwargs)
        raise RefusedHereError

    monkeypatch.setattr(psycopg.Connection, "connect", classmethod(connect))
    database = Database(settings=settings, login=login)
    for _ in range(3):
        with pytest.raises(RefusedHereError):
            database.connect_outside_pool()
    # One token signed for each connection attempt, never a cached one.
    assert len(attempts) == len(signer.signed) == 3
    for attempt, (request, token) in zip(attempts, signer.signed, strict=True):
        assert request == {"DBHostname": DB_HOST, "Port": DB_PORT, "DBUsername": LOGIN, "Region": DB_REGION}
        assert (attempt["user"], attempt["password"]) == (LOGIN, token)
        assert (attempt["host"], attempt["port"], attempt["dbname"]) == (DB_HOST, DB_PORT, "selfnest")
        assert attempt["sslmode"] == "verify-full"
        assert attempt["sslrootcert"] == "/etc/ssl/certs/rds-global-bundle.pem"
        signed = urlsplit("//" + token)
        query = parse_qs(signed.query)
        assert signed.netloc == f"{DB_HOST}:{DB_PORT}"
        assert (query["Action"], query["DBUser"], query["X-Amz-Expires"]) == (["connect"], [LOGIN], ["900"])
        assert query["X-Amz-Credential"][0].endswith(f"/{DB_REGION}/rds-db/aws4_request")


@pytest.fixture(scope="module")
def rds_like_postgres() -> Iterator[TemporaryPostgres]:
    """A cluster that, like RDS for PostgreSQL, has the rds_iam role (cluster-wide, hence a cluster of its own)."""
    directory = Path(tempfile.mkdtemp(prefix="selfnest-api-rds-"))
    directory.chmod(0o755)
    try:
        with temporary_postgres(directory) as cluster:
            with cluster.admin() as admin:
                admin.execute(f"CREATE ROLE {RDS_IAM_ROLE} NOLOGIN")
            yield cluster
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def migrate_with_iam_login(owner: DatabaseLogin, *, login: str, identity: Identity,
                           session_events: SessionEvents) -> tuple[int, str]:
    environment = api_environment(secret_arn=store_secret(owner, region=identity.region), identity=identity,
                                  topic_arn=session_events.topic_arn, APP_DB_IAM_USER=login)
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(("DB_", "APP_DB_"))}
    finished = run_main(api_main.main, ["migrate"], environ={**inherited, **environment})
    return finished.returncode, finished.stderr


def role_of(cluster: TemporaryPostgres, name: str) -> dict[str, Any] | None:
    with cluster.admin() as admin:
        row = admin.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolpassword IS NULL AS no_password, "
            "pg_has_role(rolname, %s, 'MEMBER') AS iam, pg_has_role(rolname, %s, 'MEMBER') AS application "
            "FROM pg_authid WHERE rolname = %s", (RDS_IAM_ROLE, APPLICATION_ROLE, name)).fetchone()
    return None if row is None else dict(zip(
        ("login", "superuser", "createrole", "createdb", "no_password", "iam", "application"), row, strict=True))


def test_the_migrate_task_creates_the_iam_login_without_a_password_and_grants_it_rds_iam(
        rds_like_postgres: TemporaryPostgres, identity: Identity, session_events: SessionEvents) -> None:
    owner = rds_like_postgres.create_database(name=unique("iam").replace("-", "_"))
    login = f"{owner.dbname}_api"
    assert migrate_with_iam_login(owner, login=login, identity=identity, session_events=session_events) == (0, "")
    assert role_of(rds_like_postgres, login) == {"login": True, "superuser": False, "createrole": False,
                                                 "createdb": False, "no_password": True, "iam": True,
                                                 "application": True}
    # A second deploy finds it and changes nothing.
    assert migrate_with_iam_login(owner, login=login, identity=identity, session_events=session_events) == (0, "")
    assert role_of(rds_like_postgres, login) is not None


def test_a_login_from_the_password_era_loses_its_password_and_joins_rds_iam(
        rds_like_postgres: TemporaryPostgres, identity: Identity, session_events: SessionEvents) -> None:
    owner = rds_like_postgres.create_database(name=unique("iam_upgrade").replace("-", "_"))
    login = f"{owner.dbname}_api"
    with rds_like_postgres.admin() as admin:
        admin.execute(f'CREATE ROLE "{login}" LOGIN PASSWORD \'an-old-rotated-password\'')
    assert migrate_with_iam_login(owner, login=login, identity=identity, session_events=session_events) == (0, "")
    found = role_of(rds_like_postgres, login)
    assert found is not None and found["no_password"] and found["iam"] and found["application"]


def test_without_rds_iam_the_migrate_task_refuses_an_iam_login_in_one_line(
        postgres: TemporaryPostgres, identity: Identity, session_events: SessionEvents) -> None:
    owner = postgres.create_database(name=unique("no_iam").replace("-", "_"))
    login = f"{owner.dbname}_api"
    status, errors = migrate_with_iam_login(owner, login=login, identity=identity, session_events=session_events)
    assert (status, errors) == (2, f"selfnest-api: APP_DB_IAM_USER={login}: this database has no rds_iam role, so "
                                   "it cannot authenticate IAM tokens (RDS for PostgreSQL has it); give the login a "
                                   "password with APP_DB_SECRET_ARN instead\n")
    assert role_of(postgres, login) is None   # nothing half-made
