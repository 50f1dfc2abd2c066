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
RDS_SUPERUSER_ROLE = "rds_superuser"   # RDS's administrators (the master user is one)
# Role names the API's login may not take: PostgreSQL's own (pg_*) and RDS's (rds_*, rdsadmin, rdsrepladmin...).
RESERVED_PREFIXES = ("pg_", "rds")
# The API's login before IAM database authentication: it signed in with a password from its own secret, which a
# multi-user rotation (Secrets Manager's alternating-users strategy) turned into two logins, the user and
# `<user>_clone`, both valid at all times. The IAM login has a new name (the deployed stacks' APP_DB_IAM_USER), so
# the previous version's tasks keep signing in with their password during a rolling deploy; the migrate task then
# retires these once nobody is signed in as them (retire_pre_iam_logins).
PRE_IAM_LOGIN = "selfnest_api"
ROTATION_CLONE_SUFFIX = "_clone"
PRE_IAM_LOGINS = (PRE_IAM_LOGIN, PRE_IAM_LOGIN + ROTATION_CLONE_SUFFIX)
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
    """Make sure the API's login exists with no power but membership in APPLICATION_ROLE (and rds_iam), nothing more.

    `password` None: an IAM login (every deployed API), with no password and a member of rds_iam, so RDS admits it
    only with an IAM token its task role signed; an existing login loses any password an earlier version gave it. A
    database without rds_iam (not RDS, or IAM authentication unknown to it) is refused: nobody could sign in.
    With a password (a PostgreSQL without IAM authentication): created with it (sent as a SCRAM verifier, never in
    clear text) when missing; an existing login keeps its own (whoever rotates the secret owns it from then on).

    A name that is, or may be, a privileged role is refused; an existing login is reset to a plain login whose only
    memberships are the ones above. Refusals are one line naming the setting the name came from.
    Returns whether the login was created.
    """
    named = f"APP_DB_IAM_USER={username}" if password is None else f"APP_DB_SECRET_ARN's username {username}"
    try:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            _refuse_reserved_name(connection, username=username, named=named)
            roles = [APPLICATION_ROLE]
            if password is None:
                if not _role_exists(connection, RDS_IAM_ROLE):
                    raise MigrationError(f"{named}: this database has no {RDS_IAM_ROLE} role, so it cannot "
                                         "authenticate IAM tokens (RDS for PostgreSQL has it); give the login a "
                                         "password with APP_DB_SECRET_ARN instead")
                roles.append(RDS_IAM_ROLE)
            granted = sql.SQL(", ").join(sql.Identifier(role) for role in roles)
            existing = connection.execute(
                "SELECT rolsuper, rolcanlogin, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolinherit"
                " FROM pg_roles WHERE rolname = %s", (username,)).fetchone()
            if existing is None:
                connection.execute(sql.SQL("CREATE ROLE {} LOGIN {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                                           "NOBYPASSRLS INHERIT IN ROLE {}").format(
                    sql.Identifier(username), _password_clause(connection, username=username, password=password),
                    granted))
            else:
                _refuse_superuser(connection, username=username, named=named, superuser=existing["rolsuper"])
                _reset(connection, username=username, attributes=existing, iam=password is None)
                connection.execute(sql.SQL("GRANT {} TO {}").format(granted, sql.Identifier(username)))
                _revoke_other_memberships(connection, username=username, kept=roles, named=named)
    except psycopg.OperationalError:
        raise   # the database went away: a dependency problem, reported as such by the caller
    except psycopg.Error as error:
        raise MigrationError(f"{named}: cannot provision the login: {first_line(error)}") from None
    logs.info("application_login_ready", created=existing is None,
              authentication="iam" if password is None else "password")
    return existing is None


