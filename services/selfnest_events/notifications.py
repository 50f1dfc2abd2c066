"""Notifications consumer: puts a booking or cancellation into both participants' in-app inboxes.

In-app only, by design: clients are anonymous and have no email or phone to reach, and notifications name no one —
just the session and its time. Items expire after NOTIFICATION_RETENTION_DAYS (DynamoDB TTL).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger
from consumer import put_once, session_event_consumer, table
from session_events import SessionEvent

logger = Logger()
inbox = table("INBOX_TABLE")
INBOX_KEY = ("recipient_id", "notification_id")


def deliver(event: SessionEvent) -> None:
    expires_at = datetime.now(UTC) + timedelta(days=int(os.environ["NOTIFICATION_RETENTION_DAYS"]))
    for recipient, role in ((event.therapist_id, "therapist"), (event.client_id, "client")):
        put_once(inbox, {
            "recipient_id": recipient, "notification_id": event.sort_key, "recipient_role": role,
            "kind": event.type, "session_id": event.session_id, "starts_at": event.starts_at,
            "ends_at": event.ends_at, "cancelled_by": event.cancelled_by, "created_at": event.occurred_at,
            "expires_at": int(expires_at.timestamp()),
        }, key=INBOX_KEY)
    logger.info("inbox notifications written", extra={"recipients": 2})


handler = session_event_consumer(deliver, logger=logger)
