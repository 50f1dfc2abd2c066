"""Audit consumer: an append-only trail of every session event, keyed by session, kept with the data (PITR)."""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools import Logger
from consumer import put_once, session_event_consumer, table
from session_events import SessionEvent

logger = Logger()
trail = table("AUDIT_TABLE")
AUDIT_KEY = ("session_id", "event_key")


def record(event: SessionEvent) -> None:
    put_once(trail, {
        "session_id": event.session_id, "event_key": event.sort_key, "event_id": event.event_id,
        "type": event.type, "occurred_at": event.occurred_at, "therapist_id": event.therapist_id,
        "client_id": event.client_id, "starts_at": event.starts_at, "ends_at": event.ends_at,
        "cancelled_by": event.cancelled_by, "recorded_at": datetime.now(UTC).isoformat(),
    }, key=AUDIT_KEY)
    logger.info("audit record written")


handler = session_event_consumer(record, logger=logger)
