"""The app's settings: identity-based in Azure, emulator credentials only for endpoints on this machine."""

from __future__ import annotations

import pytest
from babybloom_app.settings import (
    COSMOS_DATABASE,
    COSMOS_EMULATOR_KEY,
    COSMOS_ENDPOINT,
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
}
LOCAL_QUEUE = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"


def test_azure_settings_mean_managed_identity_everywhere() -> None:
    config = load_config(AZURE)
    assert config.cosmos.emulator_key is None
    assert not config.cosmos.local
    assert config.reminders.service_uri == AZURE[REMINDERS_QUEUE_SERVICE_URI]
    assert config.reminders.local_connection_string is None


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
])
def test_a_wrong_setting_is_one_line_naming_it(changes: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({**AZURE, **changes})
    message = str(raised.value)
    assert message.startswith(f"{named}:")
    assert "\n" not in message
