"""Nothing is lost: when SNS is unavailable bookings still succeed, and their events are published once it is back.
Subscribers can filter on the `event_type` message attribute."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3

from .conftest import ApiLauncher, RunningApi
from .people import Identity, book, listed_therapist, slot, unique


def eventually(condition: Callable[[], bool], *, what: str, patience_seconds: float = 30.0) -> None:
    """Wait for something a background thread does; the patience is a ceiling, never the thing under test."""
    deadline = time.monotonic() + patience_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


class FilteredQueue:
    """An SQS queue subscribed to `topic_arn` with raw delivery, and optionally a filter on event_type."""

    def __init__(self, *, topic_arn: str, event_types: list[str] | None = None) -> None:
        self._sqs = boto3.client("sqs")
        self._url = self._sqs.create_queue(QueueName=unique("probe"))["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {"RawMessageDelivery": "true"}
        if event_types is not None:
            attributes["FilterPolicy"] = json.dumps({"event_type": event_types})
        boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)

    def received(self) -> list[dict[str, Any]]:
        messages = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(message["Body"]) for message in messages]


def pending_events(api: RunningApi) -> list[dict[str, Any]]:
    with api.service.database.connection() as connection:
        return connection.execute("SELECT event_id, publish_attempts, last_error FROM outbox_events"
                                  " WHERE published_at IS NULL ORDER BY position").fetchall()


def test_bookings_survive_an_sns_outage_and_their_events_follow(launcher: ApiLauncher, identity: Any) -> None:
    # The topic does not exist yet: every publish fails, as during an outage or with a broken topic policy.
    topic_name = unique("session-events-outage")
    topic_arn = f"arn:aws:sns:{identity.region}:123456789012:{topic_name}"
    api = launcher.start(database="selfnest_outage", topic_arn=topic_arn, retry_seconds=0.2)
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))

    session = book(api.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=70))
    assert session.status == 201
    # The publish right after the commit runs beside the response: on a loaded machine the 201 can come first.
    eventually(lambda: any(row["publish_attempts"] >= 1 for row in pending_events(api)),
               what="the first publish attempt to be recorded")
    [pending] = pending_events(api)
    assert (pending["publish_attempts"] >= 1, pending["last_error"]) == (True, "NotFoundException")

    # Hold the pending row while SNS recovers and the probe subscribes: the relay claims rows FOR UPDATE SKIP LOCKED,
    # so it cannot publish into the gap between the topic existing and anyone listening to it.
    with api.service.database.connection() as connection, connection.transaction():
        connection.execute("SELECT event_id FROM outbox_events WHERE published_at IS NULL FOR UPDATE")
        boto3.client("sns").create_topic(Name=topic_name)
        everything = FilteredQueue(topic_arn=topic_arn)
    eventually(lambda: not pending_events(api), what="the relay to publish the pending event")
    [event] = everything.received()
    assert (event["event_id"], event["type"], event["session"]["id"]) == (
        str(pending["event_id"]), "session.booked", session.body["id"])


def test_subscribers_can_filter_on_the_event_type_attribute(api: RunningApi, identity: Identity,
                                                            session_events: Any) -> None:
    booked_only = FilteredQueue(topic_arn=session_events.topic_arn, event_types=["session.booked"])
    cancelled_only = FilteredQueue(topic_arn=session_events.topic_arn, event_types=["session.cancelled"])
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    session = book(api.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=71)).body
    api.client.delete(f"/sessions/{session['id']}", token=client.access_token)

    assert [(event["type"], event["session"]["id"]) for event in booked_only.received()] == [
        ("session.booked", session["id"])]
    assert [(event["type"], event["session"]["id"]) for event in cancelled_only.received()] == [
        ("session.cancelled", session["id"])]


def test_events_are_published_once_right_after_the_commit(api: RunningApi, identity: Identity) -> None:
    """The request thread and the relay race for fresh rows; SKIP LOCKED and published_at keep them from doubling."""
    therapist = listed_therapist(identity, api.client)
    sessions = [book(api.client, who=identity.client(unique("client")), therapist=therapist,
                     starts_at=slot(hours_ahead=72 + offset)).body["id"] for offset in range(3)]
    with api.service.database.connection() as connection:
        rows = connection.execute(
            "SELECT message, published_at, publish_attempts FROM outbox_events"
            " WHERE message::jsonb -> 'session' ->> 'id' = ANY(%s)", (sessions,)
        ).fetchall()
    assert len(rows) == 3
    assert all(row["published_at"] is not None and row["publish_attempts"] == 1 for row in rows)
