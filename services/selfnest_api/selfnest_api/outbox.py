"""Session events, never lost: a transactional outbox in PostgreSQL, relayed to the SNS topic.

A booking or a cancellation writes its event row in the same transaction as the session, so the event exists if and
only if the change does. After the commit the request thread tries to publish right away; whatever SNS did not
take (outage, throttling, a task that died between commit and publish) is retried by a background relay every few
seconds. Delivery is at least once: consumers deduplicate on `event_id`.

Each event carries the correlation id of the request that caused it as the `correlation_id` message attribute, next
to `event_type` (which the subscriptions' filter policies read). The subscriptions use raw message delivery, so both
arrive as SQS message attributes — at most 10 of them, or SNS discards the message for those queues. The request's
X-Ray trace id goes along as the publish call's trace header, so the consumers' traces continue it.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg.rows import DictRow

from . import correlation, logs

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

    from .database import Database

EventType = Literal["session.booked", "session.cancelled"]
Participant = Literal["client", "therapist"]
RELAY_BATCH_SIZE = 50
# SNS discards a message with more than 10 attributes for raw-delivery SQS subscriptions (docs/architecture.md).
MAX_MESSAGE_ATTRIBUTES = 10


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, the one timestamp format of the API's responses and events."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def record_session_event(connection: psycopg.Connection[DictRow], *, event_type: EventType,
                         session: dict[str, Any], cancelled_by: Participant | None) -> uuid.UUID:
    """Add the event to the outbox inside the caller's transaction; return its event_id. The event keeps the
    correlation and trace ids of the request being handled (logs.correlated)."""
    event_id = uuid.uuid4()
    message = {
        "event_id": str(event_id),
        "type": event_type,
        "occurred_at": iso_utc(datetime.now(UTC)),
        "session": {
            "id": str(session["id"]),
            "therapist_id": str(session["therapist_id"]),
            "client_id": str(session["client_id"]),
            "starts_at": iso_utc(session["starts_at"]),
            "ends_at": iso_utc(session["ends_at"]),
            "status": session["status"],
        },
        "cancelled_by": cancelled_by,
    }
    connection.execute("INSERT INTO outbox_events (event_id, event_type, message, correlation_id, trace_id)"
                       " VALUES (%s, %s, %s, %s, %s)",
                       (event_id, event_type, json.dumps(message), logs.current_correlation_id(),
                        logs.current_trace_id()))
    return event_id


class OutboxRelay:
    """Publishes pending outbox rows to SNS; safe to run in every task at once (rows are claimed SKIP LOCKED)."""

    def __init__(self, *, database: Database, sns: SNSClient, topic_arn: str, retry_seconds: float = 5.0) -> None:
        self._database = database
        self._sns = sns
        self._topic_arn = topic_arn
        self._retry_seconds = retry_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        sns.meta.events.register("before-sign.sns.Publish", _add_trace_header)

    def publish_pending(self, *, event_ids: Sequence[uuid.UUID] | None = None) -> int:
        """Publish pending events (only `event_ids` when given), oldest first; return how many SNS accepted.

        Stops at the first failure so events keep their order; the rest stay pending for the next attempt.
        """
        published = 0
        with self._database.connection() as connection, connection.transaction():
            rows = connection.execute(
                "SELECT position, event_id, event_type, message, correlation_id, trace_id FROM outbox_events"
                " WHERE published_at IS NULL AND (%(ids)s::uuid[] IS NULL OR event_id = ANY(%(ids)s::uuid[]))"
                " ORDER BY position LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
                {"ids": list(event_ids) if event_ids is not None else None, "limit": RELAY_BATCH_SIZE},
            ).fetchall()
            for row in rows:
                with logs.correlated(row["correlation_id"], trace_id=row["trace_id"]):
                    if not self._publish(connection, row):
                        break
                published += 1
        return published

    def _publish(self, connection: psycopg.Connection[DictRow], row: DictRow) -> bool:
        try:
            self._sns.publish(TopicArn=self._topic_arn, Message=row["message"],
                              MessageAttributes=message_attributes(row["event_type"], row["correlation_id"]))
        except (ClientError, BotoCoreError) as error:
            connection.execute("UPDATE outbox_events SET publish_attempts = publish_attempts + 1,"
                               " last_error = %s WHERE position = %s", (type(error).__name__, row["position"]))
            logs.warning("session_event_publish_failed", event_id=str(row["event_id"]), error=type(error).__name__)
            return False
        connection.execute("UPDATE outbox_events SET published_at = now(), publish_attempts ="
                           " publish_attempts + 1, last_error = NULL WHERE position = %s", (row["position"],))
        logs.info("session_event_published", event_id=str(row["event_id"]), event_type=row["event_type"])
        return True

    def publish_after_commit(self, event_id: uuid.UUID) -> None:
        """The request's own attempt: never fails the request (the relay retries what is left)."""
        try:
            self.publish_pending(event_ids=[event_id])
        except Exception as error:  # the booking is committed; the relay owns retries from here
            logs.warning("session_event_deferred", event_id=str(event_id), error=type(error).__name__)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._relay_until_stopped, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _relay_until_stopped(self) -> None:
        standby = False
        while not self._stopping.wait(self._retry_seconds):
            try:
                # A warm standby's replica holds the primary's outbox but may not mark it published: relaying from
                # it would publish every event twice. It relays once failover has promoted it.
                if self._database.is_read_only():
                    if not standby:
                        logs.info("outbox_relay_paused", reason="read-only database (standby)")
                    standby = True
                    continue
                standby = False
                while self.publish_pending() == RELAY_BATCH_SIZE and not self._stopping.is_set():
                    continue  # a full batch: there may be more behind it
            except Exception as error:  # keep relaying after a database or network hiccup
                logs.warning("outbox_relay_failed", error=type(error).__name__)


def message_attributes(event_type: str, correlation_id: str | None) -> dict[str, Any]:
    """The SNS message attributes of an event: its type (for the filter policies) and its correlation id."""
    attributes = {"event_type": {"DataType": "String", "StringValue": event_type}}
    if correlation.is_well_formed(correlation_id):
        assert correlation_id is not None
        attributes[correlation.MESSAGE_ATTRIBUTE] = {"DataType": "String", "StringValue": correlation_id}
    assert len(attributes) <= MAX_MESSAGE_ATTRIBUTES
    return attributes


def _add_trace_header(request: Any, **_: Any) -> None:
    """What the X-Ray SDK would do for an instrumented client: the trace id rides on the Publish call's
    X-Amzn-Trace-Id header; SNS (tracing PassThrough, its default) hands it on to SQS and so to the consumers."""
    trace_id = logs.current_trace_id()
    if trace_id is not None:
        request.headers["X-Amzn-Trace-Id"] = f"Root={trace_id}"
