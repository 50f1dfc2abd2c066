"""Labs that also grade the running local deployment (`make up`): what the template promises, observed.

`refarch lab NN` runs these checks when `.local/endpoints.json` names an emulator that answers, and says in one line
when nothing is up; `refarch lab NN --local` insists on them. Every name comes from what was deployed (event source
mappings, queue attributes, the functions' configuration, the user pool in endpoints.json), never from counts or
the config files, so a check grades what is running, which lags the code until the next `make up`. A check leaves
nothing behind: its probe users, messages and items are removed, and a paused event source mapping is resumed.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .grading import ROOT, Check, check

if TYPE_CHECKING:   # the local deployment's code loads only when a lab checks it
    from refarch.local.selfnest import Endpoints

STATE = ROOT / ".local"
REDEPLOY = "the running deployment is what `make up` deployed: after a change, `make down && make up` to grade it"


def running(state: Path = STATE) -> Endpoints | None:
    """The local deployment's endpoints when its emulator answers, else None."""
    from refarch.local.processes import LocalError
    from refarch.local.selfnest import Endpoints

    try:
        endpoints = Endpoints.load(state)
        with urllib.request.urlopen(f"{endpoints.emulator}/_ministack/health", timeout=3) as answer:  # noqa: S310
            healthy: bool = answer.status == 200
    except (LocalError, OSError, ValueError, TypeError):
        return None
    return endpoints if healthy else None


def _client(endpoints: Endpoints, service: str) -> Any:
    from refarch.local.selfnest import aws_client

    return aws_client(service, endpoint=endpoints.emulator, region=endpoints.region)


# -- lab 06: the backup bucket keeps what an overwrite or a delete would destroy (versioning) -------------------------
def backup_bucket(endpoints: Endpoints) -> list[Check]:
    """The backup bucket is the one whose deployed lifecycle configuration has a weekly/ rule, read from the
    deployed stacks' templates (the emulator stores the rules without applying them, so S3 is not asked for them)."""
    cloudformation, s3 = _client(endpoints, "cloudformation"), _client(endpoints, "s3")
    buckets = []
    for page in cloudformation.get_paginator("list_stacks").paginate(StackStatusFilter=["CREATE_COMPLETE",
                                                                                       "UPDATE_COMPLETE"]):
        for stack in page["StackSummaries"]:
            name = stack["StackName"]
            template = _json_template(cloudformation.get_template(StackName=name)["TemplateBody"])
            buckets += [cloudformation.describe_stack_resource(StackName=name, LogicalResourceId=logical_id)
                        ["StackResourceDetail"]["PhysicalResourceId"]
                        for logical_id, resource in template.get("Resources", {}).items()
                        if resource["Type"] == "AWS::S3::Bucket" and _has_weekly_rule(resource)]
    restorable = {name: _restorable(s3, name) for name in buckets}
    return [check("running deployment: an overwritten or deleted backup stays restorable (versioning)",
                  bool(restorable) and all(outcome == "restored" for outcome in restorable.values()),
                  "with versioning on, an overwrite keeps the old version and a delete only adds a delete marker, so "
                  "a backup that a mistake or ransomware touched can be read back by its version ID until the "
                  "noncurrent versions expire. " + REDEPLOY,
                  found="; ".join(f"{name}: {outcome}" for name, outcome in restorable.items())
                  or "no deployed bucket has a weekly/ lifecycle rule")]


def _json_template(body: Any) -> dict[str, Any]:
    """CDK deploys JSON templates; the CDK bootstrap stack's YAML (not ours) holds no backup bucket."""
    if isinstance(body, dict):
        return body
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _has_weekly_rule(bucket: dict[str, Any]) -> bool:
    rules = bucket.get("Properties", {}).get("LifecycleConfiguration", {}).get("Rules", [])
    return any((rule.get("Prefix") or rule.get("Filter", {}).get("Prefix")) == "weekly/" for rule in rules)


def _restorable(s3: Any, bucket: str) -> str:
    """Write a probe backup twice, delete it, read the first version back; then remove every version of it."""
    key = f"weekly/lab06-probe-{uuid.uuid4().hex[:8]}"
    first = s3.put_object(Bucket=bucket, Key=key, Body=b"first backup").get("VersionId")
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"second backup")
        s3.delete_object(Bucket=bucket, Key=key)
        if not first or first == "null":
            return "not versioned: the overwrite and the delete destroyed the first backup"
        body = s3.get_object(Bucket=bucket, Key=key, VersionId=first)["Body"].read()
        return "restored" if body == b"first backup" else f"version {first} reads {body[:40]!r}"
    finally:
        listed = s3.list_object_versions(Bucket=bucket, Prefix=key)
        for version in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])


