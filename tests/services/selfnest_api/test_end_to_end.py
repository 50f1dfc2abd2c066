"""A booking made through the API, followed through the template-built topic, queues and consumers."""

from __future__ import annotations

from typing import Any

from tests.services.aws_template import MotoStack
from tests.services.lambda_runtime import SqsEventSource

from .conftest import RunningApi
from .people import Identity, book, listed_therapist, slot, unique


def consumer(consumers: dict[str, SqsEventSource], handler: str) -> SqsEventSource:
    [source] = [source for source in consumers.values() if source.function.handler_name == handler]
    return source


def items(stack: MotoStack, source: SqsEventSource, table_variable: str, key: str, value: str) -> list[Any]:
    return list(stack.client("dynamodb").query(
        TableName=source.function.environment[table_variable], KeyConditionExpression=f"{key} = :v",
        ExpressionAttributeValues={":v": {"S": value}})["Items"])


def test_a_booking_and_its_cancellation_reach_both_inboxes_and_the_audit_trail(
        api: RunningApi, identity: Identity, consumers: dict[str, SqsEventSource], messaging_stack: MotoStack) -> None:
    notifications, audit = consumer(consumers, "notifications.handler"), consumer(consumers, "audit.handler")
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    session = book(api.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=40)).body
    assert api.client.delete(f"/sessions/{session['id']}", token=client.access_token).status == 200

    for source in (notifications, audit):
        assert all(not result.failed for result in source.drain())
    for person in (therapist, client):
        inbox = items(messaging_stack, notifications, "INBOX_TABLE", "recipient_id", person.sub)
        assert [(item["kind"]["S"], item["session_id"]["S"]) for item in inbox] == [
            ("session.booked", session["id"]), ("session.cancelled", session["id"])]
    trail = items(messaging_stack, audit, "AUDIT_TABLE", "session_id", session["id"])
    assert [(item["type"]["S"], item["cancelled_by"].get("S")) for item in trail] == [
        ("session.booked", None), ("session.cancelled", "client")]
    # Anonymity holds downstream too: the trail and inboxes carry Cognito subs, never the pseudonym.
    assert client.username not in str(trail) + str(items(messaging_stack, notifications, "INBOX_TABLE",
                                                         "recipient_id", therapist.sub))
