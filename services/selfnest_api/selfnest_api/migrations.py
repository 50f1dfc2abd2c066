"""Schema migrations: ordered SQL files (migrations/NNNN_name.sql), each applied once, recorded in
schema_migrations.

Everything runs in one transaction under a transaction-scoped advisory lock, so tasks that start together apply
the pending files exactly once between them (the others wait, then find nothing to do), and a failing file leaves
the schema as it was. So a file must not need to run outside a transaction (no CREATE INDEX CONCURRENTLY).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql
from psycopg.rows import DictRow

from . import logs

APPLICATION_ROLE = "selfnest_app"   # created by 0002_application_role.sql
# RDS's role for IAM database authentication: its members sign in with a token, never a password.
RDS_IAM_ROLE = "rds_iam"
MIGRATION_FILE = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql")
# Any constant both runners agree on; it only has to differ from other advisory locks in this database.
MIGRATION_LOCK_KEY = 0x5E1F_0001


@dataclass(frozen=True, kw_only=True)
class Migration:
    version: int
    name: str
    statements: str


class MigrationError(RuntimeError):
    """The migration files or the recorded history are inconsistent; nothing was applied."""


def bundled_migrations() -> list[Migration]:
    folder = resources.files(__package__) / "migrations"
    migrations = []
    for entry in folder.iterdir():
        match = MIGRATION_FILE.fullmatch(entry.name)
        if match is None:
            if entry.name.endswith(".sql"):
                raise MigrationError(f"migrations/{entry.name}: expected a name like 0001_create_sessions.sql")
            continue
        migrations.append(Migration(version=int(match["version"]), name=match["name"],
                                    statements=entry.read_text(encoding="utf-8")))
    migrations.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return migrations


def apply_migrations(connection: psycopg.Connection[DictRow], *,
                     migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply the pending migrations; return those this call applied (empty when the schema was current)."""
    wanted = bundled_migrations() if migrations is None else migrations
    applied: list[Migration] = []
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        connection.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                           " version integer PRIMARY KEY, name text NOT NULL,"
                           " applied_at timestamptz NOT NULL DEFAULT now())")
        recorded = {row["version"]: row["name"]
                    for row in connection.execute("SELECT version, name FROM schema_migrations").fetchall()}
        for migration in wanted:
            if migration.version in recorded:
                if recorded[migration.version] != migration.name:
                    raise MigrationError(f"migration {migration.version:04d} was applied as "
                                         f"{recorded[migration.version]!r} but the file is now {migration.name!r}")
                continue
            # The files are trusted code shipped in the image, not input: run them as written.
            connection.execute(migration.statements)
            connection.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                               (migration.version, migration.name))
            applied.append(migration)
    for migration in applied:
        logs.info("migration_applied", version=migration.version, name=migration.name)
    return applied


def provision_application_login(connection: psycopg.Connection[DictRow], *, username: str,
                                password: str | None) -> bool:
    """Make sure the API's login exists and is a member of APPLICATION_ROLE, nothing more.

    `password` None: an IAM login (every deployed API), with no password and a member of rds_iam, so RDS admits it
    only with an IAM token its task role signed; an existing login loses any password an earlier version gave it. A
    database without rds_iam (not RDS, or IAM authentication unknown to it) is refused: nobody could sign in.
    With a password (a PostgreSQL without IAM authentication): created with it when missing; an existing login keeps
    its own (whoever rotates the secret owns it from then on). Returns whether the login was created.
    """
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)).fetchone()
        roles = [APPLICATION_ROLE]
        if password is None:
            if connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (RDS_IAM_ROLE,)).fetchone() is None:
                raise MigrationError(f"APP_DB_IAM_USER={username}: this database has no {RDS_IAM_ROLE} role, so it "
                                     "cannot authenticate IAM tokens (RDS for PostgreSQL has it); give the login a "
                                     "password with APP_DB_SECRET_ARN instead")
            roles.append(RDS_IAM_ROLE)
        granted = sql.SQL(", ").join(sql.Identifier(role) for role in roles)
        if exists is None:
            connection.execute(sql.SQL("CREATE ROLE {} LOGIN {} NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT IN ROLE {}")
                               .format(sql.Identifier(username),
                                       sql.SQL("PASSWORD NULL") if password is None
                                       else sql.SQL("PASSWORD {}").format(sql.Literal(password)),
                                       granted))
        else:
            connection.execute(sql.SQL("GRANT {} TO {}").format(granted, sql.Identifier(username)))
            if password is None:
                connection.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(username)))
    logs.info("application_login_ready", created=exists is None,
              authentication="iam" if password is None else "password")
    return exists is None