def _refuse_reserved_name(connection: psycopg.Connection[DictRow], *, username: str, named: str) -> None:
    """Names that are, or may become, someone else's role: the master, the group, PostgreSQL's and RDS's own."""
    row = connection.execute("SELECT current_user AS current, session_user AS session").fetchone()
    assert row is not None
    if username in (row["current"], row["session"]):
        raise MigrationError(f"{named}: that is the login the migrate task signs in as (the master user); the API "
                             "needs a login of its own")
    if username == APPLICATION_ROLE:
        raise MigrationError(f"{named}: that is the API's group role (it holds the table grants); name a login "
                             "that joins it")
    if username == RDS_IAM_ROLE or username.startswith(RESERVED_PREFIXES):
        raise MigrationError(f"{named}: names starting with {' or '.join(RESERVED_PREFIXES)} belong to PostgreSQL "
                             "and RDS (their own roles); choose another name")


def _refuse_superuser(connection: psycopg.Connection[DictRow], *, username: str, named: str, superuser: bool) -> None:
    administrator = _role_exists(connection, RDS_SUPERUSER_ROLE) and connection.execute(
        "SELECT 1 WHERE pg_has_role(%s, %s, 'MEMBER')", (username, RDS_SUPERUSER_ROLE)).fetchone() is not None
    if superuser or administrator:
        raise MigrationError(f"{named}: that role exists and is a superuser"
                             f"{'' if superuser else f' (a member of {RDS_SUPERUSER_ROLE})'}; the API's login must "
                             "not administer the database: name another login")


def _reset(connection: psycopg.Connection[DictRow], *, username: str, attributes: DictRow, iam: bool) -> None:
    """ALTER ROLE ... LOGIN NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT [PASSWORD NULL], naming only
    the attributes that differ: PostgreSQL lets only a superuser name REPLICATION or BYPASSRLS at all, and RDS's
    master user is not one, so a login already without them must not be told to lose them."""
    wanted = (("rolcanlogin", True, "LOGIN"), ("rolcreatedb", False, "NOCREATEDB"),
              ("rolcreaterole", False, "NOCREATEROLE"), ("rolreplication", False, "NOREPLICATION"),
              ("rolbypassrls", False, "NOBYPASSRLS"), ("rolinherit", True, "INHERIT"))
    changes = [keyword for column, value, keyword in wanted if attributes[column] != value]
    if iam:
        changes.append("PASSWORD NULL")
    if changes:
        connection.execute(sql.SQL("ALTER ROLE {} {}").format(sql.Identifier(username),
                                                               sql.SQL(" ".join(changes))))


def _revoke_other_memberships(connection: psycopg.Connection[DictRow], *, username: str, kept: list[str],
                              named: str) -> None:
    for role in _memberships(connection, username):
        if role not in kept:
            connection.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(username)))
    # A membership granted by another role survives a REVOKE by this one (PostgreSQL 16+ only warns): say so.
    left = [role for role in _memberships(connection, username) if role not in kept]
    if left:
        raise MigrationError(f"{named}: the login is still a member of {', '.join(left)} (granted by another role); "
                             "revoke that membership as its grantor, then deploy again")


def _memberships(connection: psycopg.Connection[DictRow], username: str) -> list[str]:
    return [row["rolname"] for row in connection.execute(
        "SELECT DISTINCT granted.rolname FROM pg_auth_members membership"
        " JOIN pg_roles granted ON granted.oid = membership.roleid"
        " JOIN pg_roles member ON member.oid = membership.member"
        " WHERE member.rolname = %s ORDER BY granted.rolname", (username,))]


def _password_clause(connection: psycopg.Connection[DictRow], *, username: str, password: str | None) -> sql.Composable:
    if password is None:
        return sql.SQL("PASSWORD NULL")
    # The server stores a verifier anyway; computing it here keeps the password itself out of the statement (and so
    # out of any statement log, pg_stat_statements or error message that quotes it).
    verifier = connection.pgconn.encrypt_password(password.encode(), username.encode(), b"scram-sha-256")
    return sql.SQL("PASSWORD {}").format(sql.Literal(verifier.decode()))


