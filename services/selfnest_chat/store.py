"""The chat's tables: booked sessions (fed by session events), live connections and the message history.

Every table's name, and the connections-by-session index name, come from the function's environment (the stack
sets them); each function's role allows only the calls its route makes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import boto3
from boto3.dynamodb.conditions import ConditionBase, Key
from botocore.exceptions import ClientError
from frames import ChatError

BOOKED = "booked"
CANCELLED = "cancelled"
# API Gateway closes a WebSocket after 2 hours at most; a connection item whose $disconnect never arrived is
# swept by TTL soon after, so no stale connection lingers.
CONNECTION_LIFETIME = timedelta(hours=3)


def _table(variable: str) -> Any:
    return boto3.resource("dynamodb").Table(os.environ[variable])


def epoch_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass(frozen=True, kw_only=True)
class BookedSession:
    session_id: str
    therapist_id: str
    client_id: str
    starts_at: datetime
    ends_at: datetime
    status: str

    def role_of(self, user_id: str) -> str | None:
        return {self.therapist_id: "therapist", self.client_id: "client"}.get(user_id)

    def check_open_to(self, user_id: str, *, now: datetime, opens_before: timedelta, closes_after: timedelta) -> str:
        """The caller's role in this session, if it is theirs, still booked and within its chat window."""
        role = self.role_of(user_id)
        if role is None:
            raise ChatError("not_a_participant", "only the client and the therapist of this session may join it")
        if self.status != BOOKED:
            raise ChatError("session_cancelled", "this session was cancelled; its chat is closed")
        opens, closes = self.starts_at - opens_before, self.ends_at + closes_after
        if now < opens:
            raise ChatError("too_early", f"this session's chat opens at {opens.isoformat()}")
        if now > closes:
            raise ChatError("session_over", f"this session's chat closed at {closes.isoformat()}")
        return role


class Sessions:
    """session id → participants, booked times, status (written by the session-events consumer)."""

    KEY = "session_id"

    @staticmethod
    @cache
    def table() -> Any:
        return _table("SESSIONS_TABLE")

    @classmethod
    def count_message(cls, session_id: str, *, cap: int) -> None:
        """One more message in the session, refused once it holds `cap` (counted atomically, across connections)."""
        try:
            cls.table().update_item(Key={cls.KEY: session_id}, UpdateExpression="ADD message_count :one",
                                    ConditionExpression="attribute_exists(#key) AND (attribute_not_exists("
                                                        "message_count) OR message_count < :cap)",
                                    ExpressionAttributeNames={"#key": cls.KEY},
                                    ExpressionAttributeValues={":one": 1, ":cap": cap})
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ChatError("session_full", f"this session holds {cap} messages, the most it may; nothing more "
                                "is stored") from None
            raise

    @classmethod
    def get(cls, session_id: str) -> BookedSession:
        item = cls.table().get_item(Key={cls.KEY: session_id}, ConsistentRead=True).get("Item")
        if item is None:
            raise ChatError("session_not_found", f"there is no booked session {session_id}")
        return BookedSession(session_id=session_id, therapist_id=item["therapist_id"], client_id=item["client_id"],
                             starts_at=datetime.fromisoformat(item["starts_at"]),
                             ends_at=datetime.fromisoformat(item["ends_at"]), status=item["status"])


# The group a participant must still hold (as recorded from their token on $connect) to act in that role.
GROUP_OF_ROLE = {"therapist": "therapists", "client": "clients"}


@dataclass(frozen=True, kw_only=True)
class Connection:
    """A live connection: whose it is, the groups and expiry of the token it was opened with, the joined session."""

    connection_id: str
    user_id: str
    session_id: str | None
    groups: frozenset[str]
    token_expires_at: int

    def token_expired(self, now: datetime) -> bool:
        return epoch_seconds(now) >= self.token_expires_at

    def holds(self, role: str) -> bool:
        return GROUP_OF_ROLE[role] in self.groups

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Connection:
        return cls(connection_id=item[Connections.KEY], user_id=item["user_id"], session_id=item.get("session_id"),
                   groups=frozenset(item.get("groups") or ()), token_expires_at=int(item.get("token_expires_at", 0)))


