"""Session-wide AWS stand-ins for the booking API's tests: moto in server mode, holding the identity and messaging
resources built from the dev templates (the API runs in-process against them).

What the emulator of the run's local deployment runs — Cognito triggers, event source mappings, the chat's routes —
is tested there instead (tests/local_deployment.py, the `local_deployment` fixture)."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from tests.infra.aws.assembly import Assembly, shared_assembly

from .aws_template import MotoStack, deploy, outputs_of
from .cognito import Identity, applying_client_write_attributes

ENVIRONMENT = "dev"


@pytest.fixture(scope="session")
def selfnest_assembly() -> Assembly:
    """The same dev synth the infrastructure tests read (one per run, reused across runs while unchanged)."""
    return shared_assembly(ENVIRONMENT)


@pytest.fixture(scope="session")
def moto_endpoint(selfnest_assembly: Assembly) -> Iterator[str]:
    """moto over HTTP on 127.0.0.1, so code under test uses its real clients (and JWKS URL) unchanged."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                            "AWS_DEFAULT_REGION": selfnest_assembly.settings.region,
                            "AWS_REGION": selfnest_assembly.settings.region}.items():
            patch.setenv(name, value)
        try:
            yield endpoint
        finally:
            server.stop()


def _deploy_part(assembly: Assembly, endpoint: str, part: str, *, reads: tuple[MotoStack, ...] = ()) -> MotoStack:
    return deploy(name=assembly.settings.name(part), template=copy.deepcopy(assembly.templates[part]),
                  region=assembly.settings.region, endpoint=endpoint, imports=outputs_of(*reads) if reads else None)


@pytest.fixture(scope="session")
def identity_stack(selfnest_assembly: Assembly, moto_endpoint: str) -> MotoStack:
    return _deploy_part(selfnest_assembly, moto_endpoint, "identity")


@pytest.fixture(scope="session")
def messaging_stack(selfnest_assembly: Assembly, moto_endpoint: str) -> MotoStack:
    return _deploy_part(selfnest_assembly, moto_endpoint, "messaging")


@pytest.fixture(scope="session")
def identity(identity_stack: MotoStack) -> Iterator[Identity]:
    with applying_client_write_attributes():
        yield Identity(identity_stack)


@dataclass
class SessionEventsProbe:
    """A test-owned queue subscribed to the session-events topic without a filter: sees everything published."""

    stack: MotoStack
    topic_arn: str
    queue_url: str

    def drain(self) -> list[dict[str, Any]]:
        sqs = self.stack.client("sqs")
        events: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                return events
            for message in messages:
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture(scope="session")
def session_events_topic(messaging_stack: MotoStack, selfnest_assembly: Assembly) -> str:
    wanted = selfnest_assembly.settings.name("session-events")
    [topic_id] = [logical_id for logical_id, topic in messaging_stack.resources("AWS::SNS::Topic").items()
                  if topic["Properties"]["TopicName"] == wanted]
    return messaging_stack.ref(topic_id)


@pytest.fixture(scope="session")
def session_events(messaging_stack: MotoStack, session_events_topic: str) -> SessionEventsProbe:
    sqs = messaging_stack.client("sqs")
    queue_url = sqs.create_queue(QueueName="test-session-events-probe")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messaging_stack.client("sns").subscribe(TopicArn=session_events_topic, Protocol="sqs", Endpoint=queue_arn,
                                            Attributes={"RawMessageDelivery": "true"})
    return SessionEventsProbe(stack=messaging_stack, topic_arn=session_events_topic, queue_url=queue_url)
