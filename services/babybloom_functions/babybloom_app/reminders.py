"""Daily journal reminders: the timer puts one message per user on a Storage queue, the queue trigger sends it."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Protocol

from azure.identity import ManagedIdentityCredential
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy
from pydantic import BaseModel, ConfigDict, Field

from .settings import QueueTarget

# A reminder for a day that has passed is noise; let the queue drop it instead of sending it late.
REMINDER_TIME_TO_LIVE = timedelta(hours=12)
log = logging.getLogger("babybloom.reminders")


class Reminder(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    user_id: str = Field(alias="userId", min_length=1)
    day: date = Field(alias="date")


class Notifier(Protocol):
    """Delivers a reminder to the person (push notification, e-mail...)."""

    def send(self, reminder: Reminder) -> None: ...


class LoggingNotifier:
    """Development notifier: writes the reminder to the log instead of contacting anyone."""

    def send(self, reminder: Reminder) -> None:
        log.info("reminder for user %s: no journal entry yet on %s", reminder.user_id, reminder.day.isoformat())


def open_queue(target: QueueTarget) -> QueueClient:
    # The Functions queue trigger expects base64 message bodies (the host's default messageEncoding).
    encode, decode = TextBase64EncodePolicy(), TextBase64DecodePolicy()
    if target.local_connection_string is not None:
        return QueueClient.from_connection_string(
            target.local_connection_string, target.queue_name, message_encode_policy=encode,
            message_decode_policy=decode,
        )
    assert target.service_uri is not None  # load_config guarantees one of the two
    return QueueClient(
        target.service_uri, target.queue_name, credential=ManagedIdentityCredential(),
        message_encode_policy=encode, message_decode_policy=decode,
    )


def enqueue(queue: QueueClient, reminders: list[Reminder]) -> None:
    ttl = int(REMINDER_TIME_TO_LIVE.total_seconds())
    for reminder in reminders:
        queue.send_message(reminder.model_dump_json(by_alias=True), time_to_live=ttl)
