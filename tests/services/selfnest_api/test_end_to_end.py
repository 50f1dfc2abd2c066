"""A booking made through the booking API of the run's local deployment — the process `make up` starts from the API
task definition's command, environment and task role (IAM enforced), on the database its migrate task prepared —
followed through the deployed topic, the filter policies and the consumers the emulator runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from tests.local_deployment import LocalDeployment
from tests.services.local_cognito import DeployedIdentity

from .api_client import ApiClient
from .people import book, profile, slot, unique


def eventually(check: Callable[[], list[Any]], *, count: int, seconds: float = 90) -> list[Any]:
    deadline = time.monotonic() + seconds
    while len(found := check()) < count and time.monotonic() < deadline:
        time.sleep(0.3)
    return found


def test_a_booking_and_its_cancellation_reach_both_inboxes_and_the_audit_trail(
        local_deployment: LocalDeployment) -> None:
    identity, api = DeployedIdentity(local_deployment), ApiClient(local_deployment.endpoints.api)
    dynamodb = local_deployment.client("dynamodb")
    inbox_table = local_deployment.function_environment("notifications.handler")["INBOX_TABLE"]
    audit_table = local_deployment.function_environment("audit.handler")["AUDIT_TABLE"]

    def items(table: str, key: str, value: str) -> list[Any]:
        return list(dynamodb.query(TableName=table, KeyConditionExpression=f"{key} = :v", ConsistentRead=True,
                                   ExpressionAttributeValues={":v": {"S": value}})["Items"])

    therapist, client = identity.therapist(unique("therapist")), identity.client(unique("client"))
    assert api.put("/therapists/me", profile(), token=therapist.access_token).status == 201
    session = book(api, who=client, therapist=therapist, starts_at=slot(hours_ahead=40)).body
    assert api.delete(f"/sessions/{session['id']}", token=client.access_token).status == 200

    for person in (therapist, client):
        inbox = eventually(partial(items, inbox_table, "recipient_id", person.sub), count=2)
        assert sorted((item["kind"]["S"], item["session_id"]["S"]) for item in inbox) == [
            ("session.booked", session["id"]), ("session.cancelled", session["id"])]
    trail = eventually(lambda: items(audit_table, "session_id", session["id"]), count=2)
    assert sorted((item["type"]["S"], item["cancelled_by"].get("S")) for item in trail) == [
        ("session.booked", None), ("session.cancelled", "client")]
    # Anonymity holds downstream too: the trail and inboxes carry Cognito subs, never the pseudonym.
    assert client.username not in str(trail) + str(items(inbox_table, "recipient_id", therapist.sub))
