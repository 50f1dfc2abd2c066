"""Run Lambda handlers in-process the way the Lambda service would: from the synthesized asset, with the
template's environment, fed by the template's event source mapping."""

from __future__ import annotations

import importlib
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from .aws_template import MotoStack

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_millis: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


@dataclass
class DeployedFunction:
    """A function from the template, loaded from its bundled asset with its resolved environment."""

    logical_id: str
    asset: Path
    handler_name: str
    environment: dict[str, str]
    handler: Handler

    def __call__(self, event: dict[str, Any]) -> Any:
        with mock.patch.dict(os.environ, self.environment), mock.patch.object(sys, "dont_write_bytecode", True):
            return self.handler(event, LambdaContext(function_name=self.logical_id))


def load_function(stack: MotoStack, *, outdir: Path, logical_id: str) -> DeployedFunction:
    resource = stack.template["Resources"][logical_id]
    asset = outdir / resource["Metadata"]["aws:asset:path"]
    handler_name = resource["Properties"]["Handler"]
    # What the Lambda runtime adds; Powertools idempotency keys records by function name, so it matters.
    environment = {"AWS_LAMBDA_FUNCTION_NAME": logical_id, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                   **stack.function_environment(logical_id)}
    module_name, function_name = handler_name.rsplit(".", 1)
    # The asset folder is the shared (cached) synth's: importing from it must leave it as synthesized.
    with mock.patch.dict(os.environ, environment), mock.patch.object(sys, "path", [str(asset), *sys.path]), \
            mock.patch.object(sys, "dont_write_bytecode", True):
        module = importlib.import_module(module_name)
    handler = getattr(module, function_name)
    return DeployedFunction(logical_id=logical_id, asset=asset, handler_name=handler_name,
                            environment=environment, handler=handler)


@dataclass
class PollResult:
    delivered: list[str]       # message ids handed to the function
    failed: list[str]          # reported back as batch item failures


@dataclass
class SqsEventSource:
    """An AWS::Lambda::EventSourceMapping from an SQS queue: poll, invoke, delete what succeeded."""

    stack: MotoStack
    queue_logical_id: str
    batch_size: int
    reports_batch_item_failures: bool
    function: DeployedFunction

    @property
    def queue_url(self) -> str:
        return self.stack.ref(self.queue_logical_id)

    def poll(self) -> PollResult:
        sqs = self.stack.client("sqs")
        received = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                                       MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
                                       WaitTimeSeconds=0).get("Messages", [])
        if not received:
            return PollResult(delivered=[], failed=[])
        queue_arn = self.stack.attribute(self.queue_logical_id, "Arn")
        try:
            response = self.function({"Records": [_record(message, queue_arn, self.stack.region)
                                                  for message in received]})
        except Exception:  # an invocation error returns the whole batch to the queue
            response = {"batchItemFailures": [{"itemIdentifier": message["MessageId"]} for message in received]}
        failed = [failure["itemIdentifier"] for failure in (response or {}).get("batchItemFailures", [])]
        for message in received:
            if message["MessageId"] in failed:
                # What Lambda leaves to happen: the visibility timeout runs out and the message returns.
                sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return PollResult(delivered=[message["MessageId"] for message in received], failed=failed)

    def drain(self, *, max_polls: int = 100) -> list[PollResult]:
        results: list[PollResult] = []
        for _ in range(max_polls):
            result = self.poll()
            if not result.delivered:
                return results
            results.append(result)
        raise AssertionError(f"{self.queue_logical_id} still had messages after {max_polls} polls")


def event_sources(stack: MotoStack, *, outdir: Path) -> dict[str, SqsEventSource]:
    """Every SQS event source mapping in the template, keyed by the consuming function's logical id."""
    sources = {}
    for mapping in stack.resources("AWS::Lambda::EventSourceMapping").values():
        properties = mapping["Properties"]
        queue_logical_id, _ = properties["EventSourceArn"]["Fn::GetAtt"]
        function_id = properties["FunctionName"]["Ref"]
        sources[function_id] = SqsEventSource(
            stack=stack, queue_logical_id=queue_logical_id, batch_size=int(properties.get("BatchSize", 10)),
            reports_batch_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
            function=load_function(stack, outdir=outdir, logical_id=function_id))
    return sources


def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
        "attributes": message.get("Attributes", {}), "md5OfBody": message["MD5OfBody"],
        "messageAttributes": {name: {"stringValue": value.get("StringValue"), "dataType": value["DataType"],
                                     "stringListValues": [], "binaryListValues": []}
                              for name, value in message.get("MessageAttributes", {}).items()},
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region,
    }
