"""Schema migrations: applied once, in order, atomically, even when several tasks start together."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from selfnest_api.migrations import (
    Migration,
    MigrationError,
    apply_migrations,
    bundled_migrations,
    provision_application_login,
)

from . import SERVICE_DIRECTORY
from .conftest import api_environment, migrate, store_secret
from .people import Identity, SessionEvents, unique
from .postgres import DatabaseLogin, TemporaryPostgres


def connect(login: DatabaseLogin) -> psycopg.Connection[DictRow]:
    return psycopg.connect(host=login.host, port=login.port, dbname=login.dbname, user=login.username,
                           password=login.password, row_factory=dict_row)


@pytest.fixture
def fresh_database(postgres: TemporaryPostgres) -> DatabaseLogin:
    return postgres.create_database(name=unique("migrations").replace("-", "_"))


@pytest.fixture
def connection(fresh_database: DatabaseLogin) -> Iterator[psycopg.Connection[DictRow]]:
    with connect(fresh_database) as connection:
        yield connection


def recorded(connection: psycopg.Connection[DictRow]) -> list[tuple[int, str]]:
    return [(row["version"], row["name"])
            for row in connection.execute("SELECT version, name FROM schema_migrations ORDER BY version")]


def test_migrations_apply_once_and_then_find_nothing_to_do(connection: psycopg.Connection[DictRow]) -> None:
    bundled = bundled_migrations()
    assert [migration.version for migration in apply_migrations(connection)] == [m.version for m in bundled]
    assert apply_migrations(connection) == []
    assert recorded(connection) == [(migration.version, migration.name) for migration in bundled]


def test_runners_starting_together_apply_each_migration_exactly_once(fresh_database: DatabaseLogin) -> None:
    runners = 4
    barrier = threading.Barrier(runners)
    applied: list[list[Migration]] = []
    failures: list[BaseException] = []

    def run() -> None:
        with connect(fresh_database) as connection:
            barrier.wait()
            try:
                applied.append(apply_migrations(connection))
            except BaseException as error:
                failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(len(migrations) for migrations in applied) == [0] * (runners - 1) + [len(bundled_migrations())]


def test_a_failing_migration_leaves_the_schema_as_it_was(connection: psycopg.Connection[DictRow]) -> None:
    apply_migrations(connection)
    broken = [*bundled_migrations(),
              Migration(version=9001, name="add_notes", statements="CREATE TABLE notes (id integer);"),
              Migration(version=9002, name="typo", statements="ALTER TABLE nowhere ADD COLUMN x integer;")]
    with pytest.raises(psycopg.errors.UndefinedTable):
        apply_migrations(connection, migrations=broken)
    assert [version for version, _ in recorded(connection)] == [m.version for m in bundled_migrations()]
    assert connection.execute("SELECT to_regclass('notes') AS notes").fetchone() == {"notes": None}


def test_a_renamed_migration_is_refused(connection: psycopg.Connection[DictRow]) -> None:
    apply_migrations(connection)
    [first, *rest] = bundled_migrations()
    renamed = Migration(version=first.version, name="renamed", statements=first.statements)
    with pytest.raises(MigrationError, match="was applied as"):
        apply_migrations(connection, migrations=[renamed, *rest])


def test_the_one_off_migrate_task_runs_against_the_secret(fresh_database: DatabaseLogin, identity: Identity,
                                                           session_events: SessionEvents,
                                                           postgres: TemporaryPostgres) -> None:
    application = postgres.application_login(fresh_database)
    environment = api_environment(secret_arn=store_secret(fresh_database, region=identity.region),
                                  identity=identity, topic_arn=session_events.topic_arn,
                                  APP_DB_SECRET_ARN=store_secret(application, region=identity.region))
    finished = subprocess.run([sys.executable, "-m", "selfnest_api", "migrate"], cwd=SERVICE_DIRECTORY,
                              env={**os.environ, **environment}, capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stderr
    assert f'"event": "migrations_done", "applied": {len(bundled_migrations())}' in finished.stdout
    with connect(fresh_database) as connection:
        assert [version for version, _ in recorded(connection)] == [m.version for m in bundled_migrations()]
    with connect(application) as connection:     # the API's login now exists, with its secret's password
        assert connection.execute("SELECT current_user AS me").fetchone() == {"me": application.username}


def test_the_migrate_task_sends_a_scram_verifier_never_the_api_password(fresh_database: DatabaseLogin,
                                                                         identity: Identity,
                                                                         session_events: SessionEvents,
                                                                         postgres: TemporaryPostgres) -> None:
    application = postgres.application_login(fresh_database)
    with postgres.admin() as admin:
        # Were the password sent, the server would store it as this session setting says: an MD5 hash.
        admin.execute(sql.SQL("ALTER ROLE {} SET password_encryption = 'md5'").format(
            sql.Identifier(fresh_database.username)))
    migrate(fresh_database, app_secret_arn=store_secret(application, region=identity.region), identity=identity,
            topic_arn=session_events.topic_arn)
    with postgres.admin() as admin:
        stored = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                               (application.username,)).fetchone()
    assert stored is not None and str(stored[0]).startswith("SCRAM-SHA-256$")
    assert application.password not in str(stored[0])
    with connect(application) as connection:     # and the API signs in with its secret's password
        assert connection.execute("SELECT current_user AS me").fetchone() == {"me": application.username}


@pytest.fixture
def application(fresh_database: DatabaseLogin, postgres: TemporaryPostgres) -> DatabaseLogin:
    """The API's login on a migrated database, created the way the migrate task creates it."""
    login = postgres.application_login(fresh_database)
    with connect(fresh_database) as owner:
        apply_migrations(owner)
        assert provision_application_login(owner, username=login.username, password=login.password) is True
        assert provision_application_login(owner, username=login.username, password="ignored") is False
    return login


