"""The API's settings: read from the environment once, at start-up, and refused with one line when wrong."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

USER_POOL_ID = re.compile(r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)_[0-9A-Za-z]+")
SNS_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):\d{12}:[A-Za-z0-9_.-]{1,256}")
SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):\d{12}:secret:[^\s]+")
APP_CLIENT_ID = re.compile(r"[\w+]{1,128}")
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d")
# A PostgreSQL role name as IAM database authentication maps it (lowercase, unquoted, at most 63 bytes).
DATABASE_USER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# RDS accepts IAM authentication tokens over TLS only; a mode that may fall back to plain text is refused up front.
TLS_MODES = ("require", "verify-ca", "verify-full")
# An IAM token is a bearer credential: it goes only to a server that proved it is the host we dialled.
VERIFIED_TLS_MODE = "verify-full"
LOOPBACK_NAMES = ("localhost",)


class SettingsError(ValueError):
    """A missing or malformed setting; the message is the one line an operator needs."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    port: int
    db_host: str | None
    db_port: int | None
    db_name: str | None
    # How the process signs in, exactly one of: `db_iam_user` (IAM database authentication: a token per connection,
    # signed with the task role's credentials for `db_region`; every deployed API) or `db_secret_arn` (a secret with
    # a username and password: the migrate task's master login, or a PostgreSQL without IAM authentication).
    db_secret_arn: str | None
    db_iam_user: str | None
    db_region: str | None
    db_sslmode: str
    db_sslrootcert: str | None
    user_pool_id: str
    user_pool_client_ids: tuple[str, ...]
    cognito_jwks_url: str
    session_events_topic_arn: str
    # The migrate task's API login to create: a password login from a secret, or an IAM login (granted rds_iam).
    app_db_secret_arn: str | None
    app_db_iam_user: str | None
    # Whether the migrate task may retire the password-era logins: only where it can see every session that might
    # use them (no replica serving API tasks; the web stack sets it).
    retire_pre_iam_logins: bool
    therapist_roster_seconds: float
    max_open_bookings: int
    booking_changes_per_hour: int
    sessions_page_size: int

    @property
    def region(self) -> str:
        """The user pool's region (its id's prefix): where Cognito issues and signs the tokens."""
        return _region_of(USER_POOL_ID, self.user_pool_id)

    @property
    def token_issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"

    @property
    def secret_region(self) -> str | None:
        """The region of the secret the process signs in with (None: it signs in with IAM tokens)."""
        return None if self.db_secret_arn is None else secret_region(self.db_secret_arn)

    @property
    def topic_region(self) -> str:
        return _region_of(SNS_TOPIC_ARN, self.session_events_topic_arn)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Validate every setting; raise SettingsError naming the first variable that is missing or malformed."""
    reader = _EnvironmentReader(environ)
    user_pool_id = reader.matching("USER_POOL_ID", USER_POOL_ID, example="eu-west-1_AbCdEf123")
    region = _region_of(USER_POOL_ID, user_pool_id)
    default_jwks_url = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}/.well-known/jwks.json"
    db_secret_arn = reader.optional_matching("DB_SECRET_ARN", SECRET_ARN, example="a Secrets Manager secret ARN")
    db_iam_user = reader.optional_matching("DB_IAM_USER", DATABASE_USER, example="a PostgreSQL user name")
    db_sslmode = reader.choice("DB_SSLMODE", SSL_MODES, default="verify-full")
    db_host, db_port, db_region = reader.optional("DB_HOST"), reader.port("DB_PORT"), None
    if (db_secret_arn is None) == (db_iam_user is None):
        raise SettingsError("set exactly one of DB_IAM_USER (IAM database authentication) and DB_SECRET_ARN (a "
                            "secret with a username and password) to say how to sign in to the database")
    if db_iam_user is not None:
        db_region = reader.matching("DB_REGION", REGION, example="the database's AWS region, such as eu-west-1")
        for name, value in (("DB_HOST", db_host), ("DB_PORT", db_port)):
            if value is None:
                raise SettingsError(f"{name} is not set (DB_IAM_USER signs a token for the database's host and port)")
        if db_sslmode not in TLS_MODES:
            raise SettingsError(f"DB_SSLMODE={db_sslmode!r} is not valid with DB_IAM_USER: RDS takes IAM tokens over "
                                f"TLS only (expected one of {', '.join(TLS_MODES)})")
        if reader.optional("DB_NAME") is None:
            raise SettingsError("DB_NAME is not set (with DB_IAM_USER there is no secret to name the database)")
    if db_host is not None:
        refuse_unverified_tls(sslmode=db_sslmode, host=db_host, where="DB_HOST",
                              login="DB_IAM_USER" if db_iam_user is not None else "DB_SECRET_ARN")
    app_db_secret_arn = reader.optional_matching("APP_DB_SECRET_ARN", SECRET_ARN,
                                                 example="a Secrets Manager secret ARN")
    app_db_iam_user = reader.optional_matching("APP_DB_IAM_USER", DATABASE_USER, example="a PostgreSQL user name")
    if app_db_secret_arn is not None and app_db_iam_user is not None:
        raise SettingsError("set at most one of APP_DB_IAM_USER and APP_DB_SECRET_ARN (the API's login signs in "
                            "with IAM tokens or with a password, not both)")
    return Settings(
        port=reader.port("PORT") or 8080,
        db_host=db_host,
        db_port=db_port,
        db_name=reader.optional("DB_NAME"),
        db_secret_arn=db_secret_arn,
        db_iam_user=db_iam_user,
        db_region=db_region,
        db_sslmode=db_sslmode,
        db_sslrootcert=reader.optional("DB_SSLROOTCERT"),
        user_pool_id=user_pool_id,
        user_pool_client_ids=reader.client_ids("USER_POOL_CLIENT_IDS"),
        cognito_jwks_url=reader.url("COGNITO_JWKS_URL", default=default_jwks_url),
        session_events_topic_arn=reader.matching("SESSION_EVENTS_TOPIC_ARN", SNS_TOPIC_ARN, example="an SNS topic ARN"),
        app_db_secret_arn=app_db_secret_arn,
        app_db_iam_user=app_db_iam_user,
        retire_pre_iam_logins=reader.flag("RETIRE_PRE_IAM_LOGINS"),
        therapist_roster_seconds=reader.seconds("THERAPIST_ROSTER_SECONDS", default=60),
        max_open_bookings=reader.count("MAX_OPEN_BOOKINGS", default=5),
        booking_changes_per_hour=reader.count("BOOKING_CHANGES_PER_HOUR", default=20),
        sessions_page_size=reader.count("SESSIONS_PAGE_SIZE", default=50),
    )


class _EnvironmentReader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise SettingsError(f"{name} is not set")
        return value

    def matching(self, name: str, pattern: re.Pattern[str], *, example: str) -> str:
        value = self.required(name)
        if not pattern.fullmatch(value):
            raise SettingsError(f"{name}={value!r} is not valid: expected {example}")
        return value

    def optional_matching(self, name: str, pattern: re.Pattern[str], *, example: str) -> str | None:
        return self.matching(name, pattern, example=example) if self.optional(name) is not None else None

    def port(self, name: str) -> int | None:
        value = self.optional(name)
        if value is None:
            return None
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise SettingsError(f"{name}={value!r} is not valid: expected a TCP port between 1 and 65535")
        return int(value)

    def choice(self, name: str, allowed: tuple[str, ...], *, default: str) -> str:
        value = self.optional(name) or default
        if value not in allowed:
            raise SettingsError(f"{name}={value!r} is not valid: expected one of {', '.join(allowed)}")
        return value

    def flag(self, name: str) -> bool:
        value = self.optional(name)
        if value is None:
            return False
        if value not in ("true", "false"):
            raise SettingsError(f"{name}={value!r} is not valid: expected true or false")
        return value == "true"

    def count(self, name: str, *, default: int) -> int:
        value = self.optional(name)
        if value is None:
            return default
        if not value.isdigit() or not 1 <= int(value) <= 1000:
            raise SettingsError(f"{name}={value!r} is not valid: expected a whole number between 1 and 1000")
        return int(value)

    def seconds(self, name: str, *, default: float) -> float:
        value = self.optional(name)
        if value is None:
            return default
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1
        if not 0 <= seconds <= 3600:
            raise SettingsError(f"{name}={value!r} is not valid: expected seconds between 0 and 3600")
        return seconds

    def url(self, name: str, *, default: str) -> str:
        value = self.optional(name) or default
        if not value.startswith(("https://", "http://")):
            raise SettingsError(f"{name}={value!r} is not valid: expected an http(s) URL")
        return value

    def client_ids(self, name: str) -> tuple[str, ...]:
        ids = tuple(part.strip() for part in self.required(name).split(",") if part.strip())
        malformed = [client_id for client_id in ids if not APP_CLIENT_ID.fullmatch(client_id)]
        if not ids or malformed:
            raise SettingsError(f"{name} is not valid: expected comma-separated Cognito app client ids")
        return ids


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine (a local stand-in for RDS, or a tunnel's local end), so no one in between."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_unverified_tls(*, sslmode: str, host: str, where: str, login: str) -> None:
    """An IAM token or the secret's password signs in as someone: it goes only to a server whose certificate names
    the host we dialled (verify-full), unless that host is this machine (nobody in between)."""
    if sslmode != VERIFIED_TLS_MODE and not is_loopback(host):
        what = ("the token signs in for 15 minutes" if login == "DB_IAM_USER"
                else "the secret's password would go to whoever answers")
        raise SettingsError(f"DB_SSLMODE={sslmode!r} is not valid with {login} and {where}={host}: {what}, so only "
                            f"a server whose certificate names that host may receive it ({VERIFIED_TLS_MODE}; a "
                            f"loopback host may use another mode)")


def secret_region(secret_arn: str) -> str:
    """The region in a (validated) Secrets Manager secret ARN."""
    return _region_of(SECRET_ARN, secret_arn)


def _region_of(pattern: re.Pattern[str], arn: str) -> str:
    match = pattern.fullmatch(arn)
    assert match is not None  # checked when the settings were read
    return match["region"]
