"""The API's login with IAM database authentication: a fresh token per new connection, sent as the password over
TLS; the migrate task creates that login without a password and grants it rds_iam, or says why it cannot."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import psycopg
import pytest
from psycopg import sql
from selfnest_api import __main__ as api_main
from selfnest_api.database import Database, IamAuthToken, login_for
from selfnest_api.migrations import APPLICATION_ROLE, PRE_IAM_LOGIN, PRE_IAM_LOGINS, RDS_IAM_ROLE, RDS_SUPERUSER_ROLE
from selfnest_api.settings import load_settings

from tests.entry_points import run_main

from .conftest import api_environment, store_secret
from .people import Identity, SessionEvents, unique
from .postgres import DatabaseLogin, TemporaryPostgres, temporary_postgres

DB_HOST = "selfnest-lab-postgres.abcdefghijkl.eu-west-1.rds.amazonaws.com"
DB_PORT = 5432
DB_REGION = "eu-west-1"
LOGIN = "selfnest_api_iam"


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
    finished = run_migrate(owner, login=login, identity=identity, session_events=session_events)
    return finished.returncode, finished.stderr


def run_migrate(owner: DatabaseLogin, *, login: str, identity: Identity, session_events: SessionEvents,
                retire: str = "true") -> subprocess.CompletedProcess[str]:
    """The migrate task as the web stack runs it without a warm standby (RETIRE_PRE_IAM_LOGINS=true)."""
    environment = api_environment(secret_arn=store_secret(owner, region=identity.region), identity=identity,
                                  topic_arn=session_events.topic_arn, APP_DB_IAM_USER=login,
                                  RETIRE_PRE_IAM_LOGINS=retire)
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(("DB_", "APP_DB_"))}
    return run_main(api_main.main, ["migrate"], environ={**inherited, **environment})


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


# -- the rolling deploy from the password-era login --------------------------------------------------------------------

@pytest.fixture
def password_era_logins(rds_like_postgres: TemporaryPostgres) -> Iterator[dict[str, DatabaseLogin]]:
    """PRE_IAM_LOGINS as the previous version left them: the user, a password login in selfnest_app, and the
    rotation's clone, made as AWS's multi-user rotation function makes it (`GRANT <user> TO <user>_clone`: its rights
    come through the user). Cluster-wide names, so made afresh for each test and dropped after it."""
    owner = rds_like_postgres.create_database(name=unique("rollout").replace("-", "_"))
    logins = {name: DatabaseLogin(host=owner.host, port=owner.port, dbname=owner.dbname, username=name,
                                  password=unique("old-password")) for name in PRE_IAM_LOGINS}
    with rds_like_postgres.admin() as admin:
        admin.execute(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APPLICATION_ROLE}') THEN "
                      f"CREATE ROLE {APPLICATION_ROLE} NOLOGIN; END IF; END $$")
    with sign_in(owner) as master:   # made by the master, as the migrate task and the rotation function made them
        for login in logins.values():
            member_of = APPLICATION_ROLE if login.username == PRE_IAM_LOGIN else PRE_IAM_LOGIN
            master.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(login.username), sql.Literal(login.password)))
            master.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(member_of),
                                                            sql.Identifier(login.username)))
    yield {"owner": owner, **logins}
    for login in logins.values():
        rds_like_postgres.disconnect_everyone(username=login.username)
    with rds_like_postgres.admin() as admin:
        for login in logins.values():
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login.username)))


def sign_in(login: DatabaseLogin) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(host=login.host, port=login.port, dbname=login.dbname, user=login.username,
                           password=login.password, autocommit=True)


def end_sessions(cluster: TemporaryPostgres, username: str) -> None:
    """End `username`'s sessions and wait until they are gone (what ECS stopping the old tasks does)."""
    with cluster.admin() as admin:
        admin.execute("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE usename = %s",
                      (username,))


RETIRED = {"login": False, "superuser": False, "createrole": False, "createdb": False, "no_password": True,
           "iam": False, "application": False}