def test_the_application_login_reads_and_writes_its_tables(application: DatabaseLogin) -> None:
    with connect(application) as connection:
        for table in ("therapist_profiles", "sessions", "outbox_events"):
            connection.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed table names
        connection.execute("INSERT INTO therapist_profiles (therapist_id, display_name, bio, languages, specialties)"
                           " VALUES (gen_random_uuid(), 'Dr. Test', '', ARRAY['en'], ARRAY[]::text[])")
        connection.execute("UPDATE therapist_profiles SET bio = 'updated'")


FORBIDDEN = {
    "drop a table": ("DROP TABLE sessions", psycopg.errors.InsufficientPrivilege),
    "alter a table": ("ALTER TABLE sessions ADD COLUMN notes text", psycopg.errors.InsufficientPrivilege),
    "truncate": ("TRUNCATE outbox_events", psycopg.errors.InsufficientPrivilege),
    "delete rows": ("DELETE FROM sessions", psycopg.errors.InsufficientPrivilege),
    "create a table": ("CREATE TABLE notes (id integer)", psycopg.errors.InsufficientPrivilege),
    "read the migration history": ("SELECT * FROM schema_migrations", psycopg.errors.InsufficientPrivilege),
    "rewrite the migration history": ("DELETE FROM schema_migrations", psycopg.errors.InsufficientPrivilege),
    "create a role": ("CREATE ROLE intruder", psycopg.errors.InsufficientPrivilege),
    "read the password hashes": ("SELECT rolpassword FROM pg_authid", psycopg.errors.InsufficientPrivilege),
    "read server files": ("SELECT pg_read_file('postgresql.conf')", psycopg.errors.InsufficientPrivilege),
}


@pytest.mark.parametrize(("statement", "refusal"), FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_the_application_login_cannot_change_the_schema_or_read_outside_its_tables(
        application: DatabaseLogin, statement: str, refusal: type[Exception]) -> None:
    with connect(application) as connection, pytest.raises(refusal):
        connection.execute(statement)


def test_the_application_login_owns_nothing(application: DatabaseLogin) -> None:
    with connect(application) as connection:
        owned = connection.execute("SELECT count(*) AS owned FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
                                   " WHERE r.rolname = current_user").fetchone()
        attributes = connection.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles"
                                        " WHERE rolname = current_user").fetchone()
    assert owned == {"owned": 0}
    assert attributes == {"rolsuper": False, "rolcreaterole": False, "rolcreatedb": False}


@pytest.mark.parametrize(("column", "malformed"), [("correlation_id", "x y\nforged"), ("trace_id", "Root=1-abc")])
def test_the_outbox_refuses_ids_the_api_would_not_accept(connection: psycopg.Connection[DictRow], column: str,
                                                         malformed: str) -> None:
    apply_migrations(connection)
    with pytest.raises(psycopg.errors.CheckViolation):
        connection.execute(f"INSERT INTO outbox_events (event_id, event_type, message, {column})"  # noqa: S608
                           " VALUES (gen_random_uuid(), 'session.booked', '{}', %s)", (malformed,))


def test_a_password_login_named_like_the_master_is_refused(connection: psycopg.Connection[DictRow],
                                                           fresh_database: DatabaseLogin) -> None:
    apply_migrations(connection)

    def master_memberships() -> list[DictRow]:
        return connection.execute("SELECT roleid, admin_option FROM pg_auth_members WHERE member = "
                                  "(SELECT oid FROM pg_roles WHERE rolname = current_user) ORDER BY roleid").fetchall()

    before = master_memberships()
    with pytest.raises(MigrationError, match=(
            f"^APP_DB_SECRET_ARN's username {fresh_database.username}: that is the login the migrate task signs in "
            "as")):
        provision_application_login(connection, username=fresh_database.username, password="not-the-master's")
    assert master_memberships() == before
