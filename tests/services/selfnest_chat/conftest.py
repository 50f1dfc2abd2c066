"""The chat of the run's local deployment: its WebSocket API served by MiniStack with the deployed routes and
authorizer, its functions run from their deployed assets under their own roles, bookings arriving as session events
through the deployed topic and the sessions consumer's event source mapping."""

from __future__ import annotations

import contextlib
import fcntl
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import IO, Any

import jwt
import pytest
from refarch.local.demo import Person

from tests.local_deployment import LocalDeployment, eventually
from tests.services.local_cognito import DeployedIdentity

from .websocket import Refusal, Socket, open_socket

Tokens = Person


@dataclass(frozen=True)
class ChatTable:
    """A deployed chat table: its name (from a function's configuration), keys, TTL attribute and indexes."""

    dynamodb: Any
    name: str
    keys: list[str]                 # partition key, then sort key if any
    expiry_attribute: str
    indexes: dict[str, str]         # index name -> its partition key

    def items(self, **key: str) -> list[dict[str, Any]]:
        [(attribute, value)] = key.items()
        if attribute == self.keys[0]:
            found = self.dynamodb.query(TableName=self.name, KeyConditionExpression="#k = :v", ConsistentRead=True,
                                        ExpressionAttributeNames={"#k": attribute},
                                        ExpressionAttributeValues={":v": {"S": value}})
        else:
            [index] = [name for name, partition in self.indexes.items() if partition == attribute]
            found = self.dynamodb.query(TableName=self.name, IndexName=index, KeyConditionExpression="#k = :v",
                                        ExpressionAttributeNames={"#k": attribute},
                                        ExpressionAttributeValues={":v": {"S": value}})
        return [{name: next(iter(typed.values())) for name, typed in item.items()} for item in found["Items"]]

    def scan(self, **match: str) -> list[dict[str, Any]]:
        items = [{name: next(iter(typed.values())) for name, typed in item.items()}
                 for item in self.dynamodb.scan(TableName=self.name, ConsistentRead=True)["Items"]]
        return [item for item in items if all(item.get(name) == value for name, value in match.items())]


def chat_table(dynamodb: Any, name: str, templates: list[dict[str, Any]]) -> ChatTable:
    table = dynamodb.describe_table(TableName=name)["Table"]
    keys = [part["AttributeName"] for part in sorted(table["KeySchema"], key=lambda part: part["KeyType"])]
    indexes = {index["IndexName"]: index["KeySchema"][0]["AttributeName"]
               for index in table.get("GlobalSecondaryIndexes", [])}
    # MiniStack leaves a global table's TTL off (docs/local.md): the attribute comes from the deployed template.
    [ttl] = [resource["Properties"]["TimeToLiveSpecification"] for template in templates
             for resource in template["Resources"].values()
             if resource["Type"].startswith("AWS::DynamoDB::") and resource["Properties"].get("TableName") == name]
    return ChatTable(dynamodb=dynamodb, name=name, keys=keys, indexes=indexes, expiry_attribute=ttl["AttributeName"])


@dataclass
class Tables:
    sessions: ChatTable
    connections: ChatTable
    messages: ChatTable


