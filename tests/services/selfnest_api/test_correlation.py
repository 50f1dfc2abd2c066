"""One booking's correlation id, followed end to end: API request → outbox → SNS message attribute → SQS (raw
delivery) → the notifications and audit consumers and the chat's sessions consumer, on every log line of each hop."""

from __future__ import annotations

import importlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from selfnest_api import correlation
from selfnest_api.outbox import MAX_MESSAGE_ATTRIBUTES

from tests.infra.aws.assembly import Assembly
from tests.services.aws_template import MotoStack
from tests.services.lambda_runtime import SqsEventSource, event_sources

from .conftest import ApiLauncher, RunningApi
from .people import Identity, listed_therapist, slot, unique

TRACE_ID = "1-67891233-abcdef012345678912345678"


class Lines(logging.Handler):
    """The JSON lines a consumer's Powertools Logger writes, formatted by its own formatter."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@contextmanager
def consumer_lines(source: SqsEventSource) -> Iterator[Lines]:
    """Every line the function's module logger writes while inside."""
    module_name = source.function.handler_name.rsplit(".", 1)[0]
    logger = importlib.import_module(module_name).logger   # loaded already, from the function's asset
    lines = Lines()
    lines.setFormatter(logger.registered_formatter)
    logger.addHandler(lines)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)


def api_lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def every_consumer(consumers: dict[str, SqsEventSource], chat_stack: MotoStack,
                   selfnest_assembly: Assembly) -> list[SqsEventSource]:
    """Every SQS-fed function of the messaging and chat templates (a fork's new consumer is followed too)."""
    chat_consumers = event_sources(chat_stack, outdir=selfnest_assembly.outdir)
    found = [*consumers.values(), *chat_consumers.values()]
    assert {source.function.handler_name for source in found} >= {"notifications.handler", "audit.handler",
                                                                   "sessions.handler"}
    return found


@pytest.fixture(scope="module")
def raw_probe(messaging_stack: MotoStack, session_events_topic: str) -> str:
    """A queue of this module's own, subscribed to session-events with raw message delivery (as the consumers' are)
    and no filter; returns its URL."""
    sqs = messaging_stack.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"test-correlation-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messaging_stack.client("sns").subscribe(TopicArn=session_events_topic, Protocol="sqs", Endpoint=queue_arn,
                                            Attributes={"RawMessageDelivery": "true"})
    return str(queue_url)


def drain_quietly(sources: list[SqsEventSource]) -> None:
    """What other tests left in the queues, so that the lines captured next are this test's only."""
    for source in sources:
        source.drain()


def test_one_bookings_correlation_id_is_on_every_log_line_from_the_api_to_each_consumer(
        api: RunningApi, identity: Identity, every_consumer: list[SqsEventSource],
        capsys: pytest.CaptureFixture[str]) -> None:
    drain_quietly(every_consumer)
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    correlation_id = f"booking-{uuid.uuid4()}"
    capsys.readouterr()

    reply = api.client.call("POST", "/sessions", token=client.access_token,
                            json_body={"therapist_id": therapist.sub, "starts_at": slot(hours_ahead=30)},
                            headers={correlation.HEADER: correlation_id,
                                     "X-Amzn-Trace-Id": f"Self=1-67891233-12456789abcdef012345678;Root={TRACE_ID}"})
    assert reply.status == 201, reply.body
    assert reply.headers[correlation.HEADER] == correlation_id
    session_id = reply.body["id"]

    hop_lines = {"api": api_lines(capsys.readouterr().out)}
    for source in every_consumer:
        with consumer_lines(source) as captured:
            assert all(not result.failed for result in source.drain())
        hop_lines[source.function.handler_name] = captured.lines

    events = {line["event"] for line in hop_lines["api"]}
    assert {"request", "session_booked", "session_event_published"} <= events, hop_lines["api"]
    for hop, lines in hop_lines.items():
        assert lines, f"{hop}: wrote no log line for the booking"
        assert [line for line in lines if line.get("correlation_id") != correlation_id] == [], hop
        # The booking's id is on a line of every hop, so `follow <booking id>` finds its correlation id anywhere.
        assert any(line.get("session_id") == session_id for line in lines), hop
    assert all(line["trace_id"] == TRACE_ID for line in hop_lines["api"])
    # Ids only: neither the client's pseudonym nor the therapist's profile text reaches a log line.
    everything = json.dumps(hop_lines)
    assert client.username not in everything
    assert "behavioural" not in everything


