"""Cosmos DB access for BabyBloom. Every user-owned item is partitioned by userId, and every read names it.

The same code runs against Cosmos DB in Azure and against @vercel/cosmosdb-server locally. Where the local server
behaves differently, the difference is absorbed here (each has a test in tests/services/babybloom named after it):

- Queries: the local server ignores the partition key the SDK sends and runs a query over every partition (and
  refuses one whose text has no partition-key filter). Every per-user query therefore also filters on c.userId in
  its text; on Cosmos DB that is redundant with the partition key, and free.
- Point reads of a missing item: the local server fails with a 500 ("Cannot read properties of undefined") where
  Cosmos DB answers 404. `_read_or_none` treats exactly that failure as "not found", on the local server only.
- DISTINCT and SELECT VALUE are not understood by the local server's query parser: queries select plain fields and
  duplicates are removed here.
- TLS: the local server has a self-signed certificate, so certificate checks are off for it (and only for it).
- Continuation tokens differ in format: they are opaque to callers anyway, wrapped in an envelope of our own
  (`JournalCursor`) that is checked before it reaches the server, so a bad token is a 400 on both.
- System properties differ (Cosmos DB adds _attachments, the local server does not): responses drop every
  underscore-prefixed property.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

from azure.core.paging import PageIterator
from azure.cosmos import ContainerProxy, CosmosClient, DatabaseProxy
from azure.cosmos.exceptions import CosmosHttpResponseError, CosmosResourceNotFoundError
from azure.identity import ManagedIdentityCredential

from .content import WeeklySeed
from .pregnancy import LONGEST_PREGNANCY_DAYS, PREGNANCY_DAYS
from .settings import CosmosTarget

PROFILES, JOURNAL, WEEKLY_CONTENT = "profiles", "journal", "weekly_content"
LOCAL_SERVER_MISSING_ITEM = "Cannot read properties of undefined"
CURSOR_VERSION = 1


class InvalidCursorError(ValueError):
    """A continuation token that this listing did not hand out (or that the database refused)."""


def open_database(target: CosmosTarget) -> DatabaseProxy:
    if target.emulator_key is not None:
        # retry_status=0: the local server's 500 for a missing item (see above) is final; retrying it only waits.
        client = CosmosClient(target.endpoint, credential=target.emulator_key, connection_verify=False,
                              retry_status=0)
    else:
        client = CosmosClient(target.endpoint, credential=ManagedIdentityCredential())
    return client.get_database_client(target.database)


@dataclass(frozen=True, kw_only=True)
class JournalCursor:
    """Where a journal listing continues: the database's token, bound to the range it was issued for."""

    start: date
    end: date
    token: str

    def encode(self) -> str:
        payload = {"v": CURSOR_VERSION, "from": self.start.isoformat(), "to": self.end.isoformat(), "t": self.token}
        return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, *, start: date, end: date) -> JournalCursor:
        try:
            payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (binascii.Error, ValueError):
            raise InvalidCursorError("not a continuation token handed out by this API") from None
        if not isinstance(payload, dict) or payload.get("v") != CURSOR_VERSION or not isinstance(payload.get("t"), str):
            raise InvalidCursorError("not a continuation token handed out by this API")
        if (payload.get("from"), payload.get("to")) != (start.isoformat(), end.isoformat()):
            raise InvalidCursorError("belongs to a different from/to range; repeat the query with its own range")
        return cls(start=start, end=end, token=payload["t"])


@dataclass(frozen=True, kw_only=True)
class JournalPage:
    items: list[dict[str, Any]]
    continuation: str | None


