"""What every session-event consumer shares: partial batch responses, once-only processing per event, and the
booking request's correlation id on every log line written for a record."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from selfnest_api import correlation
from session_events import SessionEvent

# Long enough to cover SNS/SQS redelivery and a DLQ redrive after a fix (the DLQ keeps messages 14 days at most).
IDEMPOTENCY_DAYS = 15

Handler = Callable[[dict[str, Any], LambdaContext], PartialItemFailureResponse]


def session_event_consumer(apply: Callable[[SessionEvent], None], *, logger: Logger) -> Handler:
    """A Lambda handler that applies `apply` once per event_id to each SQS record, reporting failures per record."""
    # A batch whose every record failed is still a partial response, not an invocation error: the failures go
    # back to the queue either way, and the dead-letter alarm (not function errors) is the signal.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    config = IdempotencyConfig(event_key_jmespath="event_id", expires_after_seconds=IDEMPOTENCY_DAYS * 86400)
    persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])

    @idempotent_function(data_keyword_argument="event", persistence_store=persistence,  # type: ignore[untyped-decorator]
                         config=config)
    def apply_once(*, event: dict[str, Any]) -> dict[str, str]:
        apply(SessionEvent.from_document(event))
        return {"applied": event["event_id"]}

    def handle_record(record: SQSRecord) -> None:
        # First, so that even a malformed record's failure is logged under the request that sent it.
        logger.set_correlation_id(correlation_id_of(record))
        logger.remove_keys(["event_id", "event_type", "session_id"])   # the batch's previous record's
        logger.append_keys(message_id=record.message_id)
        try:
            event = SessionEvent.from_body(record.body)   # malformed: raises, so this record alone is retried
            logger.append_keys(event_id=event.event_id, event_type=event.type, session_id=event.session_id)
            apply_once(event=event.document())
        except Exception as error:
            # The class only: a message's text can quote the record's values. The record goes back to its queue.
            logger.warning("session event not applied; it returns to the queue", extra={"error": type(error).__name__})
            raise

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        config.register_lambda_context(context)
        return process_partial_response(event=event, record_handler=handle_record, processor=processor,
                                        context=context)

    return handler


def correlation_id_of(record: SQSRecord) -> str | None:
    """The booking request's correlation id, from the SQS message attribute SNS delivered (raw message delivery);
    None when it is missing or malformed — a value that is not a well-formed id never reaches the logs."""
    attribute = (record.raw_event.get("messageAttributes") or {}).get(correlation.MESSAGE_ATTRIBUTE) or {}
    candidate = attribute.get("stringValue") if isinstance(attribute, dict) else None
    return candidate if isinstance(candidate, str) and correlation.is_well_formed(candidate) else None


def put_once(table: Any, item: dict[str, Any], *, key: tuple[str, str]) -> bool:
    """Write `item` unless an item with its key exists (a replay after the idempotency record expired)."""
    partition, sort = key
    try:
        table.put_item(Item=item, ConditionExpression="attribute_not_exists(#pk) AND attribute_not_exists(#sk)",
                       ExpressionAttributeNames={"#pk": partition, "#sk": sort})
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def table(environment_variable: str) -> Any:
    return boto3.resource("dynamodb").Table(os.environ[environment_variable])