def test_old_tasks_keep_their_password_login_until_they_are_gone_then_the_next_migrate_retires_it(
        rds_like_postgres: TemporaryPostgres, password_era_logins: dict[str, DatabaseLogin], identity: Identity,
        session_events: SessionEvents) -> None:
    owner, old = password_era_logins["owner"], password_era_logins[PRE_IAM_LOGIN]
    new_login = f"{owner.dbname}_api_iam"
    with sign_in(old) as old_task:   # the previous version's task, still serving while the deploy runs
        first = run_migrate(owner, login=new_login, identity=identity, session_events=session_events)
        assert (first.returncode, first.stderr) == (0, "")
        kept = [line for line in first.stdout.splitlines() if "pre_iam_login_in_use" in line]
        assert len(kept) == 1 and f'"signed_in_as": "{PRE_IAM_LOGIN}"' in kept[0]
        assert "will be on the next deploy" in kept[0]
        # The old task goes on working, and so do the connections its pool opens meanwhile.
        old_task.execute("SELECT count(*) FROM sessions")
        with sign_in(old) as another:
            another.execute("SELECT count(*) FROM sessions")
        # All of them or none: the clone, which nobody uses, is kept with the user it holds its rights through.
        for name in PRE_IAM_LOGINS:
            found = role_of(rds_like_postgres, name)
            assert found is not None and found["login"] and not found["no_password"] and found["application"]
    end_sessions(rds_like_postgres, PRE_IAM_LOGIN)
    second = run_migrate(owner, login=new_login, identity=identity, session_events=session_events)
    assert (second.returncode, second.stderr) == (0, "")
    assert "pre_iam_login_in_use" not in second.stdout
    assert {name: role_of(rds_like_postgres, name) for name in PRE_IAM_LOGINS} == dict.fromkeys(PRE_IAM_LOGINS,
                                                                                              RETIRED)
    for name in PRE_IAM_LOGINS:
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            sign_in(password_era_logins[name])
    # The new login is what the new tasks use, untouched by the retirement.
    found = role_of(rds_like_postgres, new_login)
    assert found is not None and found["login"] and found["iam"] and found["application"]


def test_a_session_of_the_rotation_clone_keeps_working_after_migrate(
        rds_like_postgres: TemporaryPostgres, password_era_logins: dict[str, DatabaseLogin], identity: Identity,
        session_events: SessionEvents) -> None:
    """The alternating-users rotation leaves the tasks signed in as either login; the clone's rights come through
    the user (GRANT <user> TO <user>_clone), so retiring the user alone would break the clone's sessions."""
    owner = password_era_logins["owner"]
    clone = next(name for name in PRE_IAM_LOGINS if name != PRE_IAM_LOGIN)
    with sign_in(password_era_logins[clone]) as old_task:
        finished = run_migrate(owner, login=f"{owner.dbname}_api_iam", identity=identity,
                               session_events=session_events)
        assert (finished.returncode, finished.stderr) == (0, "")
        old_task.execute("SELECT count(*) FROM sessions")
        with sign_in(password_era_logins[clone]) as another:   # its pool may still open connections
            another.execute("SELECT count(*) FROM sessions")
        kept = [line for line in finished.stdout.splitlines() if "pre_iam_login_in_use" in line]
        assert len(kept) == 1 and f'"signed_in_as": "{clone}"' in kept[0]
    for name in PRE_IAM_LOGINS:
        found = role_of(rds_like_postgres, name)
        assert found is not None and found["login"] and found["application"]


def test_without_retire_pre_iam_logins_the_migrate_task_retires_nothing(
        rds_like_postgres: TemporaryPostgres, password_era_logins: dict[str, DatabaseLogin], identity: Identity,
        session_events: SessionEvents) -> None:
    """With a warm standby the web stack leaves RETIRE_PRE_IAM_LOGINS false: the standby's tasks sign in to the
    replica, where this instance's pg_stat_activity cannot see them."""
    owner = password_era_logins["owner"]
    before = {name: role_of(rds_like_postgres, name) for name in PRE_IAM_LOGINS}
    for retire in ("", "false"):
        finished = run_migrate(owner, login=f"{owner.dbname}_api_iam", identity=identity,
                               session_events=session_events, retire=retire)
        assert (finished.returncode, finished.stderr) == (0, "")
        assert "pre_iam_logins_kept" in finished.stdout and "pre_iam_login_retired" not in finished.stdout
        assert {name: role_of(rds_like_postgres, name) for name in PRE_IAM_LOGINS} == before
    for name in PRE_IAM_LOGINS:
        with sign_in(password_era_logins[name]) as old_task:
            old_task.execute("SELECT count(*) FROM sessions")