class BabyBloomRepository:
    def __init__(self, *, database: DatabaseProxy, local_server: bool) -> None:
        self._profiles = database.get_container_client(PROFILES)
        self._journal = database.get_container_client(JOURNAL)
        self._content = database.get_container_client(WEEKLY_CONTENT)
        self._local_server = local_server

    @classmethod
    def connect(cls, target: CosmosTarget) -> BabyBloomRepository:
        return cls(database=open_database(target), local_server=target.local)

    # Profiles: one item per user, id = userId.

    def get_profile(self, user_id: str) -> dict[str, Any] | None:
        found = self._read_or_none(self._profiles, item_id=user_id, partition_key=user_id)
        return None if found is None else _public(found)

    def save_profile(self, user_id: str, profile: dict[str, Any]) -> dict[str, Any]:
        return _public(self._profiles.upsert_item({**profile, "id": user_id, "userId": user_id}))

    # Journal: many items per user, newest day first.

    def add_entry(self, user_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        return _public(self._journal.create_item({**entry, "id": uuid.uuid4().hex, "userId": user_id}))

    def list_entries(self, user_id: str, *, start: date, end: date, limit: int,
                     cursor: JournalCursor | None) -> JournalPage:
        query = self._journal.query_items(
            "SELECT * FROM c WHERE c.userId = @userId AND c.date >= @start AND c.date <= @end ORDER BY c.date DESC",
            parameters=[
                {"name": "@userId", "value": user_id},
                {"name": "@start", "value": start.isoformat()},
                {"name": "@end", "value": end.isoformat()},
            ],
            partition_key=user_id,
            max_item_count=limit,
        )
        # by_page is typed as a plain iterator, but it is azure-core's PageIterator, which exposes the token.
        pages = cast(PageIterator[dict[str, Any]], query.by_page(cursor.token if cursor is not None else None))
        try:
            items = [_public(item) for item in next(pages, [])]
        except CosmosHttpResponseError as error:
            if cursor is not None and error.status_code == 400:
                raise InvalidCursorError("refused by the database; start the listing again without it") from None
            raise
        token = pages.continuation_token
        return JournalPage(
            items=items,
            continuation=JournalCursor(start=start, end=end, token=token).encode() if token else None,
        )

    def delete_entry(self, user_id: str, entry_id: str) -> bool:
        try:
            self._journal.delete_item(entry_id, partition_key=user_id)
        except CosmosResourceNotFoundError:
            return False
        return True

    # Reminders: who has an ongoing pregnancy and has not written today.

    def users_without_entry_on(self, day: date) -> list[str]:
        # Due dates up to 14 days past are still ongoing (42 weeks); older profiles get no reminders.
        earliest_due = day - timedelta(days=LONGEST_PREGNANCY_DAYS - PREGNANCY_DAYS)
        expecting = self._user_ids(self._profiles, "c.dueDate >= @day", earliest_due)
        wrote = set(self._user_ids(self._journal, "c.date = @day", day))
        return [user for user in expecting if user not in wrote]

    def _user_ids(self, container: ContainerProxy, condition: str, day: date) -> list[str]:
        rows = container.query_items(
            f"SELECT c.userId FROM c WHERE {condition}",  # noqa: S608 - fixed condition text, values are parameters
            parameters=[{"name": "@day", "value": day.isoformat()}],
            enable_cross_partition_query=True,
        )
        return list(dict.fromkeys(row["userId"] for row in rows))

    # Weekly content: read through from the seed the app ships with. The first read that finds a week missing or
    # older than the shipped seed loads the whole seed (42 small upserts, once per seed version), so later reads of
    # any week are single point reads.

    def weekly_content(self, week: int, *, seed: WeeklySeed) -> dict[str, Any]:
        stored = self._read_or_none(self._content, item_id=str(week), partition_key=week)
        if stored is None or stored.get("seedVersion", 0) < seed.version:
            loaded = self.load_weekly_content(seed)
            return _public(loaded[week])
        return _public(stored)

    def load_weekly_content(self, seed: WeeklySeed) -> dict[int, dict[str, Any]]:
        return {
            week: self._content.upsert_item({**seed.week(week), "id": str(week), "seedVersion": seed.version})
            for week in sorted(seed.weeks)
        }

    def _read_or_none(self, container: ContainerProxy, *, item_id: str,
                      partition_key: str | int) -> dict[str, Any] | None:
        try:
            return container.read_item(item_id, partition_key=partition_key)
        except CosmosResourceNotFoundError:
            return None
        except CosmosHttpResponseError as error:
            if self._local_server and error.status_code == 500 and LOCAL_SERVER_MISSING_ITEM in str(error.message):
                return None
            raise


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if not key.startswith("_")}
