"""PostgreSQL through a connection pool, signing in one of two ways (settings.py says which):

- IAM database authentication (`IamAuthToken`, every deployed API): each new connection gets a fresh token,
  signed locally with the task role's credentials (no network call, valid 15 minutes, only for signing in), sent as
  the password over TLS. Nothing is cached, so a pool that opens a connection hours later still signs in.
- A secret with a username and password (`DatabaseSecret`: the migrate task's master login, or a PostgreSQL without
  IAM authentication). The secret is read once and cached. When PostgreSQL refuses the cached password (the secret
  was rotated), the secret is read again once and the connection retried, so rotation needs no restart.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from . import logs
from .errors import ServiceUnavailableError
from .settings import Settings, SettingsError, refuse_unverified_tls

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

POOL_WAIT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5
# Server-side guards: a stuck query or a forgotten transaction must not hold a slot's row locks for long.
SESSION_OPTIONS = "-c TimeZone=UTC -c statement_timeout=10s -c idle_in_transaction_session_timeout=30s"


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """The RDS-generated secret: username and password, and (usually) where the database is."""

    username: str
    password: str = field(repr=False)   # a password or an IAM token: never in a log line or a traceback
    host: str | None
    port: int | None
    dbname: str | None

    @classmethod
    def from_secret_string(cls, secret_string: str) -> Credentials:
        try:
            fields = json.loads(secret_string)
        except json.JSONDecodeError:
            fields = None
        if not isinstance(fields, dict) or not all(isinstance(fields.get(key), str) and fields[key]
                                                   for key in ("username", "password")):
            raise SettingsError("DB_SECRET_ARN: the secret is not JSON with a username and a password")
        port = fields.get("port")
        return cls(username=fields["username"], password=fields["password"], host=fields.get("host") or None,
                   port=int(port) if port else None, dbname=fields.get("dbname") or None)


class Login(Protocol):
    """Where a new connection's credentials come from."""

    def current(self) -> Credentials: ...

    def replace_refused(self, refused: Credentials) -> Credentials: ...


class TokenSigner(Protocol):
    """The part of boto3's RDS client IAM authentication uses (it signs locally; no request is sent)."""

    def generate_db_auth_token(self, DBHostname: str, Port: int, DBUsername: str,  # noqa: N803 - boto3's names
                               Region: str | None = None) -> str: ...  # noqa: N803


class IamAuthToken:
    """IAM database authentication: a new token for every call, for `user` at `host`:`port` in `region`."""

    def __init__(self, *, client: TokenSigner, user: str, host: str, port: int, region: str) -> None:
        self._client = client
        self._user, self._host, self._port, self._region = user, host, port, region

    def current(self) -> Credentials:
        # Signed locally (SigV4 presigning) with the caller's credentials; RDS checks it and rds-db:connect.
        token = self._client.generate_db_auth_token(DBHostname=self._host, Port=self._port, DBUsername=self._user,
                                                    Region=self._region)
        return Credentials(username=self._user, password=token, host=None, port=None, dbname=None)

    def replace_refused(self, refused: Credentials) -> Credentials:
        return self.current()


class DatabaseSecret:
    """The cached credentials; re-read from Secrets Manager only when the ones in use have been refused."""

    def __init__(self, *, client: SecretsManagerClient, secret_arn: str) -> None:
        self._client = client
        self._secret_arn = secret_arn
        self._lock = threading.Lock()
        self._cached: Credentials | None = None

    def current(self) -> Credentials:
        with self._lock:
            if self._cached is None:
                self._cached = self._read()
            return self._cached

    def replace_refused(self, refused: Credentials) -> Credentials:
        """Fresh credentials after `refused` failed; threads that fail together cause one read, not one each."""
        with self._lock:
            if self._cached is None or self._cached == refused:
                self._cached = self._read()
                logs.info("database_secret_reread")
            return self._cached

    def _read(self) -> Credentials:
        return Credentials.from_secret_string(self._client.get_secret_value(SecretId=self._secret_arn)["SecretString"])


STANDBY_REFUSAL = ("this region's database is a standby (read-only) until failover promotes it: reading works, "
                   "changes do not; try again shortly")
STANDBY_RETRY_SECONDS = "60"


# Connection failures carry no SQLSTATE in libpq; the server's FATAL message is the only signal. RDS checks an IAM
# token through PAM, so it refuses one (expired, signed for another host or user, no rds-db:connect) that way.
POSTGRES_REFUSAL = "password authentication failed"
RDS_IAM_REFUSAL = "PAM authentication failed for user"
IAM_REFUSAL_HINT = ("RDS refused the IAM token: the likely cause is the task role's rds-db:connect (it must name "
                    "this login on this instance's DbiResourceId) or a login not granted rds_iam (the migrate task "
                    "grants it)")


def is_refused_password(error: psycopg.OperationalError) -> bool:
    """Whether the server refused the credentials (a password, or an IAM token), not the connection itself."""
    return POSTGRES_REFUSAL in str(error) or is_refused_iam_token(error)


def is_refused_iam_token(error: psycopg.OperationalError) -> bool:
    return RDS_IAM_REFUSAL in str(error)


