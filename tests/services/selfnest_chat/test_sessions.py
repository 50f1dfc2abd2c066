"""The chat learns sessions from the session-events topic — through the deployed subscription, queue and the
sessions consumer's event source mapping, run by the emulator: bookings open them, cancellations close them for
good, and what cannot be applied is retried until it is dead-lettered."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.local_deployment import eventually
from tests.services.local_cognito import DeployedIdentity

from .conftest import Bookings, Chat, Tables, unique

# As in selfnest_events/test_consumers.py: the tests' own deployment redelivers after seconds, not minutes.
REDELIVERY_SECONDS = 2


@dataclasses.dataclass(frozen=True)
class ChatQueue:
    url: str
    dead_letter_url: str
    max_receive_count: int


@pytest.fixture(scope="module")
def chat_queue(chat: Chat) -> ChatQueue:
    sqs = chat.deployment.client("sqs")
    name = chat.function("sessions.handler")["FunctionName"]
    [mapping] = chat.functions.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    url = sqs.get_queue_url(QueueName=mapping["EventSourceArn"].rsplit(":", 1)[1])["QueueUrl"]
    redrive = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
                         ["RedrivePolicy"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(REDELIVERY_SECONDS)})
    return ChatQueue(url=url, max_receive_count=int(redrive["maxReceiveCount"]),
                     dead_letter_url=sqs.get_queue_url(QueueName=redrive["deadLetterTargetArn"].rsplit(":", 1)[1])
                     ["QueueUrl"])


def dead_lettered(chat: Chat, queue: ChatQueue, body: str) -> list[dict[str, Any]]:
    """Messages with exactly `body` in the chat's dead-letter queue (removed from it; others' are left)."""
    sqs = chat.deployment.client("sqs")
    found = []
    for message in sqs.receive_message(QueueUrl=queue.dead_letter_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                       AttributeNames=["ApproximateReceiveCount"]).get("Messages", []):
        if message["Body"] == body:
            found.append(message)
            sqs.delete_message(QueueUrl=queue.dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_a_booking_records_both_participants_and_its_times(identity: DeployedIdentity, bookings: Bookings,
                                                           tables: Tables, chat: Chat) -> None:
    booking = bookings.book(identity.therapist(unique("therapist")), identity.client(unique("client")))
    [session] = tables.sessions.items(**{tables.sessions.keys[0]: booking.session_id})
    assert {key: session[key] for key in ("therapist_id", "client_id", "starts_at", "ends_at", "status")} == {
        "therapist_id": booking.therapist.sub, "client_id": booking.client.sub,
        "starts_at": booking.starts_at.isoformat(), "ends_at": booking.ends_at.isoformat(), "status": "booked"}
    # Kept exactly as long as the session's messages may be.
    retention = timedelta(days=int(chat.environment("sessions.handler")["MESSAGE_RETENTION_DAYS"]))
    expires = int(str(session[tables.sessions.expiry_attribute]))
    assert expires == int((datetime.fromisoformat(booking.ends_at.isoformat()) + retention).timestamp())


def test_a_cancellation_wins_even_when_it_arrives_before_the_booking(identity: DeployedIdentity, bookings: Bookings,
                                                                     tables: Tables) -> None:
    therapist, client = identity.therapist(unique("therapist")), identity.client(unique("client"))
    booking = bookings.book(therapist, client)
    bookings.cancel(booking)
    late = bookings.document("session.booked", booking)          # a redelivered or late booking event
    bookings.send_raw(json.dumps(late), event_type="session.booked")
    # A later booking, published after the late one: once it is recorded, the late one was handled too.
    sentinel = bookings.book(therapist, client)
    assert tables.sessions.items(**{tables.sessions.keys[0]: sentinel.session_id})
    [session] = tables.sessions.items(**{tables.sessions.keys[0]: booking.session_id})
    assert session["status"] == "cancelled"


def test_a_malformed_event_fails_until_it_is_dead_lettered_and_changes_nothing(
        chat: Chat, chat_queue: ChatQueue) -> None:
    # Straight onto the chat's queue (what raw SNS delivery would put there), so the messaging consumers'
    # dead-letter queues, which their own tests inspect, never see it.
    body = f"{{not json {unique('malformed')}"
    chat.deployment.client("sqs").send_message(QueueUrl=chat_queue.url, MessageBody=body)
    [dead] = eventually(lambda: dead_lettered(chat, chat_queue, body), "the malformed event in the dead-letter queue",
                        seconds=60 + REDELIVERY_SECONDS * chat_queue.max_receive_count * 3)
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= chat_queue.max_receive_count


def test_a_forged_booked_event_cannot_re_point_an_existing_sessions_participants(
        identity: DeployedIdentity, bookings: Bookings, tables: Tables, chat: Chat, chat_queue: ChatQueue) -> None:
    booking = bookings.book(identity.therapist(unique("therapist")), identity.client(unique("client")))
    intruder = identity.client(unique("intruder"))
    forged = dataclasses.replace(booking, client=intruder)      # same session id, someone else as the client
    body = json.dumps(bookings.document("session.booked", forged))
    chat.deployment.client("sqs").send_message(QueueUrl=chat_queue.url, MessageBody=body)
    [dead] = eventually(lambda: dead_lettered(chat, chat_queue, body), "the forged event in the dead-letter queue",
                        seconds=60 + REDELIVERY_SECONDS * chat_queue.max_receive_count * 3)   # refused each time
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= chat_queue.max_receive_count
    [session] = tables.sessions.items(**{tables.sessions.keys[0]: booking.session_id})
    assert (session["client_id"], session["therapist_id"]) == (booking.client.sub, booking.therapist.sub)


def test_a_replayed_genuine_booking_still_applies(identity: DeployedIdentity, bookings: Bookings,
                                                  tables: Tables) -> None:
    booking = bookings.book(identity.therapist(unique("therapist")), identity.client(unique("client")))
    replay = bookings.document("session.booked", booking)     # a new event id, the same facts: accepted, unchanged
    bookings.send_raw(json.dumps(replay), event_type="session.booked")
    sentinel = bookings.book(booking.therapist, booking.client)
    assert tables.sessions.items(**{tables.sessions.keys[0]: sentinel.session_id})
    [session] = tables.sessions.items(**{tables.sessions.keys[0]: booking.session_id})
    assert (session["client_id"], session["status"]) == (booking.client.sub, "booked")