def test_a_statement_the_database_refuses_is_one_line_naming_it(
        rds_like_postgres: TemporaryPostgres, identity: Identity, session_events: SessionEvents) -> None:
    """Connected, then refused (here a missing privilege in apply_migrations): not a traceback, not "cannot
    connect"."""
    owner = rds_like_postgres.create_database(name=unique("refused").replace("-", "_"))
    with rds_like_postgres.admin(dbname=owner.dbname) as admin:   # a table the master may not read
        admin.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                      "applied_at timestamptz NOT NULL DEFAULT now())")
        admin.execute("REVOKE ALL ON schema_migrations FROM PUBLIC")
    status, errors = migrate_with_iam_login(owner, login=f"{owner.dbname}_api", identity=identity,
                                            session_events=session_events)
    assert (status, errors) == (1, "selfnest-api: migrate: the database refused a statement: InsufficientPrivilege: "
                                   "permission denied for table schema_migrations\n")


# -- what the migrate task refuses to make the API's login -------------------------------------------------------------

RESERVED = {
    "the group role": (APPLICATION_ROLE, "that is the API's group role (it holds the table grants); name a login "
                                         "that joins it"),
    "rds_iam itself": (RDS_IAM_ROLE, "names starting with pg_ or rds belong to PostgreSQL and RDS (their own roles); "
                                     "choose another name"),
    "a pg_ name": ("pg_selfnest", "names starting with pg_ or rds belong to PostgreSQL and RDS (their own roles); "
                                  "choose another name"),
    "an rds name": ("rdsadmin", "names starting with pg_ or rds belong to PostgreSQL and RDS (their own roles); "
                                "choose another name"),
}


@pytest.mark.parametrize(("name", "reason"), RESERVED.values(), ids=RESERVED.keys())
def test_a_reserved_name_is_refused_in_one_line(rds_like_postgres: TemporaryPostgres, identity: Identity,
                                                session_events: SessionEvents, name: str, reason: str) -> None:
    owner = rds_like_postgres.create_database(name=unique("reserved").replace("-", "_"))
    before = role_of(rds_like_postgres, name)
    assert migrate_with_iam_login(owner, login=name, identity=identity, session_events=session_events) == (
        2, f"selfnest-api: APP_DB_IAM_USER={name}: {reason}\n")
    assert role_of(rds_like_postgres, name) == before


def test_the_master_login_is_refused_and_keeps_its_password(rds_like_postgres: TemporaryPostgres,
                                                           identity: Identity, session_events: SessionEvents) -> None:
    owner = rds_like_postgres.create_database(name=unique("master").replace("-", "_"))
    assert migrate_with_iam_login(owner, login=owner.username, identity=identity, session_events=session_events) == (
        2, f"selfnest-api: APP_DB_IAM_USER={owner.username}: that is the login the migrate task signs in as (the "
           "master user); the API needs a login of its own\n")
    with sign_in(owner) as connection:
        assert connection.execute("SELECT current_user").fetchone() == (owner.username,)
    found = role_of(rds_like_postgres, owner.username)
    assert found is not None and not found["iam"] and not found["application"]


ADMINISTRATORS = {
    "a superuser": "SUPERUSER",
    f"a member of {RDS_SUPERUSER_ROLE}": f"IN ROLE {RDS_SUPERUSER_ROLE}",
}


@pytest.mark.parametrize("powers", ADMINISTRATORS.values(), ids=ADMINISTRATORS.keys())
def test_an_existing_administrator_is_refused_and_left_alone(rds_like_postgres: TemporaryPostgres, identity: Identity,
                                                             session_events: SessionEvents, powers: str) -> None:
    owner = rds_like_postgres.create_database(name=unique("admin").replace("-", "_"))
    login = f"{owner.dbname}_api"
    with rds_like_postgres.admin() as admin:
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (RDS_SUPERUSER_ROLE,)).fetchone() is None:
            admin.execute(f"CREATE ROLE {RDS_SUPERUSER_ROLE} NOLOGIN")   # as on RDS: the master's group
        admin.execute(f"CREATE ROLE \"{login}\" LOGIN PASSWORD 'kept' {powers}")
    before = role_of(rds_like_postgres, login)
    status, errors = migrate_with_iam_login(owner, login=login, identity=identity, session_events=session_events)
    assert (status, errors.count("\n")) == (2, 1)
    assert errors.startswith(f"selfnest-api: APP_DB_IAM_USER={login}: that role exists and is a superuser")
    assert "must not administer the database" in errors
    assert role_of(rds_like_postgres, login) == before


