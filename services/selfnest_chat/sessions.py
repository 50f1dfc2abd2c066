"""Chat sessions consumer: learns booked and cancelled sessions from `session-events` (the booking API's events).

The chat never asks the booking database: this table is its own view of which sessions exist, who their two
participants are and when they run. Events may arrive out of order (SNS and SQS do not keep it): a cancellation
always wins, and a late `session.booked` never reopens a cancelled session. Items expire (TTL) when the session's
messages would, MESSAGE_RETENTION_DAYS after its end.

A session's participants and times are written once (conditional write): an event that names other people or
other times for a session already recorded — a forged or corrupted message — changes nothing and fails, so it ends
in the dead-letter queue (alarmed) instead of re-pointing who may read the chat.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from consumer import session_event_consumer, table
from session_events import SessionEvent
from store import BOOKED, CANCELLED, Sessions, epoch_seconds

logger = Logger()
sessions = table("SESSIONS_TABLE")
STATUS_BY_EVENT = {"session.booked": BOOKED, "session.cancelled": CANCELLED}


class ConflictingSessionEventError(RuntimeError):
    """An event that would re-point an existing session: reported as failed, so it ends in the dead-letter queue."""


def remember(event: SessionEvent) -> None:
    status = STATUS_BY_EVENT[event.type]
    expires_at = datetime.fromisoformat(event.ends_at) + timedelta(days=int(os.environ["MESSAGE_RETENTION_DAYS"]))
    # if_not_exists: a booking only sets the status of a session not seen before, so it never undoes a cancellation.
    new_status = "#status = if_not_exists(#status, :status)" if status == BOOKED else "#status = :status"
    try:
        sessions.update_item(
            Key={Sessions.KEY: event.session_id},
            UpdateExpression=f"SET therapist_id = :therapist, client_id = :client, starts_at = :starts, "
                             f"ends_at = :ends, expires_at = :expires, {new_status}",
            ConditionExpression="attribute_not_exists(#key) OR (therapist_id = :therapist AND client_id = :client"
                                " AND starts_at = :starts AND ends_at = :ends)",
            ExpressionAttributeNames={"#status": "status", "#key": Sessions.KEY},
            ExpressionAttributeValues={":therapist": event.therapist_id, ":client": event.client_id,
                                       ":starts": event.starts_at, ":ends": event.ends_at,
                                       ":expires": epoch_seconds(expires_at), ":status": status})
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        logger.warning("session event contradicts the recorded session; ignored",
                       extra={"session_id": event.session_id, "event_id": event.event_id})
        raise ConflictingSessionEventError(f"session {event.session_id}: participants and times are recorded "
                                           "already; an event naming others is refused") from None
    logger.info("chat session recorded", extra={"session_id": event.session_id, "status": status})



handler = session_event_consumer(remember, logger=logger)