# -- lab 05: a message that keeps failing reaches the DLQ after maxReceiveCount receives -----------------------------
def poison_messages(endpoints: Endpoints, *, wanted_receives: int) -> list[Check]:
    """For each queue an event source mapping consumes: pause the mapping, send a message, receive it without
    deleting it (as a consumer that keeps failing does) until it leaves the queue, and find it in the DLQ."""
    functions, sqs = _client(endpoints, "lambda"), _client(endpoints, "sqs")
    mappings = [mapping for page in functions.get_paginator("list_event_source_mappings").paginate()
                for mapping in page["EventSourceMappings"] if mapping["EventSourceArn"].startswith("arn:aws:sqs:")]
    seen: dict[str, str] = {}
    for mapping in mappings:
        queue_name = mapping["EventSourceArn"].rsplit(":", 1)[1]
        queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        redrive = json.loads(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
                             .get("Attributes", {}).get("RedrivePolicy", "{}"))
        if not redrive:
            seen[queue_name] = "no redrive policy: a poison message is retried until it expires"
            continue
        functions.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        try:
            seen[queue_name] = _receives_until_dead_lettered(sqs, queue_url, redrive["deadLetterTargetArn"])
        finally:
            functions.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    wanted = f"after {wanted_receives} receives"
    return [check(f"running deployment: a poison message reaches each consumer queue's DLQ after {wanted_receives} "
                  "receives", bool(seen) and all(outcome == wanted for outcome in seen.values()),
                  "the deployed redrive policy's maxReceiveCount counts receives: a message received that many times "
                  "without being deleted moves to the dead-letter queue on the next receive. " + REDEPLOY,
                  found="; ".join(f"{queue}: {outcome}" for queue, outcome in seen.items()) or "no consumer queues")]


def _receives_until_dead_lettered(sqs: Any, queue_url: str, dead_letter_arn: str, *, limit: int = 50) -> str:
    marker = f"lab05-poison-{uuid.uuid4().hex[:8]}"
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"probe": marker}))
    receives = 0
    while receives < limit:
        # VisibilityTimeout 0: the failed "consumer" gives the message back at once, not after the queue's timeout.
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                  WaitTimeSeconds=0).get("Messages", [])
        if not any(marker in message["Body"] for message in got):
            break
        receives += 1
    dead_letters = sqs.get_queue_url(QueueName=dead_letter_arn.rsplit(":", 1)[1])["QueueUrl"]
    arrived = _take(sqs, dead_letters, marker)
    if receives >= limit:
        _take(sqs, queue_url, marker)
        return f"still in the queue after {limit} receives"
    return f"after {receives} receives" if arrived else f"gone after {receives} receives, but not in the DLQ"


def _take(sqs: Any, queue_url: str, marker: str, *, seconds: float = 5) -> bool:
    """Find the probe in the queue and delete it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=5,
                                           WaitTimeSeconds=1).get("Messages", []):
            if marker in message["Body"]:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                return True
    return False


# -- lab 13: the connections table answers "this user's connections" with one Query ----------------------------------
def connections_by_user(endpoints: Endpoints) -> list[Check]:
    functions, dynamodb = _client(endpoints, "lambda"), _client(endpoints, "dynamodb")
    tables = {function["Environment"]["Variables"]["CONNECTIONS_TABLE"]
              for page in functions.get_paginator("list_functions").paginate() for function in page["Functions"]
              if "CONNECTIONS_TABLE" in function.get("Environment", {}).get("Variables", {})}
    found, answered = [], []
    for table in sorted(tables):
        indexes = dynamodb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])
        by_user = [index["IndexName"] for index in indexes
                   if any(key["KeyType"] == "HASH" and key["AttributeName"] == "user_id" for key in index["KeySchema"])]
        found.append(f"{table}: indexes {[index['IndexName'] for index in indexes]}")
        if by_user:
            answered.append(_query_by_user(dynamodb, table, by_user[0]))
    return [check("running deployment: the connections table finds a user's connections with one Query by user_id",
                  bool(tables) and len(answered) == len(tables) and all(answered),
                  "a Query needs the partition key of the table or of an index: without a GSI keyed by user_id the "
                  "only way is a Scan of every connection. " + REDEPLOY,
                  found="; ".join(found) or "no function names a CONNECTIONS_TABLE")]


def _query_by_user(dynamodb: Any, table: str, index: str) -> bool:
    probe = uuid.uuid4().hex[:8]
    item = {"connection_id": {"S": f"lab13-probe-{probe}"}, "user_id": {"S": f"lab13-user-{probe}"},
            "session_id": {"S": f"lab13-session-{probe}"}, "expires_at": {"N": str(int(time.time()) + 600)}}
    dynamodb.put_item(TableName=table, Item=item)
    try:
        found = dynamodb.query(TableName=table, IndexName=index, KeyConditionExpression="user_id = :user",
                               ExpressionAttributeValues={":user": item["user_id"]})["Items"]
        return [row["connection_id"] for row in found] == [item["connection_id"]]
    finally:
        dynamodb.delete_item(TableName=table, Key={"connection_id": item["connection_id"]})


LIVE: dict[str, Callable[[Endpoints], list[Check]]] = {
    "05": lambda endpoints: poison_messages(endpoints, wanted_receives=_max_receives()),
    "06": backup_bucket,
    "13": connections_by_user,
}


def _max_receives() -> int:
    from .lab05_fanout import MAX_RECEIVES

    return MAX_RECEIVES


def grade_live(number: str, state: Path = STATE) -> list[Check] | None:
    """The lab's checks on the running deployment; None when nothing is up (the caller says so in one line)."""
    from botocore.exceptions import BotoCoreError, ClientError

    endpoints = running(state)
    if endpoints is None:
        return None
    try:
        return LIVE[number](endpoints)
    except (BotoCoreError, ClientError) as error:
        return [check("running deployment: it answers the checks' calls", False,
                      "the check needs the stacks `make up` deploys; " + REDEPLOY,
                      found=str(error).splitlines()[0])]
