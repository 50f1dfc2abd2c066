"""The app's settings: identity-based in Azure, emulator credentials only for endpoints on this machine."""

from __future__ import annotations

import pytest
from babybloom_app.settings import (
    AUTH_CLIENT_ID,
    AUTH_ISSUER,
    COSMOS_DATABASE,
    COSMOS_EMULATOR_KEY,
    COSMOS_ENDPOINT,
    PLATFORM_AUTHENTICATION,
    REMINDER_QUEUE,
    REMINDERS_CONNECTION,
    REMINDERS_QUEUE_SERVICE_URI,
    ConfigError,
    load_config,
)

AZURE = {
    COSMOS_ENDPOINT: "https://cosmos-babybloom-dev1234.documents.azure.com:443/",
    COSMOS_DATABASE: "babybloom",
    REMINDER_QUEUE: "reminders",
    REMINDERS_QUEUE_SERVICE_URI: "https://stbloomdev1234.queue.core.windows.net/",
    AUTH_ISSUER: "https://babybloom.ciamlogin.com/7d3c0f4e-5b1a-4c8e-9f2d-1a2b3c4d5e6f/v2.0",
    AUTH_CLIENT_ID: "0b6f2d9a-8c4e-4f1b-a3d5-6e7f8a9b0c1d",
}
LOCAL_QUEUE = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"


def test_azure_settings_mean_managed_identity_everywhere() -> None:
    config = load_config(AZURE)
    assert config.cosmos.emulator_key is None
    assert not config.cosmos.local
    assert config.reminders.service_uri == AZURE[REMINDERS_QUEUE_SERVICE_URI]
    assert config.reminders.local_connection_string is None
    assert config.authentication.audiences == (AZURE[AUTH_CLIENT_ID], f"api://{AZURE[AUTH_CLIENT_ID]}")
    assert config.authentication.platform_authentication is False


@pytest.mark.parametrize(("value", "enabled"), [("True", True), ("true", True), ("False", False), ("", False)])
def test_platform_authentication_is_read_from_what_app_service_sets(value: str, enabled: bool) -> None:
    assert load_config({**AZURE, PLATFORM_AUTHENTICATION: value}).authentication.platform_authentication is enabled


def test_local_settings_are_accepted_for_loopback_endpoints() -> None:
    config = load_config({**AZURE, COSMOS_ENDPOINT: "https://localhost:8081/", COSMOS_EMULATOR_KEY: "a2V5",
                          REMINDERS_QUEUE_SERVICE_URI: "", REMINDERS_CONNECTION: LOCAL_QUEUE})
    assert config.cosmos.local
    assert config.reminders.local_connection_string == LOCAL_QUEUE


@pytest.mark.parametrize(("changes", "named"), [
    ({COSMOS_EMULATOR_KEY: "a2V5"}, COSMOS_EMULATOR_KEY),  # a key for a real account is refused
    ({REMINDERS_CONNECTION: LOCAL_QUEUE.replace("127.0.0.1:10001", "stbloom.queue.core.windows.net"),
      REMINDERS_QUEUE_SERVICE_URI: ""}, REMINDERS_CONNECTION),
    ({REMINDERS_CONNECTION: LOCAL_QUEUE}, REMINDERS_QUEUE_SERVICE_URI),  # both forms at once
    ({REMINDERS_QUEUE_SERVICE_URI: ""}, REMINDERS_QUEUE_SERVICE_URI),
    ({COSMOS_ENDPOINT: ""}, COSMOS_ENDPOINT),
    ({COSMOS_ENDPOINT: "http://cosmos.documents.azure.com/"}, COSMOS_ENDPOINT),
    ({COSMOS_DATABASE: " "}, COSMOS_DATABASE),
    ({REMINDER_QUEUE: ""}, REMINDER_QUEUE),
    ({AUTH_ISSUER: ""}, AUTH_ISSUER),  # without a tenant no token can verify: refuse to start rather than let in
    ({AUTH_ISSUER: "http://babybloom.ciamlogin.com/tenant/v2.0"}, AUTH_ISSUER),  # keys over plain HTTP
    ({AUTH_CLIENT_ID: ""}, AUTH_CLIENT_ID),
    ({AUTH_CLIENT_ID: "babybloom-api"}, AUTH_CLIENT_ID),
])
def test_a_wrong_setting_is_one_line_naming_it(changes: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({**AZURE, **changes})
    message = str(raised.value)
    assert message.startswith(f"{named}:")
    assert "\n" not in message
