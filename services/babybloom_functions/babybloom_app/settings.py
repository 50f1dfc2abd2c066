"""The app settings the function app reads: their names (shared with the Pulumi program) and one validated model.

In Azure every data path authenticates with the app's managed identity: the settings name endpoints, never keys.
Locally the same code talks to the Cosmos DB and Storage emulators, which only accept their well-known keys; those
are accepted here only for endpoints on this machine, so a key can never become the way to reach a real account.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

# Setting names. The Pulumi program (stacks/babybloom/program.py) imports these, so both sides agree by construction.
COSMOS_ENDPOINT = "COSMOS__accountEndpoint"  # identity-based connection form the Cosmos DB bindings read too
COSMOS_DATABASE = "COSMOS_DATABASE"
REMINDER_QUEUE = "REMINDER_QUEUE"
# The reminders queue is reached through a connection named REMINDERS: the queue trigger binding and the app's own
# sender read the same settings. In Azure: REMINDERS__queueServiceUri (+ __credential); locally: a connection string.
REMINDERS_CONNECTION = "REMINDERS"
REMINDERS_QUEUE_SERVICE_URI = f"{REMINDERS_CONNECTION}__queueServiceUri"
REMINDERS_CREDENTIAL = f"{REMINDERS_CONNECTION}__credential"
# Local development only (refused for any endpoint that is not on this machine).
COSMOS_EMULATOR_KEY = "COSMOS_EMULATOR_KEY"
# Whose access tokens the app accepts: the Entra ID tenant's OpenID issuer and this API's application (client) id.
AUTH_ISSUER = "BABYBLOOM_AUTH_ISSUER"
AUTH_CLIENT_ID = "BABYBLOOM_AUTH_CLIENT_ID"
# Set by App Service itself ("True") while its built-in authentication runs in front of the app; never set by us.
PLATFORM_AUTHENTICATION = "WEBSITE_AUTH_ENABLED"

AZURE_SETTINGS = (COSMOS_ENDPOINT, COSMOS_DATABASE, REMINDER_QUEUE, REMINDERS_QUEUE_SERVICE_URI, REMINDERS_CREDENTIAL,
                  AUTH_ISSUER, AUTH_CLIENT_ID)
GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


class ConfigError(Exception):
    """A missing or unsafe setting, worded for whoever deploys the app (one line, names the setting)."""


@dataclass(frozen=True, kw_only=True)
class CosmosTarget:
    endpoint: str
    database: str
    # Set only for the local emulator; None means "authenticate with the managed identity".
    emulator_key: str | None

    @property
    def local(self) -> bool:
        return self.emulator_key is not None


@dataclass(frozen=True, kw_only=True)
class QueueTarget:
    queue_name: str
    # Exactly one of the two: a service URI reached with the managed identity, or a local emulator connection string.
    service_uri: str | None
    local_connection_string: str | None


@dataclass(frozen=True, kw_only=True)
class AuthenticationTarget:
    issuer: str
    client_id: str
    # Whether App Service authentication runs in front of the app (only then can X-MS-CLIENT-PRINCIPAL be genuine).
    platform_authentication: bool

    @property
    def audiences(self) -> tuple[str, str]:
        """An access token for this API names it by client id or by its default application id URI."""
        return (self.client_id, f"api://{self.client_id}")


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    cosmos: CosmosTarget
    reminders: QueueTarget
    authentication: AuthenticationTarget


def load_config(environ: Mapping[str, str]) -> AppConfig:
    """Validate the process settings once, at start-up; a mistake raises ConfigError naming the setting."""
    endpoint = _required(environ, COSMOS_ENDPOINT)
    _require_https_url(COSMOS_ENDPOINT, endpoint)
    emulator_key = environ.get(COSMOS_EMULATOR_KEY) or None
    if emulator_key is not None and not _is_loopback(endpoint):
        raise ConfigError(
            f"{COSMOS_EMULATOR_KEY}: only allowed with a local emulator endpoint, not {endpoint}; "
            "in Azure the app authenticates with its managed identity"
        )
    connection_string = environ.get(REMINDERS_CONNECTION) or None
    service_uri = environ.get(REMINDERS_QUEUE_SERVICE_URI) or None
    if (connection_string is None) == (service_uri is None):
        raise ConfigError(
            f"{REMINDERS_QUEUE_SERVICE_URI}: required in Azure (or {REMINDERS_CONNECTION} with a local emulator "
            "connection string), exactly one of the two"
        )
    if connection_string is not None:
        queue_endpoint = _connection_string_field(connection_string, "QueueEndpoint")
        if queue_endpoint is None or not _is_loopback(queue_endpoint):
            raise ConfigError(
                f"{REMINDERS_CONNECTION}: a connection string is only allowed for a local emulator "
                f"(QueueEndpoint=http://127.0.0.1:...); in Azure set {REMINDERS_QUEUE_SERVICE_URI}"
            )
    if service_uri is not None:
        _require_https_url(REMINDERS_QUEUE_SERVICE_URI, service_uri)
    issuer = _required(environ, AUTH_ISSUER)
    if not _is_loopback(issuer):  # a local test identity provider may serve plain HTTP on this machine only
        _require_https_url(AUTH_ISSUER, issuer)
    client_id = _required(environ, AUTH_CLIENT_ID)
    if not GUID.fullmatch(client_id):
        raise ConfigError(f"{AUTH_CLIENT_ID}: {client_id!r} is not allowed (allowed: the app registration's "
                          "application (client) id, a GUID)")
    return AppConfig(
        cosmos=CosmosTarget(
            endpoint=endpoint, database=_required(environ, COSMOS_DATABASE), emulator_key=emulator_key
        ),
        reminders=QueueTarget(
            queue_name=_required(environ, REMINDER_QUEUE),
            service_uri=service_uri,
            local_connection_string=connection_string,
        ),
        authentication=AuthenticationTarget(
            issuer=issuer, client_id=client_id,
            platform_authentication=environ.get(PLATFORM_AUTHENTICATION, "").strip().lower() == "true",
        ),
    )


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name}: missing (required)")
    return value


def _require_https_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"{name}: {value!r} is not allowed (allowed: an https:// URL)")


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _connection_string_field(connection_string: str, field: str) -> str | None:
    for part in connection_string.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == field.lower():
            return value.strip()
    return None