def test_a_consumer_logs_a_failed_record_under_its_correlation_id_and_drops_a_malformed_one(
        every_consumer: list[SqsEventSource], messaging_stack: MotoStack, session_events_topic: str) -> None:
    drain_quietly(every_consumer)
    [notifications] = [source for source in every_consumer if source.function.handler_name == "notifications.handler"]
    good, forged = f"poison-{uuid.uuid4()}", 'forged" id\\n{"level": "error"}'
    sns = messaging_stack.client("sns")
    try:
        for correlation_id in (good, forged):
            sns.publish(TopicArn=session_events_topic, Message=json.dumps({"not": "a session event"}),
                        MessageAttributes={"event_type": {"DataType": "String", "StringValue": "session.booked"},
                                           correlation.MESSAGE_ATTRIBUTE: {"DataType": "String",
                                                                           "StringValue": correlation_id}})
        with consumer_lines(notifications) as captured:
            result = notifications.poll()
        assert len(result.failed) == len(result.delivered) == 2
        failures = [line for line in captured.lines if line.get("error") == "MalformedEventError"]
        assert sorted(str(line.get("correlation_id")) for line in failures) == sorted([good, "None"])
        assert "forged" not in json.dumps(captured.lines)   # a malformed id is dropped, never logged
    finally:
        for source in every_consumer:   # the poison stays out of other tests' queues
            source.stack.client("sqs").purge_queue(QueueUrl=source.queue_url)


def test_the_event_carries_the_correlation_id_as_a_message_attribute_within_the_raw_delivery_limit(
        api: RunningApi, identity: Identity, raw_probe: str, messaging_stack: MotoStack) -> None:
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    reply = api.client.call("POST", "/sessions", token=client.access_token,
                            json_body={"therapist_id": therapist.sub, "starts_at": slot(hours_ahead=31)})
    assert reply.status == 201, reply.body
    generated = reply.headers[correlation.HEADER]
    assert correlation.is_well_formed(generated)
    uuid.UUID(generated)   # none was sent: the API made one

    sqs = messaging_stack.client("sqs")
    [message] = [message for message in sqs.receive_message(QueueUrl=raw_probe, MessageAttributeNames=["All"],
                                                             MaxNumberOfMessages=10)["Messages"]
                 if json.loads(message["Body"])["session"]["id"] == reply.body["id"]]
    attributes = message["MessageAttributes"]
    assert attributes[correlation.MESSAGE_ATTRIBUTE]["StringValue"] == generated
    assert attributes["event_type"]["StringValue"] == "session.booked"
    assert len(attributes) <= MAX_MESSAGE_ATTRIBUTES


def test_the_request_trace_id_rides_on_the_publish_call_as_the_x_ray_trace_header(
        api: RunningApi, identity: Identity) -> None:
    sent: list[bytes | str | None] = []

    def spy(request: Any, **_: Any) -> None:   # the prepared request, as it goes on the wire
        sent.append(request.headers.get("X-Amzn-Trace-Id"))

    sns = api.service.outbox._sns   # the client the relay publishes with
    sns.meta.events.register("before-send.sns.Publish", spy)
    try:
        therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
        reply = api.client.call("POST", "/sessions", token=client.access_token,
                                json_body={"therapist_id": therapist.sub, "starts_at": slot(hours_ahead=32)},
                                headers={"X-Amzn-Trace-Id": f"Root={TRACE_ID}"})
    finally:
        sns.meta.events.unregister("before-send.sns.Publish", spy)
    assert reply.status == 201, reply.body
    assert sent == [f"Root={TRACE_ID}".encode()]


