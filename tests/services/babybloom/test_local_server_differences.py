"""Each known difference of the local Cosmos server, shown on the raw SDK, and that the repository absorbs it.

The raw-SDK half of each test pins the difference itself: if a newer cosmosdb-server fixes one, that test fails
and the workaround in babybloom_app/repository.py can go.
"""

from __future__ import annotations

import socket
import ssl
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.cosmos.exceptions import CosmosHttpResponseError
from babybloom_app.repository import JOURNAL, PROFILES, BabyBloomRepository, InvalidCursorError, JournalCursor
from babybloom_app.settings import CosmosTarget

from .conftest import EMULATOR_KEY, LocalServers

DAY = date(2026, 3, 2)


@pytest.fixture
def repository(local_servers: LocalServers, database: Any) -> BabyBloomRepository:
    return BabyBloomRepository.connect(CosmosTarget(endpoint=local_servers.cosmos_endpoint, database=database.id,
                                                    emulator_key=EMULATOR_KEY))


def _entry(day: date) -> dict[str, Any]:
    return {"date": day.isoformat(), "mood": 3, "symptoms": [], "notes": "", "createdAt": "x"}


def test_queries_ignore_the_partition_key_so_every_query_filters_on_user_id(
    repository: BabyBloomRepository, database: Any
) -> None:
    mine, theirs = repository.add_entry("diff-user-a", _entry(DAY)), repository.add_entry("diff-user-b", _entry(DAY))
    # The difference: scoped to partition "diff-user-a", a query whose text admits any user gets other partitions too.
    leaked = database.get_container_client(JOURNAL).query_items(
        "SELECT * FROM c WHERE c.userId = @user OR true",
        parameters=[{"name": "@user", "value": "diff-user-a"}],
        partition_key="diff-user-a",
    )
    assert theirs["id"] in {item["id"] for item in leaked}
    # The repository: its listing for one user holds that user's items only.
    page = repository.list_entries("diff-user-a", start=DAY, end=DAY, limit=100, cursor=None)
    assert [item["id"] for item in page.items] == [mine["id"]]


def test_point_read_of_a_missing_item_is_a_500_locally_and_none_from_the_repository(
    repository: BabyBloomRepository, database: Any
) -> None:
    with pytest.raises(CosmosHttpResponseError) as raised:
        database.get_container_client(PROFILES).read_item("nobody", partition_key="nobody")
    assert raised.value.status_code == 500  # Cosmos DB answers 404 here
    assert repository.get_profile("nobody") is None


def test_distinct_is_not_understood_so_user_ids_are_deduplicated_in_the_repository(
    repository: BabyBloomRepository, database: Any, empty_store: Any
) -> None:
    with pytest.raises(CosmosHttpResponseError) as raised:
        list(database.get_container_client(JOURNAL).query_items("SELECT DISTINCT VALUE c.userId FROM c",
                                                                enable_cross_partition_query=True))
    assert raised.value.status_code == 400
    repository.save_profile("diff-twice", {"dueDate": "2026-06-01"})
    repository.save_profile("diff-silent", {"dueDate": "2026-06-01"})
    for _ in range(2):
        repository.add_entry("diff-twice", _entry(DAY))
    assert repository.users_without_entry_on(DAY) == ["diff-silent"]


def test_the_local_certificate_is_self_signed_so_only_the_local_client_skips_verification(
    local_servers: LocalServers, repository: BabyBloomRepository
) -> None:
    endpoint = urlsplit(local_servers.cosmos_endpoint)
    with socket.create_connection((endpoint.hostname, endpoint.port), timeout=10) as connection, \
            pytest.raises(ssl.SSLCertVerificationError, match="self-signed"):
        ssl.create_default_context().wrap_socket(connection, server_hostname=endpoint.hostname)
    assert repository.get_profile("nobody") is None  # the repository's local client gets through


class RefusedPages:
    """Pages whose first fetch fails the way Cosmos DB answers a continuation token it did not issue."""

    continuation_token = None

    def __iter__(self) -> RefusedPages:
        return self

    def __next__(self) -> list[dict[str, Any]]:
        raise CosmosHttpResponseError(status_code=400, message="Invalid Continuation Token")  # type: ignore[no-untyped-call]


def test_continuation_tokens_are_wrapped_and_a_forged_inner_token_is_an_invalid_cursor(
    repository: BabyBloomRepository, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _ in range(3):
        repository.add_entry("diff-pages", _entry(DAY))
    repository.add_entry("diff-pages-other", _entry(DAY))
    first = repository.list_entries("diff-pages", start=DAY, end=DAY, limit=1, cursor=None)
    assert first.continuation is not None
    cursor = JournalCursor.decode(first.continuation, start=DAY, end=DAY)
    second = repository.list_entries("diff-pages", start=DAY, end=DAY, limit=1, cursor=cursor)
    assert len(second.items) == 1
    assert second.items[0]["id"] != first.items[0]["id"]

    # Forged: a well-formed wrapper for the right range around an inner token the database never handed out.
    forged = JournalCursor(start=DAY, end=DAY, token=cursor.token.replace("#RT:1#", "#RT:7#"))
    assert forged.token != cursor.token
    assert JournalCursor.decode(forged.encode(), start=DAY, end=DAY) == forged   # the wrapper alone cannot tell
    # The difference: the local server answers a forged token (from wherever it points) instead of refusing it;
    # still only with the caller's own items, because every query filters on userId.
    page = repository.list_entries("diff-pages", start=DAY, end=DAY, limit=1, cursor=forged)
    assert {item["userId"] for item in page.items} <= {"diff-pages"}
    # Cosmos DB refuses a token it did not issue with 400 Bad Request; the repository makes that an invalid cursor.
    real_query = repository._journal.query_items

    def as_cosmos_db_answers(*args: Any, **kwargs: Any) -> Any:
        pages = real_query(*args, **kwargs)
        original_by_page = pages.by_page

        def by_page(token: str | None = None) -> Any:
            return RefusedPages() if token == forged.token else original_by_page(token)

        pages.by_page = by_page  # type: ignore[method-assign,assignment]
        return pages

    monkeypatch.setattr(repository._journal, "query_items", as_cosmos_db_answers)
    with pytest.raises(InvalidCursorError, match="refused by the database"):
        repository.list_entries("diff-pages", start=DAY, end=DAY, limit=1, cursor=forged)
    assert repository.list_entries("diff-pages", start=DAY, end=DAY, limit=1, cursor=cursor).items == second.items


def test_system_properties_never_leave_the_repository(repository: BabyBloomRepository) -> None:
    saved = repository.save_profile("diff-props", {"dueDate": "2026-06-01"})
    read = repository.get_profile("diff-props")
    assert read == saved == {"dueDate": "2026-06-01", "id": "diff-props", "userId": "diff-props"}
