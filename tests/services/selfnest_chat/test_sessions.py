"""The chat learns sessions from the session-events topic: bookings open them, cancellations close them for good."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

from tests.services.cognito import Identity
from tests.services.lambda_runtime import SqsEventSource

from .conftest import Bookings, Tables, unique


def test_a_booking_records_both_participants_and_its_times(identity: Identity, bookings: Bookings,
                                                           tables: Tables, sessions_consumer: SqsEventSource) -> None:
    booking = bookings.book(identity.therapist(unique("therapist")), identity.client(unique("client")))
    [session] = tables.sessions.items(**{tables.sessions.keys[0]: booking.session_id})
    assert {key: session[key] for key in ("therapist_id", "client_id", "starts_at", "ends_at", "status")} == {
        "therapist_id": booking.therapist.sub, "client_id": booking.client.sub,
        "starts_at": booking.starts_at.isoformat(), "ends_at": booking.ends_at.isoformat(), "status": "booked"}
    # Kept exactly as long as the session's messages may be.
    retention = timedelta(days=int(sessions_consumer.function.environment["MESSAGE_RETENTION_DAYS"]))
    expires = int(str(session[tables.sessions.expiry_attribute]))
    assert expires == int((datetime.fromisoformat(booking.ends_at.isoformat()) + retention).timestamp())


def test_a_cancellation_wins_even_when_it_arrives_before_the_booking(identity: Identity, bookings: Bookings,
                                                                     tables: Tables) -> None:
    therapist, client = identity.therapist(unique("therapist")), identity.client(unique("client"))
    booking = bookings.book(therapist, client)
    bookings.cancel(booking)
    bookings.publish("session.booked", booking)         # a redelivered or late booking event
    [session] = tables.sessions.items(**{tables.sessions.keys[0]: booking.session_id})
    assert session["status"] == "cancelled"


def test_a_malformed_event_fails_until_it_is_dead_lettered_and_changes_nothing(
        bookings: Bookings, tables: Tables, sessions_consumer: SqsEventSource) -> None:
    dynamodb = bookings.stack.client("dynamodb")

    def sessions_recorded() -> int:
        return int(dynamodb.scan(TableName=tables.sessions.name, Select="COUNT")["Count"])

    sessions_consumer.drain()       # whatever other tests left on the shared topic's chat queue
    before = sessions_recorded()
    # Straight onto the chat's queue (what raw SNS delivery would put there), so the messaging consumers'
    # dead-letter queues, which their own tests inspect, never see it.
    bookings.stack.client("sqs").send_message(QueueUrl=sessions_consumer.queue_url, MessageBody="{not json")
    polls = sessions_consumer.drain()
    queue = sessions_consumer.stack.template["Resources"][sessions_consumer.queue_logical_id]["Properties"]
    assert len(polls) == queue["RedrivePolicy"]["maxReceiveCount"]
    assert all(len(poll.failed) == len(poll.delivered) == 1 for poll in polls)
    assert sessions_recorded() == before


def test_a_forged_booked_event_cannot_re_point_an_existing_sessions_participants(
        identity: Identity, bookings: Bookings, tables: Tables, sessions_consumer: SqsEventSource) -> None:
    booking = bookings.book(identity.therapist(unique("therapist")), identity.client(unique("client")))
    intruder = identity.client(unique("intruder"))
    sessions_consumer.drain()
    forged = dataclasses.replace(booking, client=intruder)      # same session id, someone else as the client
    bookings.stack.client("sqs").send_message(QueueUrl=sessions_consumer.queue_url, MessageBody=json.dumps(
        bookings.document("session.booked", forged)))
    polls = sessions_consumer.drain()
    assert all(len(poll.failed) == len(poll.delivered) == 1 for poll in polls)   # refused until dead-lettered
    [session] = tables.sessions.items(**{tables.sessions.keys[0]: booking.session_id})
    assert (session["client_id"], session["therapist_id"]) == (booking.client.sub, booking.therapist.sub)


def test_a_replayed_genuine_booking_still_applies(identity: Identity, bookings: Bookings, tables: Tables) -> None:
    booking = bookings.book(identity.therapist(unique("therapist")), identity.client(unique("client")))
    bookings.publish("session.booked", booking)          # a new event id, the same facts: accepted, unchanged
    [session] = tables.sessions.items(**{tables.sessions.keys[0]: booking.session_id})
    assert (session["client_id"], session["status"]) == (booking.client.sub, "booked")
