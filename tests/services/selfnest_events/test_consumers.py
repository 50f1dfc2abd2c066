"""Session events through the topic, queues and consumers built from the messaging template."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.services.aws_template import MotoStack
from tests.services.lambda_runtime import SqsEventSource


def session_event(event_type: str = "session.booked", *, event_id: str | None = None) -> dict[str, Any]:
    """The document the booking API publishes (services/selfnest_api outbox)."""
    starts = datetime(2027, 1, 4, 10, tzinfo=UTC) + timedelta(hours=uuid.uuid4().int % 1000)
    return {"event_id": event_id or str(uuid.uuid4()), "type": event_type,
            "occurred_at": datetime.now(UTC).isoformat(), "cancelled_by": None,
            "session": {"id": str(uuid.uuid4()), "therapist_id": str(uuid.uuid4()), "client_id": str(uuid.uuid4()),
                        "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(minutes=50)).isoformat(),
                        "status": "booked"}}


class Events:
    def __init__(self, stack: MotoStack, topic_arn: str, consumers: dict[str, SqsEventSource]) -> None:
        self.stack, self.topic_arn = stack, topic_arn
        self.notifications = self._consumer(consumers, "notifications.handler")
        self.audit = self._consumer(consumers, "audit.handler")

    @staticmethod
    def _consumer(consumers: dict[str, SqsEventSource], handler: str) -> SqsEventSource:
        [source] = [source for source in consumers.values() if source.function.handler_name == handler]
        return source

    def publish(self, document: dict[str, Any] | str, *, event_type: str) -> None:
        body = document if isinstance(document, str) else json.dumps(document)
        self.stack.client("sns").publish(TopicArn=self.topic_arn, Message=body, MessageAttributes={
            "event_type": {"DataType": "String", "StringValue": event_type}})

    def table(self, source: SqsEventSource, variable: str) -> Any:
        return self.stack.client("dynamodb"), source.function.environment[variable]

    def inbox_of(self, recipient: str) -> list[dict[str, Any]]:
        dynamodb, table = self.table(self.notifications, "INBOX_TABLE")
        return list(dynamodb.query(TableName=table, KeyConditionExpression="recipient_id = :r",
                                   ExpressionAttributeValues={":r": {"S": recipient}})["Items"])

    def trail_of(self, session_id: str) -> list[dict[str, Any]]:
        dynamodb, table = self.table(self.audit, "AUDIT_TABLE")
        return list(dynamodb.query(TableName=table, KeyConditionExpression="session_id = :s",
                                   ExpressionAttributeValues={":s": {"S": session_id}})["Items"])

    def queue_depth(self, source: SqsEventSource) -> int:
        attributes = self.stack.client("sqs").get_queue_attributes(
            QueueUrl=source.queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                                       "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def dead_letters(self, source: SqsEventSource) -> list[str]:
        sqs = self.stack.client("sqs")
        policy = json.loads(sqs.get_queue_attributes(QueueUrl=source.queue_url, AttributeNames=["RedrivePolicy"])
                            ["Attributes"]["RedrivePolicy"])
        dead_letter_url = sqs.get_queue_url(QueueName=policy["deadLetterTargetArn"].rsplit(":", 1)[-1])["QueueUrl"]
        bodies = []
        while messages := sqs.receive_message(QueueUrl=dead_letter_url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=0).get("Messages", []):
            for message in messages:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def max_receive_count(self, source: SqsEventSource) -> int:
        properties = self.stack.template["Resources"][source.queue_logical_id]["Properties"]
        return int(properties["RedrivePolicy"]["maxReceiveCount"])


@pytest.fixture
def events(messaging_stack: MotoStack, session_events_topic: str, consumers: dict[str, SqsEventSource]) -> Events:
    found = Events(messaging_stack, session_events_topic, consumers)
    for source in (found.notifications, found.audit):
        source.drain()
    return found


def test_a_booking_reaches_both_inboxes_and_the_audit_trail(events: Events) -> None:
    booked = session_event("session.booked")
    events.publish(booked, event_type="session.booked")

    assert [result.failed for result in events.notifications.drain()] == [[]]
    assert [result.failed for result in events.audit.drain()] == [[]]
    session = booked["session"]
    for recipient, role in ((session["therapist_id"], "therapist"), (session["client_id"], "client")):
        [item] = events.inbox_of(recipient)
        assert item["kind"] == {"S": "session.booked"} and item["recipient_role"] == {"S": role}
        assert item["session_id"] == {"S": session["id"]} and int(item["expires_at"]["N"]) > 0
    [record] = events.trail_of(session["id"])
    assert record["event_id"] == {"S": booked["event_id"]} and record["type"] == {"S": "session.booked"}


def test_filter_policies_route_each_event_type_to_its_queues(events: Events) -> None:
    # A session event type the notifier does not handle still reaches the audit trail (prefix match) ...
    events.publish(session_event("session.booked"), event_type="session.rescheduled")
    # ... and an event outside the session family reaches neither consumer.
    events.publish(session_event("session.booked"), event_type="therapist.profile_published")

    assert events.queue_depth(events.notifications) == 0
    assert events.queue_depth(events.audit) == 1
    events.audit.drain()


def test_a_poison_message_ends_in_the_dead_letter_queue_while_its_batch_mates_succeed(events: Events) -> None:
    good = [session_event("session.cancelled") for _ in range(3)]
    for document in good:
        document["cancelled_by"] = "client"
    poison = '{"event_id": "not-a-session-event"'
    events.publish(good[0], event_type="session.cancelled")
    events.publish(poison, event_type="session.cancelled")
    for document in good[1:]:
        events.publish(document, event_type="session.cancelled")

    first, *retries = events.notifications.drain()
    assert len(first.delivered) == 4 and len(first.failed) == 1       # one batch, one failure reported
    assert len(retries) == events.max_receive_count(events.notifications) - 1
    assert all(len(retry.delivered) == 1 and retry.failed == retry.delivered for retry in retries)

    assert events.dead_letters(events.notifications) == [poison]        # kept, untouched, for a fix and a redrive
    for document in good:
        assert len(events.inbox_of(document["session"]["client_id"])) == 1
    events.audit.drain()
    assert events.dead_letters(events.audit) == [poison]


def idempotency_records(events: Events, source: SqsEventSource) -> set[str]:
    dynamodb, table = events.table(source, "IDEMPOTENCY_TABLE")
    function_name = source.function.environment["AWS_LAMBDA_FUNCTION_NAME"]
    return {item["id"]["S"] for item in dynamodb.scan(TableName=table)["Items"]
            if item["id"]["S"].startswith(function_name) and item["status"]["S"] == "COMPLETED"}


def test_a_redelivered_event_is_applied_once(events: Events) -> None:
    booked = session_event("session.booked")
    before = idempotency_records(events, events.notifications)
    # SNS and SQS deliver at least once: the same event arrives as two messages.
    events.publish(booked, event_type="session.booked")
    events.publish(booked, event_type="session.booked")

    results = events.notifications.drain()
    assert sum(len(result.delivered) for result in results) == 2 and all(not r.failed for r in results)
    assert len(events.inbox_of(booked["session"]["therapist_id"])) == 1
    events.audit.drain()
    assert len(events.trail_of(booked["session"]["id"])) == 1

    # The second copy was recognised by its event_id before touching the inbox: one completed record, not two.
    assert len(idempotency_records(events, events.notifications) - before) == 1


def test_nothing_is_lost_across_a_mixed_burst(events: Events) -> None:
    documents = [session_event("session.booked") for _ in range(23)]
    for document in documents:
        events.publish(document, event_type="session.booked")
    events.notifications.drain()
    events.audit.drain()
    for document in documents:
        assert len(events.trail_of(document["session"]["id"])) == 1
        assert len(events.inbox_of(document["session"]["therapist_id"])) == 1
    assert events.dead_letters(events.notifications) == [] and events.dead_letters(events.audit) == []