def memberships(cluster: TemporaryPostgres, name: str) -> set[str]:
    with cluster.admin() as admin:
        return {str(row[0]) for row in admin.execute(
            "SELECT granted.rolname FROM pg_auth_members m JOIN pg_roles granted ON granted.oid = m.roleid "
            "JOIN pg_roles member ON member.oid = m.member WHERE member.rolname = %s", (name,))}


def test_an_existing_login_is_reset_to_a_plain_iam_login_in_the_api_role_only(
        rds_like_postgres: TemporaryPostgres, identity: Identity, session_events: SessionEvents) -> None:
    owner = rds_like_postgres.create_database(name=unique("reset").replace("-", "_"))
    login = f"{owner.dbname}_api"
    with rds_like_postgres.admin() as admin:
        admin.execute(f"CREATE ROLE \"{login}_extra\" NOLOGIN")
        admin.execute(f"CREATE ROLE \"{login}\" NOLOGIN CREATEDB CREATEROLE NOINHERIT PASSWORD 'old' "
                      f"IN ROLE pg_read_all_data, pg_signal_backend, \"{login}_extra\"")
    assert migrate_with_iam_login(owner, login=login, identity=identity, session_events=session_events) == (0, "")
    assert role_of(rds_like_postgres, login) == {"login": True, "superuser": False, "createrole": False,
                                                 "createdb": False, "no_password": True, "iam": True,
                                                 "application": True}
    with rds_like_postgres.admin() as admin:
        inherits = admin.execute("SELECT rolinherit FROM pg_roles WHERE rolname = %s", (login,)).fetchone()
    assert inherits == (True,)
    assert memberships(rds_like_postgres, login) == {APPLICATION_ROLE, RDS_IAM_ROLE}


def test_a_login_the_master_may_not_reset_is_refused_in_one_line(
        rds_like_postgres: TemporaryPostgres, identity: Identity, session_events: SessionEvents) -> None:
    owner = rds_like_postgres.create_database(name=unique("bypass").replace("-", "_"))
    login = f"{owner.dbname}_api"
    with rds_like_postgres.admin() as admin:
        admin.execute(f"CREATE ROLE \"{login}\" LOGIN BYPASSRLS")   # only a superuser may take that away
    status, errors = migrate_with_iam_login(owner, login=login, identity=identity, session_events=session_events)
    assert (status, errors.count("\n")) == (2, 1)
    assert errors.startswith(f"selfnest-api: APP_DB_IAM_USER={login}: cannot provision the login: ")
    assert "Traceback" not in errors
    found = role_of(rds_like_postgres, login)
    assert found is not None and not found["iam"] and not found["application"]   # nothing half-done


def test_a_refused_iam_token_names_rds_db_connect_and_rds_iam(iam_environment: dict[str, str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    refusal = (f'connection failed: connection to server at "10.0.3.17", port {DB_PORT} failed: FATAL:  PAM '
               f'authentication failed for user "{LOGIN}"')
    attempts: list[str] = []

    def connect(cls: type[psycopg.Connection[Any]], /, conninfo: str = "", **kwargs: Any) -> psycopg.Connection[Any]:
        attempts.append(kwargs["password"])
        raise psycopg.OperationalError(refusal)

    monkeypatch.setattr(psycopg.Connection, "connect", classmethod(connect))
    finished = run_main(api_main.main, [], environ={**os.environ, **iam_environment})
    assert finished.returncode == 1
    assert finished.stderr == (f"selfnest-api: cannot connect to the database: {refusal} (RDS refused the IAM token: "
                               "the likely cause is the task role's rds-db:connect (it must name this login on this "
                               "instance's DbiResourceId) or a login not granted rds_iam (the migrate task grants "
                               "it))\n")
    assert len(attempts) == 2   # retried once (with a token signed afresh), then refused in one line