def test_an_event_the_relay_publishes_after_an_outage_keeps_its_requests_correlation_id(
        launcher: ApiLauncher, identity: Identity, capsys: pytest.CaptureFixture[str]) -> None:
    # No such topic yet: the request's own publish fails and the background relay publishes later, from the row.
    topic_name = unique("session-events-correlation")
    topic_arn = f"arn:aws:sns:{identity.region}:123456789012:{topic_name}"
    api = launcher.start(database="selfnest_correlation", topic_arn=topic_arn, retry_seconds=0.2)
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    correlation_id = f"relay-{uuid.uuid4()}"
    reply = api.client.call("POST", "/sessions", token=client.access_token,
                            json_body={"therapist_id": therapist.sub, "starts_at": slot(hours_ahead=33)},
                            headers={correlation.HEADER: correlation_id})
    assert reply.status == 201, reply.body

    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName=unique("relay-probe"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    with api.service.database.connection() as connection, connection.transaction():
        # Held so the relay cannot publish before the probe listens (it claims rows FOR UPDATE SKIP LOCKED).
        connection.execute("SELECT event_id FROM outbox_events WHERE published_at IS NULL FOR UPDATE")
        sns.create_topic(Name=topic_name)
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                      Attributes={"RawMessageDelivery": "true"})
    deadline = time.monotonic() + 30
    messages: list[Any] = []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"],
                                       WaitTimeSeconds=1).get("Messages", [])
    [message] = messages
    assert message["MessageAttributes"][correlation.MESSAGE_ATTRIBUTE]["StringValue"] == correlation_id
    while time.monotonic() < deadline and pending(api):   # its log line is written before the relay commits
        time.sleep(0.05)
    relay_lines = [line for line in api_lines(capsys.readouterr().out)
                   if line["event"] in ("session_event_publish_failed", "session_event_published")]
    assert {line["event"] for line in relay_lines} == {"session_event_publish_failed", "session_event_published"}
    assert all(line["correlation_id"] == correlation_id for line in relay_lines)


def pending(api: RunningApi) -> int:
    with api.service.database.connection() as connection:
        row = connection.execute("SELECT count(*) AS n FROM outbox_events WHERE published_at IS NULL").fetchone()
    return int(row["n"]) if row else 0


@pytest.mark.parametrize("inbound", [
    "short",                                        # too short to be an id
    "x" * 129,                                      # too long
    "abc def ghi",                                  # spaces
    '"}, "level": "error", "event": "forged',       # an attempt to forge JSON fields
    "id-with-ünïcödé",                              # outside the allowed characters
])
def test_a_malformed_inbound_correlation_id_is_replaced_and_never_reflected(
        api: RunningApi, inbound: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    reply = api.client.call("GET", "/healthz", headers={correlation.HEADER: inbound})
    assert reply.status == 200
    returned = reply.headers[correlation.HEADER]
    assert returned != inbound
    uuid.UUID(returned)
    captured = capsys.readouterr().out
    assert inbound not in captured
    lines = api_lines(captured)
    assert {line["event"] for line in lines} == {"correlation_id_replaced", "request"}
    assert all(line["correlation_id"] == returned for line in lines)


def test_a_well_formed_inbound_correlation_id_is_kept(api: RunningApi) -> None:
    for inbound in (str(uuid.uuid4()), "01HZY3J6W4N3S5T6V7X8Y9Z0AB", f"Root={TRACE_ID}"[5:], "mobile.retry:42-ab"):
        assert api.client.call("GET", "/healthz", headers={correlation.HEADER: inbound}).headers[
            correlation.HEADER] == inbound


@pytest.mark.parametrize(("header", "expected"), [
    (f"Root={TRACE_ID}", TRACE_ID),                                                   # the ALB made it
    (f"Self=1-67891233-12456789abcdef012345678;Root={TRACE_ID}", TRACE_ID),          # the ALB extended the caller's
    (f"Self=1-67891233-12456789abcdef012345678;Root={TRACE_ID};CalledFrom=app", TRACE_ID),
    (f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1", TRACE_ID),
    ("Root=1-67891233-ABCDEF012345678912345678", None),                               # not lower-case hex
    ("Root=1-6789123-abcdef012345678912345678", None),                                # 7 digits of time
    (f"XRoot={TRACE_ID}", None),
    (f"Root={TRACE_ID}" + ";Custom=" + "x" * 300, None),                              # too long to read
    (None, None),
])
def test_the_trace_id_is_the_root_of_a_well_formed_trace_header(header: str | None, expected: str | None) -> None:
    assert correlation.trace_root(header) == expected
