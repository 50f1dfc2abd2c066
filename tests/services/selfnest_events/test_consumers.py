"""Session events on the run's local deployment: published to the deployed topic, delivered by its subscriptions'
filter policies to the consumers' queues, and run by the emulator's event source mappings (batch size,
ReportBatchItemFailures, redrive to the dead-letter queue) from the functions' deployed assets, under their own
roles with IAM enforced. Nothing here polls a queue for a function."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from tests.local_deployment import WAIT_SECONDS, LocalDeployment, eventually

# Retries wait for the queue's visibility timeout (180 s as deployed). The run's deployment is the tests' own:
# its consumer queues redeliver after this many seconds, so a poison message reaches its dead-letter queue in
# maxReceiveCount short rounds instead of minutes.
REDELIVERY_SECONDS = 2


def session_event(event_type: str = "session.booked", *, event_id: str | None = None) -> dict[str, Any]:
    """The document the booking API publishes (services/selfnest_api outbox)."""
    starts = datetime(2027, 1, 4, 10, tzinfo=UTC) + timedelta(hours=uuid.uuid4().int % 1000)
    return {"event_id": event_id or str(uuid.uuid4()), "type": event_type,
            "occurred_at": datetime.now(UTC).isoformat(), "cancelled_by": None,
            "session": {"id": str(uuid.uuid4()), "therapist_id": str(uuid.uuid4()), "client_id": str(uuid.uuid4()),
                        "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(minutes=50)).isoformat(),
                        "status": "booked"}}


@dataclass(frozen=True)
class Consumer:
    """A deployed consumer function with its event source mapping, its queue and that queue's dead-letter queue."""

    function_name: str
    environment: dict[str, str]
    queue_url: str
    dead_letter_url: str
    max_receive_count: int
    batch_size: int
    reports_batch_item_failures: bool


def consumer(deployment: LocalDeployment, handler: str) -> Consumer:
    functions, sqs = deployment.client("lambda"), deployment.client("sqs")
    [function] = [function for page in functions.get_paginator("list_functions").paginate()
                  for function in page["Functions"] if function.get("Handler") == handler]
    [mapping] = functions.list_event_source_mappings(FunctionName=function["FunctionName"])["EventSourceMappings"]
    queue_url = sqs.get_queue_url(QueueName=mapping["EventSourceArn"].rsplit(":", 1)[1])["QueueUrl"]
    redrive = json.loads(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
                         ["Attributes"]["RedrivePolicy"])
    dead_letter_url = sqs.get_queue_url(QueueName=redrive["deadLetterTargetArn"].rsplit(":", 1)[1])["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(REDELIVERY_SECONDS)})
    return Consumer(function_name=function["FunctionName"], environment=function["Environment"]["Variables"],
                    queue_url=queue_url, dead_letter_url=dead_letter_url,
                    max_receive_count=int(redrive["maxReceiveCount"]), batch_size=int(mapping["BatchSize"]),
                    reports_batch_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []))


