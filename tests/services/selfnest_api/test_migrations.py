"""Schema migrations: applied once, in order, atomically, even when several tasks start together."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import DictRow, dict_row
from selfnest_api.migrations import Migration, MigrationError, apply_migrations, bundled_migrations

from . import SERVICE_DIRECTORY
from .conftest import api_environment, store_secret
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
                                                           session_events: SessionEvents) -> None:
    environment = api_environment(secret_arn=store_secret(fresh_database, region=identity.region),
                                  identity=identity, topic_arn=session_events.topic_arn)
    finished = subprocess.run([sys.executable, "-m", "selfnest_api", "migrate"], cwd=SERVICE_DIRECTORY,
                              env={**os.environ, **environment}, capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stderr
    assert f'"event": "migrations_done", "applied": {len(bundled_migrations())}' in finished.stdout
    with connect(fresh_database) as connection:
        assert [version for version, _ in recorded(connection)] == [m.version for m in bundled_migrations()]
