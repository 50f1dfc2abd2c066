"""The chat as deployed from the dev templates: tables and queue in moto, API Gateway played by `WebSocketGateway`,
bookings arriving as session events through the messaging stack's topic."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.infra.aws.assembly import Assembly
from tests.services.aws_template import TABLE_TYPES, MotoStack
from tests.services.cognito import Identity, Tokens
from tests.services.lambda_runtime import SqsEventSource, event_sources

from .websocket import Socket, WebSocketGateway


@pytest.fixture(scope="session")
def gateway(chat_stack: MotoStack, selfnest_assembly: Assembly, identity: Identity) -> Iterator[WebSocketGateway]:
    # The authorizer fetches the pool's keys from moto instead of cognito-idp.<region>.amazonaws.com.
    gateway = WebSocketGateway(chat_stack, outdir=selfnest_assembly.outdir,
                               environment={"COGNITO_JWKS_URL": identity.jwks_url})
    with gateway.answering_gone():
        yield gateway


@pytest.fixture(scope="session")
def sessions_consumer(chat_stack: MotoStack, selfnest_assembly: Assembly) -> SqsEventSource:
    [source] = event_sources(chat_stack, outdir=selfnest_assembly.outdir).values()
    assert source.function.handler_name == "sessions.handler"
    return source


@dataclass(frozen=True)
class ChatTable:
    """A chat table as the template defines it: its name (from a function's environment), keys and TTL attribute."""

    stack: MotoStack
    name: str
    keys: list[str]                 # partition key, then sort key if any
    expiry_attribute: str
    indexes: dict[str, str]         # index name -> its partition key

    def items(self, **key: str) -> list[dict[str, Any]]:
        [(attribute, value)] = key.items()
        dynamodb = self.stack.client("dynamodb")
        if attribute == self.keys[0]:
            found = dynamodb.query(TableName=self.name, KeyConditionExpression="#k = :v", ConsistentRead=True,
                                   ExpressionAttributeNames={"#k": attribute},
                                   ExpressionAttributeValues={":v": {"S": value}})
        else:
            [index] = [name for name, partition in self.indexes.items() if partition == attribute]
            found = dynamodb.query(TableName=self.name, IndexName=index, KeyConditionExpression="#k = :v",
                                   ExpressionAttributeNames={"#k": attribute},
                                   ExpressionAttributeValues={":v": {"S": value}})
        return [{name: next(iter(typed.values())) for name, typed in item.items()} for item in found["Items"]]


def chat_table(stack: MotoStack, environment: dict[str, str], variable: str) -> ChatTable:
    name = environment[variable]
    [properties] = [table["Properties"] for table_type in TABLE_TYPES for table in stack.resources(table_type).values()
                    if table["Properties"]["TableName"] == name]
    keys = [part["AttributeName"] for part in sorted(properties["KeySchema"], key=lambda part: part["KeyType"])]
    indexes = {index["IndexName"]: index["KeySchema"][0]["AttributeName"]
               for index in properties.get("GlobalSecondaryIndexes", [])}
    return ChatTable(stack=stack, name=name, keys=keys, indexes=indexes,
                     expiry_attribute=properties["TimeToLiveSpecification"]["AttributeName"])


@dataclass
class Tables:
    sessions: ChatTable
    connections: ChatTable
    messages: ChatTable


@pytest.fixture(scope="session")
def tables(gateway: WebSocketGateway, chat_stack: MotoStack) -> Tables:
    environment = gateway.routes["sendMessage"].function.environment
    return Tables(*(chat_table(chat_stack, environment, variable)
                    for variable in ("SESSIONS_TABLE", "CONNECTIONS_TABLE", "MESSAGES_TABLE")))


@dataclass
class Booking:
    session_id: str
    therapist: Tokens
    client: Tokens
    starts_at: datetime
    ends_at: datetime


class Bookings:
    """Books and cancels sessions the way the booking API announces them: session events on the topic."""

    def __init__(self, stack: MotoStack, topic_arn: str, consumer: SqsEventSource) -> None:
        self.stack, self.topic_arn, self.consumer = stack, topic_arn, consumer

    def book(self, therapist: Tokens, client: Tokens, *, starts_in: timedelta = timedelta(minutes=-5),
             minutes: int = 50) -> Booking:
        starts_at = (datetime.now(UTC) + starts_in).replace(microsecond=0)
        booking = Booking(session_id=str(uuid.uuid4()), therapist=therapist, client=client, starts_at=starts_at,
                          ends_at=starts_at + timedelta(minutes=minutes))
        self.publish("session.booked", booking)
        return booking

    def cancel(self, booking: Booking) -> None:
        self.publish("session.cancelled", booking, cancelled_by="client")

    def publish(self, event_type: str, booking: Booking, *, cancelled_by: str | None = None) -> None:
        document = {"event_id": str(uuid.uuid4()), "type": event_type, "occurred_at": datetime.now(UTC).isoformat(),
                    "cancelled_by": cancelled_by,
                    "session": {"id": booking.session_id, "therapist_id": booking.therapist.sub,
                                "client_id": booking.client.sub, "starts_at": booking.starts_at.isoformat(),
                                "ends_at": booking.ends_at.isoformat(), "status": event_type.split(".")[1]}}
        self.send_raw(json.dumps(document), event_type=event_type)

    def send_raw(self, body: str, *, event_type: str) -> None:
        self.stack.client("sns").publish(TopicArn=self.topic_arn, Message=body, MessageAttributes={
            "event_type": {"DataType": "String", "StringValue": event_type}})
        self.consumer.drain()


@pytest.fixture(scope="session")
def bookings(messaging_stack: MotoStack, session_events_topic: str, sessions_consumer: SqsEventSource) -> Bookings:
    return Bookings(messaging_stack, session_events_topic, sessions_consumer)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Pair:
    booking: Booking
    client: Socket
    therapist: Socket


@pytest.fixture
def pair(identity: Identity, bookings: Bookings, gateway: WebSocketGateway) -> Pair:
    """A session booked now, its client and therapist connected and joined."""
    booking = bookings.book(identity.therapist(unique("therapist")), identity.client(unique("client")))
    client, therapist = (connected(gateway, tokens) for tokens in (booking.client, booking.therapist))
    for socket in (client, therapist):
        [joined] = socket.send({"action": "joinSession", "sessionId": booking.session_id})
        assert joined["type"] == "joined", joined
    return Pair(booking=booking, client=client, therapist=therapist)


def connected(gateway: WebSocketGateway, tokens: Tokens) -> Socket:
    socket = gateway.connect(tokens.access_token)
    assert isinstance(socket, Socket), socket
    return socket