def retire_pre_iam_logins(connection: psycopg.Connection[DictRow], *, keep: str) -> dict[str, str]:
    """Retire PRE_IAM_LOGINS (other than `keep`): NOLOGIN, PASSWORD NULL, out of APPLICATION_ROLE and rds_iam.

    All of them or none: the rotation's clone holds its rights through the user it was made from (`GRANT <user> TO
    <user>_clone`), so retiring one while the other is in use breaks its sessions too. So only when no session is
    signed in as any of them, or as any role that inherits from one of them: during a rolling deploy the previous
    version's API tasks still use theirs until ECS replaces them, so logins in use are kept and retired by the next
    migrate run. pg_stat_activity sees only this instance: a replica's sessions (a warm standby's API) are invisible
    here, so the caller runs this only where no replica serves the API (RETIRE_PRE_IAM_LOGINS).
    Returns, per login that still needed it, "retired" or "in use".
    """
    candidates = [login for login in PRE_IAM_LOGINS if login != keep]
    try:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            existing = [login for login in candidates if _role_exists(connection, login)]
            pending = [login for login in existing if _still_usable(connection, login)]
            if not pending:
                return {}   # never existed here, or retired already
            signed_in = _sessions_holding_rights_of(connection, existing)
            if signed_in:
                logs.warning("pre_iam_login_in_use", logins=", ".join(pending),
                             signed_in_as=", ".join(sorted(signed_in)), sessions=sum(signed_in.values()),
                             message=f"{', '.join(sorted(signed_in))} still signed in (API tasks of the previous "
                                     f"version), holding the rights of {' or '.join(existing)}: none of "
                                     f"{', '.join(pending)} is retired now; they will be on the next deploy that runs "
                                     "the migrate task")
                return dict.fromkeys(pending, "in use")
            for login in pending:
                _retire(connection, login)
    except psycopg.OperationalError:
        raise
    except psycopg.Error as error:
        raise MigrationError(f"cannot retire the password-era logins {', '.join(candidates)}: "
                             f"{first_line(error)}") from None
    return dict.fromkeys(pending, "retired")


def _still_usable(connection: psycopg.Connection[DictRow], login: str) -> bool:
    row = connection.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (login,)).fetchone()
    return row is not None and (row["rolcanlogin"] or bool(_api_memberships(connection, login)))


def _api_memberships(connection: psycopg.Connection[DictRow], login: str) -> list[str]:
    return [role for role in _memberships(connection, login) if role in (APPLICATION_ROLE, RDS_IAM_ROLE)]


def _sessions_holding_rights_of(connection: psycopg.Connection[DictRow], logins: list[str]) -> dict[str, int]:
    """Sessions, by login, of any of `logins` or of a role that inherits from one (USAGE: it has their rights
    without SET ROLE). A superuser has every role's rights without needing these, and this session is the master's."""
    held = sql.SQL(" OR ").join(sql.SQL("pg_has_role(activity.usesysid, {}, 'USAGE')").format(sql.Literal(login))
                                for login in logins)
    return {row["usename"]: row["sessions"] for row in connection.execute(sql.SQL(
        "SELECT activity.usename, count(*) AS sessions FROM pg_stat_activity activity"
        " JOIN pg_roles signed_in ON signed_in.oid = activity.usesysid"
        " WHERE activity.pid <> pg_backend_pid() AND NOT signed_in.rolsuper AND ({})"
        " GROUP BY activity.usename ORDER BY activity.usename").format(held))}


def _retire(connection: psycopg.Connection[DictRow], login: str) -> None:
    connection.execute(sql.SQL("ALTER ROLE {} NOLOGIN PASSWORD NULL").format(sql.Identifier(login)))
    for role in _api_memberships(connection, login):
        connection.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(login)))
    # A membership granted by another role survives a REVOKE by this one (PostgreSQL 16+ only warns): say so. The
    # login can no longer sign in, but a role that inherits from it keeps the rights; the next run tries again.
    left = _api_memberships(connection, login)
    if left:
        logs.warning("pre_iam_login_membership_kept", login=login, memberships=", ".join(left),
                     message=f"{login} is retired (NOLOGIN) but still a member of {', '.join(left)} (granted by "
                             "another role); revoke that membership as its grantor")
    else:
        logs.info("pre_iam_login_retired", login=login)


def _role_exists(connection: psycopg.Connection[DictRow], name: str) -> bool:
    return connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def first_line(error: psycopg.Error) -> str:
    message = error.diag.message_primary or str(error).strip() or type(error).__name__
    return message.splitlines()[0]
