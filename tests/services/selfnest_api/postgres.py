"""A throwaway PostgreSQL cluster for the API tests: initdb into a temporary directory, started and always stopped.

The superuser connects over the cluster's private Unix socket without a password (peer-like trust, test set-up
only); everyone else connects over TCP on 127.0.0.1 with a SCRAM password, as the API does against RDS.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from refarch.local.postgres import find_binary
from refarch.local.postgres import unprivileged_account as _unprivileged_account
from refarch.local.processes import free_port

SUPERUSER = "postgres"


@dataclass(frozen=True, kw_only=True)
class DatabaseLogin:
    """What a Secrets Manager secret for this database holds (RDS shape)."""

    host: str
    port: int
    dbname: str
    username: str
    password: str

    def secret_string(self) -> str:
        return json.dumps({"engine": "postgres", "host": self.host, "port": self.port, "dbname": self.dbname,
                           "username": self.username, "password": self.password})


@dataclass(frozen=True, kw_only=True)
class TemporaryPostgres:
    directory: Path
    port: int

    @property
    def socket_directory(self) -> Path:
        return self.directory / "socket"

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection over the private socket, autocommit."""
        return psycopg.connect(host=str(self.socket_directory), port=self.port, user=SUPERUSER, dbname=dbname,
                               autocommit=True)

    def create_database(self, *, name: str) -> DatabaseLogin:
        """A new database owned by a new login role with a random password (what RDS's master user is to us: it may
        create roles, as rds_superuser's members may)."""
        login = DatabaseLogin(host="127.0.0.1", port=self.port, dbname=name, username=f"{name}_owner",
                              password=secrets.token_urlsafe(24))
        with self.admin() as admin:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                sql.Identifier(login.username), sql.Literal(login.password)))
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(login.username)))
        return login

    def application_login(self, owner: DatabaseLogin) -> DatabaseLogin:
        """What the API's own secret holds for `owner`'s database: a login the migrate step has yet to create."""
        return DatabaseLogin(host=owner.host, port=owner.port, dbname=owner.dbname,
                             username=f"{owner.dbname}_api", password=secrets.token_urlsafe(24))

    def change_password(self, login: DatabaseLogin) -> DatabaseLogin:
        rotated = DatabaseLogin(host=login.host, port=login.port, dbname=login.dbname, username=login.username,
                                password=secrets.token_urlsafe(24))
        with self.admin() as admin:
            admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(login.username), sql.Literal(rotated.password)))
        return rotated

    def disconnect_everyone(self, *, username: str) -> int:
        """End every session of `username` (what a failover or an idle timeout does to the API's pool)."""
        with self.admin() as admin:
            ended = admin.execute("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE usename = %s) AS terminated", (username,)).fetchone()
        assert ended is not None
        return int(str(ended[0]))


class _ClusterOwner:
    """Who runs initdb/pg_ctl: ourselves, or, when the tests run as root (PostgreSQL refuses to), an unprivileged
    system account that owns the cluster's directory."""

    def __init__(self, directory: Path) -> None:
        self.account = _unprivileged_account() if os.geteuid() == 0 else None
        if self.account is not None:
            os.chown(directory, self.account.pw_uid, self.account.pw_gid)

    def run(self, command: list[str], *, check: bool = True) -> None:
        environment = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
        finished = subprocess.run(command, capture_output=True, text=True, env=environment, check=False, cwd="/",
                                  user=None if self.account is None else self.account.pw_uid,
                                  group=None if self.account is None else self.account.pw_gid,
                                  extra_groups=None if self.account is None else [])
        if check and finished.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} failed: {finished.stderr.strip() or finished.stdout.strip()}")


@contextmanager
def temporary_postgres(directory: Path) -> Iterator[TemporaryPostgres]:
    """initdb + pg_ctl start; pg_ctl stop -m immediate on the way out, whatever happened in between.

    `directory` must be reachable by an unprivileged account when running as root (not under a 0700 parent).
    """
    owner = _ClusterOwner(directory)
    data = directory / "data"
    cluster = TemporaryPostgres(directory=directory, port=free_port())
    owner.run(["mkdir", str(cluster.socket_directory)])
    owner.run([str(find_binary("initdb")), "--pgdata", str(data), "--username", SUPERUSER,
               "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-sync"])
    pg_ctl = str(find_binary("pg_ctl"))
    settings = (f"-c listen_addresses=127.0.0.1 -p {cluster.port} -c unix_socket_directories={cluster.socket_directory}"
                " -c fsync=off -c max_connections=200")
    try:
        owner.run([pg_ctl, "start", "--pgdata", str(data), "--wait", "--log", str(directory / "postgres.log"),
                   "-o", settings])
        yield cluster
    finally:
        owner.run([pg_ctl, "stop", "--pgdata", str(data), "-m", "immediate"], check=False)