def describe_connection_failure(error: psycopg.OperationalError | PoolTimeout) -> str:
    """One line for an operator: the server's first line, and for a refused IAM token what to check."""
    text = str(error).strip()
    first_line = text.splitlines()[0] if text else type(error).__name__
    if isinstance(error, psycopg.OperationalError) and is_refused_iam_token(error):
        return f"{first_line} ({IAM_REFUSAL_HINT})"
    return first_line


class SignedInConnection(psycopg.Connection[DictRow]):
    """A connection that signs in with its login's current credentials (a fresh IAM token, or the secret's);
    explicit host/port/dbname arguments win over the secret's."""

    login: ClassVar[Login]

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
        credentials = cls.login.current()
        try:
            return super().connect(conninfo, **_login(credentials, kwargs))
        except psycopg.OperationalError as error:
            if not is_refused_password(error):
                raise
        logs.warning("database_password_refused")
        return super().connect(conninfo, **_login(cls.login.replace_refused(credentials), kwargs))


def _login(credentials: Credentials, explicit: dict[str, Any]) -> dict[str, Any]:
    from_secret = {"host": credentials.host, "port": credentials.port, "dbname": credentials.dbname}
    return {**{key: value for key, value in from_secret.items() if value is not None}, **explicit,
            "user": credentials.username, "password": credentials.password}


def bind_login(login: Login) -> type[SignedInConnection]:
    """A SignedInConnection class for this login (the pool creates connections from a class, not an instance)."""

    class BoundConnection(SignedInConnection):
        pass

    BoundConnection.login = login
    return BoundConnection


def login_for(settings: Settings, *, client_config: Any = None) -> Login:
    """How `settings` sign in: IAM tokens for DB_IAM_USER, else the secret DB_SECRET_ARN names."""
    import boto3

    if settings.db_iam_user is not None:
        assert settings.db_host is not None and settings.db_port is not None and settings.db_region is not None
        return IamAuthToken(client=boto3.client("rds", region_name=settings.db_region, config=client_config),
                            user=settings.db_iam_user, host=settings.db_host, port=settings.db_port,
                            region=settings.db_region)
    assert settings.db_secret_arn is not None   # settings.py requires one of the two
    return DatabaseSecret(client=boto3.client("secretsmanager", region_name=settings.secret_region,
                                              config=client_config), secret_arn=settings.db_secret_arn)


class Database:
    def __init__(self, *, settings: Settings, login: Login, max_connections: int = 10) -> None:
        self._login = login
        self._connection_class = bind_login(login)
        explicit = {"host": settings.db_host, "port": settings.db_port, "dbname": settings.db_name}
        self._connect_arguments: dict[str, Any] = {
            **{key: value for key, value in explicit.items() if value is not None},
            "sslmode": settings.db_sslmode,
            # verify-full: the server's certificate must chain to the RDS CA bundle and name the host we dialled.
            **({"sslrootcert": settings.db_sslrootcert} if settings.db_sslrootcert else {}),
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": "selfnest-api",
            "options": SESSION_OPTIONS,
        }
        self._pool = ConnectionPool(
            connection_class=self._connection_class,
            kwargs={**self._connect_arguments, "row_factory": dict_row},
            min_size=1,
            max_size=max_connections,
            open=False,
            timeout=POOL_WAIT_SECONDS,
            # A connection that died while idle (failover, idle timeout) is replaced instead of failing a request.
            check=ConnectionPool.check_connection,
            name="selfnest-api",
        )

    def open(self) -> None:
        self._check_target()
        self._pool.open(wait=True, timeout=POOL_WAIT_SECONDS)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[DictRow]]:
        try:
            with self._pool.connection() as connection:
                yield connection
        except PoolTimeout:
            raise ServiceUnavailableError("the database is not answering; try again shortly") from None
        except psycopg.errors.ReadOnlySqlTransaction:
            # A warm standby's API serves the DR region's read replica: reads work, writes wait for its promotion.
            raise ServiceUnavailableError(STANDBY_REFUSAL, headers={"Retry-After": STANDBY_RETRY_SECONDS}) from None

    def is_read_only(self) -> bool:
        """Whether this database takes no writes (a read replica not yet promoted)."""
        with self.connection() as connection:
            row = connection.execute("SELECT current_setting('transaction_read_only') AS read_only").fetchone()
        return row is not None and row["read_only"] == "on"

    def connect_outside_pool(self) -> psycopg.Connection[DictRow]:
        """A dedicated connection (migrations hold a transaction-wide lock and should not borrow a pool slot)."""
        self._check_target()
        return self._connection_class.connect(**self._connect_arguments, row_factory=dict_row)

    def _check_target(self) -> None:
        """Where to connect comes from the settings or the secret; refuse to fall back to libpq's defaults."""
        if "host" in self._connect_arguments and "dbname" in self._connect_arguments:
            return   # nothing to look up (and no IAM token signed for nothing)
        credentials = self._login.current()
        if "host" not in self._connect_arguments:
            if credentials.host is None:
                raise SettingsError("DB_HOST is not set and the database secret names no host")
            refuse_unverified_tls(sslmode=self._connect_arguments["sslmode"], host=credentials.host,
                                  where="the secret's host", login="DB_SECRET_ARN")
        if "dbname" not in self._connect_arguments and credentials.dbname is None:
            raise SettingsError("DB_NAME is not set and the database secret names no dbname")