class Connections:
    """connection id → the signed-in user and, once joined, the session (indexed by session)."""

    KEY = "connection_id"

    @staticmethod
    @cache
    def table() -> Any:
        return _table("CONNECTIONS_TABLE")

    @classmethod
    def add(cls, connection_id: str, *, user_id: str, groups: frozenset[str], token_expires_at: int,
            now: datetime) -> None:
        cls.table().put_item(Item={cls.KEY: connection_id, "user_id": user_id, "connected_at": now.isoformat(),
                                   "groups": sorted(groups), "token_expires_at": token_expires_at,
                                   "expires_at": min(token_expires_at, epoch_seconds(now + CONNECTION_LIFETIME))})

    @classmethod
    def remove(cls, connection_id: str) -> None:
        cls.table().delete_item(Key={cls.KEY: connection_id})

    @classmethod
    def get(cls, connection_id: str) -> Connection:
        found = cls.find(connection_id)
        if found is None:
            raise ChatError("not_connected", "this connection is unknown or expired; reconnect")
        return found

    @classmethod
    def find(cls, connection_id: str) -> Connection | None:
        item = cls.table().get_item(Key={cls.KEY: connection_id}, ConsistentRead=True).get("Item")
        return None if item is None else Connection.from_item(item)

    @classmethod
    def attach(cls, connection_id: str, *, session_id: str) -> None:
        try:
            cls.table().update_item(Key={cls.KEY: connection_id}, UpdateExpression="SET session_id = :session",
                                    ConditionExpression="attribute_exists(#key)",
                                    ExpressionAttributeNames={"#key": cls.KEY},
                                    ExpressionAttributeValues={":session": session_id})
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ChatError("not_connected", "this connection closed while joining; reconnect") from None
            raise

    @classmethod
    def count_message(cls, connection_id: str, *, now: datetime, per_minute: int) -> None:
        """One more message from this connection in the current minute, refused beyond `per_minute`."""
        cls._count(connection_id, counter="rate", now=now, per_minute=per_minute, refusal=ChatError(
            "rate_limited", f"at most {per_minute} messages a minute on one connection; wait a moment and send "
            "again"))

    @classmethod
    def count_history_page(cls, connection_id: str, *, now: datetime, per_minute: int) -> None:
        """One more page of older history for this connection in the current minute, refused beyond `per_minute`
        (counted apart from messages: scrolling back does not eat into what one may say)."""
        cls._count(connection_id, counter="history", now=now, per_minute=per_minute, refusal=ChatError(
            "rate_limited", f"at most {per_minute} history pages a minute on one connection; wait a moment and ask "
            "again"))

    @classmethod
    def _count(cls, connection_id: str, *, counter: str, now: datetime, per_minute: int,
               refusal: ChatError) -> None:
        """Count against `<counter>_count` within the minute in `<counter>_minute`; raise `refusal` beyond
        `per_minute` (atomic conditional updates, so concurrent invocations cannot both slip through)."""
        minute = epoch_seconds(now) // 60
        table, key = cls.table(), {cls.KEY: connection_id}
        names = {"#minute": f"{counter}_minute", "#count": f"{counter}_count"}
        try:
            table.update_item(Key=key, UpdateExpression="ADD #count :one",
                              ConditionExpression="#minute = :minute AND #count < :limit",
                              ExpressionAttributeNames=names,
                              ExpressionAttributeValues={":one": 1, ":minute": minute, ":limit": per_minute})
            return
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        try:   # a new minute: start counting again
            table.update_item(Key=key, UpdateExpression="SET #minute = :minute, #count = :one",
                              ConditionExpression="attribute_exists(#key) AND (attribute_not_exists(#minute) "
                                                  "OR #minute <> :minute)",
                              ExpressionAttributeNames={**names, "#key": cls.KEY},
                              ExpressionAttributeValues={":one": 1, ":minute": minute})
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            raise refusal from None

    @classmethod
    def in_session(cls, session_id: str) -> Iterator[Connection]:
        """The session's connections, each read from the table itself: the index projects only user ids, and a
        recipient's groups and token expiry are checked before anything is delivered to it."""
        query = {"IndexName": os.environ["CONNECTIONS_SESSION_INDEX"],
                 "KeyConditionExpression": Key("session_id").eq(session_id)}
        for item in _pages(cls.table(), query):
            connection = cls.find(item[cls.KEY])
            if connection is not None:
                yield connection


class Messages:
    """(session id, sent-at#message id) → sender and text; expires after MESSAGE_RETENTION_DAYS."""

    KEY = ("session_id", "message_key")

    @staticmethod
    @cache
    def table() -> Any:
        return _table("MESSAGES_TABLE")

    @classmethod
    def add(cls, session_id: str, *, sender_id: str, sender_role: str, text: str, now: datetime) -> dict[str, Any]:
        message_id = str(uuid.uuid4())
        retention = timedelta(days=int(os.environ["MESSAGE_RETENTION_DAYS"]))
        item = {"session_id": session_id, "message_key": f"{now.isoformat()}#{message_id}",
                "message_id": message_id, "sender_id": sender_id, "sender_role": sender_role, "text": text,
                "sent_at": now.isoformat(), "expires_at": epoch_seconds(now + retention)}
        cls.table().put_item(Item=item)
        return item

    @classmethod
    def history(cls, session_id: str, *, now: datetime, newest: int,
                before: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """Up to `newest` of the session's messages sent before the message keyed `before` (else its newest), oldest
        first, and whether older ones exist. The query never leaves `session_id`'s partition, whatever `before`
        says. A query call returns at most 1 MB, so a page of large messages takes several calls; TTL deletes
        lazily, so expired messages are left out here."""
        condition: ConditionBase = Key(cls.KEY[0]).eq(session_id)
        if before is not None:
            condition = condition & Key(cls.KEY[1]).lt(before)
        query = {"KeyConditionExpression": condition, "ConsistentRead": True, "ScanIndexForward": False,
                 "Limit": newest + 1}
        items: list[dict[str, Any]] = []
        for item in _pages(cls.table(), query):
            if int(item["expires_at"]) > epoch_seconds(now):
                items.append(item)
                if len(items) > newest:
                    break
        return list(reversed(items[:newest])), len(items) > newest


def _pages(table: Any, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
    while True:
        page = table.query(**query)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        query = {**query, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def now_utc() -> datetime:
    return datetime.now(UTC)
