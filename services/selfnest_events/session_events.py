"""The session event the booking API publishes to `session-events`, as the consumers read it.

Raw message delivery puts the API's JSON document in the SQS body unchanged; its `event_id` is the idempotency key
(SNS and SQS both deliver at least once).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EVENT_TYPES = ("session.booked", "session.cancelled")
ACTORS = ("client", "therapist", None)


class MalformedEventError(ValueError):
    """The message is not a session event; it is reported as failed and ends in the dead-letter queue."""


@dataclass(frozen=True, kw_only=True)
class SessionEvent:
    event_id: str
    type: str
    occurred_at: str
    session_id: str
    therapist_id: str
    client_id: str
    starts_at: str
    ends_at: str
    cancelled_by: str | None

    @classmethod
    def from_body(cls, body: str) -> SessionEvent:
        try:
            document = json.loads(body)
        except ValueError as error:
            raise MalformedEventError(f"body is not JSON ({error})") from None
        if not isinstance(document, dict):
            raise MalformedEventError(f"body must be a JSON object, got {type(document).__name__}")
        return cls.from_document(document)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> SessionEvent:
        session = document.get("session")
        if not isinstance(session, dict):
            raise MalformedEventError("session: missing or not an object")
        fields = {"event_id": document.get("event_id"), "type": document.get("type"),
                  "occurred_at": document.get("occurred_at"), "session_id": session.get("id"),
                  "therapist_id": session.get("therapist_id"), "client_id": session.get("client_id"),
                  "starts_at": session.get("starts_at"), "ends_at": session.get("ends_at")}
        for name, value in fields.items():
            if not isinstance(value, str) or not value:
                raise MalformedEventError(f"{name}: missing or not a string")
        if fields["type"] not in EVENT_TYPES:
            raise MalformedEventError(f"type: {fields['type']!r} is not one of {', '.join(EVENT_TYPES)}")
        for name in ("occurred_at", "starts_at", "ends_at"):
            try:
                datetime.fromisoformat(str(fields[name]))
            except ValueError:
                raise MalformedEventError(f"{name}: {fields[name]!r} is not an ISO-8601 timestamp") from None
        cancelled_by = document.get("cancelled_by")
        if cancelled_by not in ACTORS:
            raise MalformedEventError(f"cancelled_by: {cancelled_by!r} is not client, therapist or null")
        return cls(cancelled_by=cancelled_by, **{name: str(value) for name, value in fields.items()})

    def document(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "type": self.type, "occurred_at": self.occurred_at,
                "cancelled_by": self.cancelled_by,
                "session": {"id": self.session_id, "therapist_id": self.therapist_id, "client_id": self.client_id,
                            "starts_at": self.starts_at, "ends_at": self.ends_at}}

    @property
    def sort_key(self) -> str:
        """Orders a recipient's or a session's items by time, unique per event."""
        return f"{self.occurred_at}#{self.event_id}"