class Chat:
    """Connections to the deployed chat, and what its functions are configured with."""

    def __init__(self, deployment: LocalDeployment) -> None:
        self.deployment = deployment
        self.url = deployment.endpoints.chat
        self.dynamodb = deployment.client("dynamodb")
        self.functions = deployment.client("lambda")
        environment = self.environment("chat.send_message")
        self._lock: IO[str] | None = None
        self._changing = 0
        templates = [json.loads(path.read_text()) for path in (deployment.state / "cdk.out").glob("*.template.json")]
        self.tables = Tables(*(chat_table(self.dynamodb, environment[variable], templates)
                               for variable in ("SESSIONS_TABLE", "CONNECTIONS_TABLE", "MESSAGES_TABLE")))

    @cache  # noqa: B019 - one Chat per session
    def function(self, handler: str) -> dict[str, Any]:
        found = [function for page in self.functions.get_paginator("list_functions").paginate()
                 for function in page["Functions"] if function.get("Handler") == handler]
        assert len(found) == 1, f"expected one deployed function with handler {handler}, found {len(found)}"
        return dict(found[0])

    def environment(self, handler: str) -> dict[str, str]:
        configuration = self.functions.get_function_configuration(FunctionName=self.function(handler)["FunctionName"])
        return dict(configuration["Environment"]["Variables"])

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """While a test talks to the chat: a shared lock, across xdist workers, on the chat functions' settings."""
        with (self.deployment.state / "chat-settings.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            self._lock, self._changing = lock, 0
            try:
                yield
            finally:
                self._lock = None
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def configured(self, handler: str, **settings: str) -> Iterator[None]:
        """The deployed function runs with `settings` changed (an operator's configuration change), then as before,
        for limits too large to reach otherwise. Chat tests of other workers wait meanwhile: the test's shared lock
        becomes exclusive until every change it made is undone."""
        assert self._lock is not None, "configured() needs the chat in use (the autouse fixture)"
        if self._changing == 0:
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        self._changing += 1
        name = self.function(handler)["FunctionName"]
        before = self.environment(handler)
        try:
            self._update(name, {**before, **settings})
            yield
        finally:
            self._update(name, before)
            self._changing -= 1
            if self._changing == 0:
                fcntl.flock(self._lock, fcntl.LOCK_SH)

    def _update(self, name: str, variables: dict[str, str]) -> None:
        self.functions.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
        self.functions.get_waiter("function_updated_v2").wait(FunctionName=name,
                                                              WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    def connect(self, token: str | None, *, raw_subprotocols: str | None = None) -> Socket | Refusal:
        # The client is never told its connection id: `$connect` stores it with the user's sub.
        sub = _sub_of(token)
        before = set() if sub is None else set(self.connection_ids(sub))
        connection, refusal = open_socket(self.url, token, raw_subprotocols=raw_subprotocols)
        if refusal is not None:
            return refusal
        assert connection is not None and sub is not None
        new = eventually(lambda: [found for found in self.connection_ids(sub) if found not in before],
                         "the new connection")
        assert len(new) == 1, new
        return Socket(connection=connection, connection_id=new[0], subprotocol=connection.subprotocol)

    def connection_ids(self, sub: str) -> list[str]:
        return [item[self.tables.connections.keys[0]] for item in self.tables.connections.scan(user_id=sub)]


def _sub_of(token: str | None) -> str | None:
    try:
        return str(jwt.decode(token or "", options={"verify_signature": False})["sub"])
    except (jwt.DecodeError, KeyError):
        return None   # not a token the handshake can pass


@pytest.fixture(scope="session")
def chat(local_deployment: LocalDeployment) -> Chat:
    return Chat(local_deployment)


@pytest.fixture(autouse=True)
def chat_in_use(chat: Chat) -> Iterator[None]:
    with chat.in_use():
        yield


@pytest.fixture(scope="session")
def identity(local_deployment: LocalDeployment) -> DeployedIdentity:
    return DeployedIdentity(local_deployment)


@pytest.fixture(scope="session")
def tables(chat: Chat) -> Tables:
    return chat.tables


@dataclass
class Booking:
    session_id: str
    therapist: Tokens
    client: Tokens
    starts_at: datetime
    ends_at: datetime


class Bookings:
    """Books and cancels sessions the way the booking API announces them: session events on the deployed topic,
    which the sessions consumer's event source mapping delivers to the chat."""

    def __init__(self, deployment: LocalDeployment, tables: Tables) -> None:
        self.sns, self.sqs = deployment.client("sns"), deployment.client("sqs")
        self.topic_arn = deployment.endpoints.session_events_topic_arn
        self.tables = tables

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
        """Publish, and wait until the chat's session shows it."""
        self.send_raw(json.dumps(self.document(event_type, booking, cancelled_by=cancelled_by)), event_type=event_type)
        status = event_type.split(".")[1]
        eventually(lambda: any(item.get("status") in (status, "cancelled") for item in
                               self.tables.sessions.items(**{self.tables.sessions.keys[0]: booking.session_id})),
                   f"the chat's session {status}")

    @staticmethod
    def document(event_type: str, booking: Booking, *, cancelled_by: str | None = None) -> dict[str, Any]:
        """The session event the booking API would publish for `booking`."""
        return {"event_id": str(uuid.uuid4()), "type": event_type, "occurred_at": datetime.now(UTC).isoformat(),
                "cancelled_by": cancelled_by,
                "session": {"id": booking.session_id, "therapist_id": booking.therapist.sub,
                            "client_id": booking.client.sub, "starts_at": booking.starts_at.isoformat(),
                            "ends_at": booking.ends_at.isoformat(), "status": event_type.split(".")[1]}}

    def send_raw(self, body: str, *, event_type: str) -> None:
        self.sns.publish(TopicArn=self.topic_arn, Message=body, MessageAttributes={
            "event_type": {"DataType": "String", "StringValue": event_type}})


@pytest.fixture(scope="session")
def bookings(local_deployment: LocalDeployment, tables: Tables) -> Bookings:
    return Bookings(local_deployment, tables)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Pair:
    booking: Booking
    client: Socket
    therapist: Socket


@pytest.fixture(scope="module")
def regulars(identity: DeployedIdentity) -> tuple[Tokens, Tokens]:
    """A therapist and a client who book one session per test of a module (signing people up takes seconds)."""
    return identity.therapist(unique("therapist")), identity.client(unique("client"))


@pytest.fixture
def pair(regulars: tuple[Tokens, Tokens], bookings: Bookings, chat: Chat) -> Iterator[Pair]:
    """A session booked now, its client and therapist connected and joined."""
    booking = bookings.book(*regulars)
    client, therapist = (connected(chat, tokens) for tokens in (booking.client, booking.therapist))
    for socket in (client, therapist):
        [joined] = socket.send({"action": "joinSession", "sessionId": booking.session_id})
        assert joined["type"] == "joined", joined
    yield Pair(booking=booking, client=client, therapist=therapist)
    for socket in (client, therapist):
        socket.close()


def connected(chat: Chat, tokens: Tokens) -> Socket:
    socket = chat.connect(tokens.access_token)
    assert isinstance(socket, Socket), socket
    return socket
