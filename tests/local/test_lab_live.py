"""Labs 05, 06 and 13 also grade the running local deployment: against one real `make up` (shared by this module),
each live check reports what the deployment does, passes once the deployment does what the lab asks (the lab's
change applied to the running resources, as a redeploy would), and leaves nothing behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from refarch.labs import live
from refarch.labs.lab05_fanout import MAX_RECEIVES
from refarch.local.selfnest import ROOT, Endpoints, aws_client
from refarch.stacks.selfnest.config import load_settings
from refarch.tools import cli

from tests.entry_points import run_main


def local(*arguments: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refarch.local", *arguments, "--state", str(state)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, check=False)


def refarch_lab(*arguments: str) -> subprocess.CompletedProcess[str]:
    """`refarch lab ARGS` in this process (tests/entry_points.py); tests/labs starts it as a process (`make lab`)."""
    return run_main(cli.main, ["lab", *arguments])


@pytest.fixture(scope="module")
def state() -> Iterator[Path]:
    # Not pytest's tmp_path: its parent is private to the user, and as root PostgreSQL runs as another account.
    parent = Path(tempfile.mkdtemp(prefix="refarch-lab-live-"))
    parent.chmod(0o755)
    try:
        started = local("up", state=parent / ".local")
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        yield parent / ".local"
    finally:
        local("down", state=parent / ".local")
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def endpoints(state: Path) -> Endpoints:
    found = live.running(state)
    assert found is not None
    return found


def client(endpoints: Endpoints, service: str) -> Any:
    return aws_client(service, endpoint=endpoints.emulator, region=endpoints.region)


def test_without_a_deployment_the_lab_says_so_in_one_line(tmp_path: Path) -> None:
    assert live.running(tmp_path) is None
    graded = refarch_lab("06", "--state", str(tmp_path))
    assert graded.stdout.splitlines()[-1] == ("(no local deployment is running, so its behaviour was not checked: "
                                              "`make up`, then `refarch lab 06 --local`)")
    insisted = refarch_lab("06", "--local", "--state", str(tmp_path))
    assert insisted.returncode == 2 and insisted.stderr.count("\n") == 1 and "make up" in insisted.stderr
    no_live_checks = refarch_lab("03", "--local")
    assert no_live_checks.returncode == 2 and "lab 03 has no checks on a running deployment" in no_live_checks.stderr


def test_lab06_an_overwritten_or_deleted_backup_stays_restorable(endpoints: Endpoints) -> None:
    [versioned] = live.backup_bucket(endpoints)
    assert versioned.passed, versioned.found
    [bucket] = [part.split(":", 1)[0] for part in versioned.found.split("; ")]
    s3 = client(endpoints, "s3")
    assert s3.list_object_versions(Bucket=bucket, Prefix="weekly/lab06-probe-").get("Versions", []) == []
    # Without versioning the same probe loses the first backup, and the check says so.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    try:
        [suspended] = live.backup_bucket(endpoints)
    finally:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert not suspended.passed and "not versioned" in suspended.found, suspended.found


def consumer_queues(endpoints: Endpoints) -> dict[str, tuple[str, str]]:
    """Queue URL -> (its redrive policy, its mapping's state), for every queue a mapping consumes."""
    functions, sqs = client(endpoints, "lambda"), client(endpoints, "sqs")
    found = {}
    for mapping in functions.list_event_source_mappings()["EventSourceMappings"]:
        if mapping["EventSourceArn"].startswith("arn:aws:sqs:"):
            url = sqs.get_queue_url(QueueName=mapping["EventSourceArn"].rsplit(":", 1)[1])["QueueUrl"]
            policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
            found[url] = (policy["RedrivePolicy"], mapping["State"])
    return found


def test_lab05_a_poison_message_reaches_the_dlq_after_the_deployed_max_receive_count(endpoints: Endpoints) -> None:
    deployed = load_settings(endpoints.environment).messaging.max_receive_count
    before = consumer_queues(endpoints)
    assert before and deployed != MAX_RECEIVES   # the untouched deployment: the lab is not done
    [untouched] = live.poison_messages(endpoints, wanted_receives=MAX_RECEIVES)
    assert not untouched.passed
    assert untouched.found.count(f"after {deployed} receives") == len(before), untouched.found
    assert consumer_queues(endpoints) == before   # mappings resumed

    # The lab's change, as a redeploy would apply it: maxReceiveCount 3 on every consumer queue.
    sqs = client(endpoints, "sqs")
    try:
        for url, (policy, _) in before.items():
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(
                {**json.loads(policy), "maxReceiveCount": MAX_RECEIVES})})
        [solved] = live.poison_messages(endpoints, wanted_receives=MAX_RECEIVES)
        assert solved.passed, solved.found
    finally:
        for url, (policy, _) in before.items():
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": policy})
    for policy, _ in before.values():
        dead_letters = sqs.get_queue_url(QueueName=json.loads(policy)["deadLetterTargetArn"].rsplit(":", 1)[1])
        attributes = sqs.get_queue_attributes(QueueUrl=dead_letters["QueueUrl"],
                                              AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0"   # the probes were taken out again


def test_lab13_the_connections_table_answers_a_query_by_user_once_it_has_the_index(endpoints: Endpoints) -> None:
    [untouched] = live.connections_by_user(endpoints)
    assert not untouched.passed and "by-session" in untouched.found
    table = untouched.found.split(":", 1)[0]
    dynamodb = client(endpoints, "dynamodb")
    # The lab's change, as a redeploy would apply it: a GSI keyed by user_id (any name, keys only).
    dynamodb.update_table(TableName=table, AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
                          GlobalSecondaryIndexUpdates=[{"Create": {
                              "IndexName": "connections-of-user", "Projection": {"ProjectionType": "KEYS_ONLY"},
                              "KeySchema": [{"AttributeName": "user_id", "KeyType": "HASH"}]}}])
    try:
        [solved] = live.connections_by_user(endpoints)
        assert solved.passed, solved.found
        assert dynamodb.scan(TableName=table, Select="COUNT")["Count"] == 0   # the probe item was removed
    finally:
        dynamodb.update_table(TableName=table, GlobalSecondaryIndexUpdates=[{"Delete": {
            "IndexName": "connections-of-user"}}])


def test_refarch_lab_local_grades_the_template_and_the_running_deployment(state: Path) -> None:
    graded = refarch_lab("05", "--local", "--json", "--state", str(state))
    names = [check["name"] for check in json.loads(graded.stdout)]
    assert any(name.startswith("running deployment: a poison message") for name in names)
    assert "a message moves to its DLQ after 3 receives" in names
    report = refarch_lab("06", "--state", str(state))
    assert "Lab 06: S3 versioning, lifecycle and GFS retention with minimum durations — on the running local " \
           "deployment" in report.stdout
    assert "  PASS  running deployment: an overwritten or deleted backup stays restorable (versioning)" in report.stdout
    assert report.returncode == 1   # the untouched lab 06 still fails its template checks
