"""The app settings the function app reads: their names (shared with the Pulumi program) and one validated model.

In Azure every data path authenticates with the app's managed identity: the settings name endpoints, never keys.
Locally the same code talks to the Cosmos DB and Storage emulators, which only accept their well-known keys; those
are accepted here only for endpoints on this machine, so a key can never become the way to reach a real account.
"""

from __future__ import annotations

import ipaddress
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

AZURE_SETTINGS = (COSMOS_ENDPOINT, COSMOS_DATABASE, REMINDER_QUEUE, REMINDERS_QUEUE_SERVICE_URI, REMINDERS_CREDENTIAL)


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
class AppConfig:
    cosmos: CosmosTarget
    reminders: QueueTarget


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
    return AppConfig(
        cosmos=CosmosTarget(
            endpoint=endpoint, database=_required(environ, COSMOS_DATABASE), emulator_key=emulator_key
        ),
        reminders=QueueTarget(
            queue_name=_required(environ, REMINDER_QUEUE),
            service_uri=service_uri,
            local_connection_string=connection_string,
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