class Events:
    def __init__(self, deployment: LocalDeployment) -> None:
        self.topic_arn = deployment.endpoints.session_events_topic_arn
        self.sns, self.sqs, self.dynamodb = (deployment.client(name) for name in ("sns", "sqs", "dynamodb"))
        self.notifications = consumer(deployment, "notifications.handler")
        self.audit = consumer(deployment, "audit.handler")

    def publish(self, document: dict[str, Any] | str, *, event_type: str) -> None:
        body = document if isinstance(document, str) else json.dumps(document)
        self.sns.publish(TopicArn=self.topic_arn, Message=body, MessageAttributes={
            "event_type": {"DataType": "String", "StringValue": event_type}})

    def inbox_of(self, recipient: str) -> list[dict[str, Any]]:
        return list(self.dynamodb.query(TableName=self.notifications.environment["INBOX_TABLE"],
                                        KeyConditionExpression="recipient_id = :r", ConsistentRead=True,
                                        ExpressionAttributeValues={":r": {"S": recipient}})["Items"])

    def trail_of(self, session_id: str) -> list[dict[str, Any]]:
        return list(self.dynamodb.query(TableName=self.audit.environment["AUDIT_TABLE"],
                                        KeyConditionExpression="session_id = :s", ConsistentRead=True,
                                        ExpressionAttributeValues={":s": {"S": session_id}})["Items"])

    def dead_letters(self, source: Consumer, *, containing: str) -> list[str]:
        """Bodies in `source`'s dead-letter queue that contain `containing` (others' are left where they are)."""
        bodies = []
        for message in self.sqs.receive_message(QueueUrl=source.dead_letter_url, MaxNumberOfMessages=10,
                                                VisibilityTimeout=0, WaitTimeSeconds=0).get("Messages", []):
            if containing in message["Body"]:
                bodies.append(message["Body"])
                self.sqs.delete_message(QueueUrl=source.dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def idempotency_records(self, event_id: str) -> list[dict[str, Any]]:
        """The consumers' idempotency records for `event_id`: Powertools keys them `<function>.<handler>#<md5 of the
        JSON event_id>` (event_key_jmespath="event_id", services/selfnest_events/consumer.py)."""
        digest = hashlib.md5(json.dumps(event_id).encode(), usedforsecurity=False).hexdigest()
        table = self.notifications.environment["IDEMPOTENCY_TABLE"]
        return [item for item in self.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
                if item["id"]["S"].endswith(f"#{digest}")]


@pytest.fixture(scope="module")
def events(local_deployment: LocalDeployment) -> Events:
    return Events(local_deployment)


def test_the_mappings_are_deployed_as_the_consumers_need(events: Events) -> None:
    for source in (events.notifications, events.audit):
        assert source.reports_batch_item_failures
        assert source.max_receive_count > 1 and source.batch_size > 1


def test_a_booking_reaches_both_inboxes_and_the_audit_trail(events: Events) -> None:
    booked = session_event("session.booked")
    events.publish(booked, event_type="session.booked")

    session = booked["session"]
    for recipient, role in ((session["therapist_id"], "therapist"), (session["client_id"], "client")):
        [item] = eventually(partial(events.inbox_of, recipient), f"the {role}'s inbox item")
        assert item["kind"] == {"S": "session.booked"} and item["recipient_role"] == {"S": role}
        assert item["session_id"] == {"S": session["id"]} and int(item["expires_at"]["N"]) > 0
    [record] = eventually(lambda: events.trail_of(session["id"]), "the audit record")
    assert record["event_id"] == {"S": booked["event_id"]} and record["type"] == {"S": "session.booked"}


def test_filter_policies_route_each_event_type_to_its_queues(events: Events) -> None:
    # A session event type the notifier does not handle still reaches the audit trail (prefix match) ...
    rescheduled = session_event("session.booked")
    events.publish(rescheduled, event_type="session.rescheduled")
    # ... and an event outside the session family reaches neither consumer.
    outside = session_event("session.booked")
    events.publish(outside, event_type="therapist.profile_published")
    # Published last: once both consumers have it, the two before it were delivered or filtered out.
    sentinel = session_event("session.booked")
    events.publish(sentinel, event_type="session.booked")

    eventually(lambda: events.trail_of(sentinel["session"]["id"]), "the sentinel's audit record")
    eventually(lambda: events.inbox_of(sentinel["session"]["therapist_id"]), "the sentinel's inbox item")
    assert len(eventually(lambda: events.trail_of(rescheduled["session"]["id"]), "the rescheduling's record")) == 1
    assert events.inbox_of(rescheduled["session"]["therapist_id"]) == []
    assert events.trail_of(outside["session"]["id"]) == []
    assert events.inbox_of(outside["session"]["therapist_id"]) == []


def test_a_poison_message_ends_in_the_dead_letter_queue_while_its_batch_mates_succeed(events: Events) -> None:
    # The handler reports the poison message as a batch item failure rather than failing the invocation: only an
    # event source mapping that honours ReportBatchItemFailures keeps it (else the whole batch counts as done).
    good = [session_event("session.cancelled") for _ in range(3)]
    for document in good:
        document["cancelled_by"] = "client"
    marker = f"not-a-session-event-{uuid.uuid4()}"
    poison = f'{{"event_id": "{marker}"'
    events.publish(good[0], event_type="session.cancelled")
    events.publish(poison, event_type="session.cancelled")
    for document in good[1:]:
        events.publish(document, event_type="session.cancelled")

    seconds = WAIT_SECONDS + REDELIVERY_SECONDS * events.notifications.max_receive_count * 3
    for source in (events.notifications, events.audit):     # kept, untouched, for a fix and a redrive
        assert eventually(partial(events.dead_letters, source, containing=marker),
                          f"the poison message in {source.function_name}'s dead-letter queue",
                          seconds=seconds) == [poison]
    for document in good:
        assert len(events.inbox_of(document["session"]["client_id"])) == 1
        assert len(events.trail_of(document["session"]["id"])) == 1


def test_a_redelivered_event_is_applied_once(events: Events) -> None:
    booked = session_event("session.booked")
    # SNS and SQS deliver at least once: the same event arrives as two messages.
    events.publish(booked, event_type="session.booked")
    events.publish(booked, event_type="session.booked")

    # Published after both copies: once both consumers have applied it, they had both copies (the queues are
    # shared with other tests, so "empty" says nothing).
    sentinel = session_event("session.booked")
    events.publish(sentinel, event_type="session.booked")
    eventually(lambda: events.trail_of(sentinel["session"]["id"]), "the sentinel's audit record")
    eventually(lambda: events.inbox_of(sentinel["session"]["therapist_id"]), "the sentinel's inbox item")

    # Each consumer completed the event once, recognising the second copy by its event_id.
    records = events.idempotency_records(booked["event_id"])
    assert len(records) == 2 and all(record["status"]["S"] == "COMPLETED" for record in records), records
    assert {record["id"]["S"].split(".", 1)[0] for record in records} == {events.notifications.function_name,
                                                                         events.audit.function_name}
    assert len(events.inbox_of(booked["session"]["therapist_id"])) == 1
    assert len(events.trail_of(booked["session"]["id"])) == 1


def test_nothing_is_lost_across_a_mixed_burst(events: Events) -> None:
    documents = [session_event("session.booked") for _ in range(23)]
    for document in documents:
        events.publish(document, event_type="session.booked")
    for document in documents:
        assert len(eventually(partial(events.trail_of, document["session"]["id"]),
                              "every audit record")) == 1
        assert len(eventually(partial(events.inbox_of, document["session"]["therapist_id"]),
                              "every inbox item")) == 1
    for document in documents:
        for source in (events.notifications, events.audit):
            assert events.dead_letters(source, containing=document["event_id"]) == []
