"""Synth assertions on session events: encryption, TLS-only policies, redrive, timeouts and least privilege."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from refarch.constructs.aws.backup import BACKUP_TAG_KEY, BACKUP_TAG_VALUE
from refarch.stacks.selfnest.config import SQS_VISIBILITY_PER_CONSUMER_TIMEOUT

from .assembly import Assembly, Resource, get_att, ref


def resources(assembly: Assembly, resource_type: str) -> dict[str, Resource]:
    return assembly.resources("messaging", resource_type)


def consumer_queues(assembly: Assembly) -> dict[str, dict[str, Any]]:
    """Queues that feed a function (not dead-letter queues), by logical id."""
    fed = {mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
           for mapping in resources(assembly, "AWS::Lambda::EventSourceMapping").values()}
    return {logical_id: queue["Properties"] for logical_id, queue in resources(assembly, "AWS::SQS::Queue").items()
            if logical_id in fed}


def denies_insecure_transport(statement: dict[str, Any]) -> bool:
    return bool(statement["Effect"] == "Deny"
                and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}})


def test_every_topic_and_queue_uses_a_customer_managed_key(assembly: Assembly) -> None:
    def key_of(resource: Resource) -> Resource:
        return assembly.key_for("messaging", resource["Properties"]["KmsMasterKeyId"])

    for topic in resources(assembly, "AWS::SNS::Topic").values():
        assert key_of(topic)["Properties"]["EnableKeyRotation"] is True
    queues = resources(assembly, "AWS::SQS::Queue")
    assert len(queues) == 4
    for queue in queues.values():
        assert key_of(queue)["Properties"]["EnableKeyRotation"] is True


def test_topics_and_queues_refuse_requests_without_tls(assembly: Assembly) -> None:
    protected: set[str] = set()
    for policy in resources(assembly, "AWS::SNS::TopicPolicy").values():
        if any(denies_insecure_transport(s) for s in policy["Properties"]["PolicyDocument"]["Statement"]):
            protected.update(topic["Ref"] for topic in policy["Properties"]["Topics"])
    for policy in resources(assembly, "AWS::SQS::QueuePolicy").values():
        if any(denies_insecure_transport(s) for s in policy["Properties"]["PolicyDocument"]["Statement"]):
            protected.update(queue["Ref"] for queue in policy["Properties"]["Queues"])
    assert protected == set(resources(assembly, "AWS::SNS::Topic")) | set(resources(assembly, "AWS::SQS::Queue"))


def test_each_consumer_queue_redrives_to_its_own_dead_letter_queue(assembly: Assembly) -> None:
    messaging = assembly.settings.messaging
    queues = resources(assembly, "AWS::SQS::Queue")
    targets = []
    for properties in consumer_queues(assembly).values():
        redrive = properties["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == messaging.max_receive_count
        dead_letter_id = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert queues[dead_letter_id]["Properties"]["MessageRetentionPeriod"] == \
            messaging.dead_letter_retention_days * 86400
        targets.append(dead_letter_id)
    assert len(targets) == 2 and len(set(targets)) == 2


def test_visibility_timeout_is_at_least_six_times_the_consumer_timeout(assembly: Assembly) -> None:
    functions = resources(assembly, "AWS::Lambda::Function")
    for mapping in resources(assembly, "AWS::Lambda::EventSourceMapping").values():
        queue = resources(assembly, "AWS::SQS::Queue")[mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]]
        function = functions[mapping["Properties"]["FunctionName"]["Ref"]]
        timeout = function["Properties"]["Timeout"]
        assert timeout == assembly.settings.messaging.consumer_timeout_seconds
        assert queue["Properties"]["VisibilityTimeout"] >= SQS_VISIBILITY_PER_CONSUMER_TIMEOUT * timeout


def test_consumers_report_partial_batch_failures(assembly: Assembly) -> None:
    mappings = resources(assembly, "AWS::Lambda::EventSourceMapping").values()
    assert len(mappings) == 2
    for mapping in mappings:
        assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["Properties"]["BatchSize"] == assembly.settings.messaging.batch_size
        assert mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"] >= 2


def test_subscriptions_deliver_raw_messages_filtered_by_event_type(assembly: Assembly) -> None:
    [(topic_id, _)] = [(k, t) for k, t in resources(assembly, "AWS::SNS::Topic").items()
                       if t["Properties"]["TopicName"] == assembly.settings.name("session-events")]
    handler_of_queue = {
        mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]:
            resources(assembly, "AWS::Lambda::Function")[mapping["Properties"]["FunctionName"]["Ref"]]["Properties"][
                "Handler"]
        for mapping in resources(assembly, "AWS::Lambda::EventSourceMapping").values()}
    filters = {}
    for subscription in resources(assembly, "AWS::SNS::Subscription").values():
        properties = subscription["Properties"]
        if properties["Protocol"] != "sqs":
            continue   # the alarm topic's email subscriber
        assert properties["TopicArn"] == ref(topic_id) and properties["RawMessageDelivery"] is True
        filters[handler_of_queue[properties["Endpoint"]["Fn::GetAtt"][0]]] = properties["FilterPolicy"]
    assert filters == {"notifications.handler": {"event_type": ["session.booked", "session.cancelled"]},
                       "audit.handler": {"event_type": [{"prefix": "session."}]}}


def test_a_message_in_any_dead_letter_queue_raises_an_alarm_to_the_alarm_topic(assembly: Assembly) -> None:
    [(alarms_topic, _)] = [(k, t) for k, t in resources(assembly, "AWS::SNS::Topic").items()
                           if t["Properties"]["TopicName"] == assembly.settings.name("alarms")]
    dead_letters = {p["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
                    for p in consumer_queues(assembly).values()}
    watched = set()
    for alarm in resources(assembly, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        assert properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert properties["Threshold"] == 1 and properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert properties["AlarmActions"] == [ref(alarms_topic)]
        [dimension] = properties["Dimensions"]
        watched.add(dimension["Value"]["Fn::GetAtt"][0])
    assert watched == dead_letters


def test_consumer_tables_are_encrypted_recoverable_and_expire_what_should(assembly: Assembly) -> None:
    tables = {t["Properties"]["TableName"]: t for t in resources(assembly, "AWS::DynamoDB::Table").values()}
    name = assembly.settings.name
    assert set(tables) == {name("event-idempotency"), name("inbox"), name("audit")}
    for table in tables.values():
        properties = table["Properties"]
        assert properties["SSESpecification"]["SSEEnabled"] is True
        assert properties["SSESpecification"]["SSEType"] == "KMS" and "KMSMasterKeyId" in properties[
            "SSESpecification"]
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        # On demand unless config provisions the table (lab 07); provisioned tables carry their configured units.
        provisioned = {name(table): capacity for table, capacity in
                       assembly.settings.messaging.provisioned_tables.items()}.get(properties["TableName"])
        if provisioned is None:
            assert properties["BillingMode"] == "PAY_PER_REQUEST"
        else:
            assert "BillingMode" not in properties   # CloudFormation's default is PROVISIONED
            assert properties["ProvisionedThroughput"] == {"ReadCapacityUnits": provisioned.read_units,
                                                           "WriteCapacityUnits": provisioned.write_units}
        assert table["DeletionPolicy"] == ("Retain" if assembly.settings.retain_data else "Delete")
    assert tables[name("inbox")]["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at",
                                                                            "Enabled": True}
    assert tables[name("event-idempotency")]["Properties"]["TimeToLiveSpecification"]["AttributeName"] == \
        "expiration"
    assert "TimeToLiveSpecification" not in tables[name("audit")]["Properties"]    # the trail is never expired


def test_consumers_may_write_only_their_own_tables_and_read_only_their_own_queue(assembly: Assembly) -> None:
    functions = resources(assembly, "AWS::Lambda::Function")
    tables = {t["Properties"]["TableName"]: k for k, t in resources(assembly, "AWS::DynamoDB::Table").items()}
    name = assembly.settings.name
    own_table = {"notifications.handler": tables[name("inbox")], "audit.handler": tables[name("audit")]}
    for mapping in resources(assembly, "AWS::Lambda::EventSourceMapping").values():
        function = functions[mapping["Properties"]["FunctionName"]["Ref"]]
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        statements = [s for policy in resources(assembly, "AWS::IAM::Policy").values()
                      if ref(role) in policy["Properties"]["Roles"]
                      for s in policy["Properties"]["PolicyDocument"]["Statement"]]
        dynamodb = [s for s in statements if "dynamodb:" in json.dumps(s["Action"])]
        written = {s["Resource"]["Fn::GetAtt"][0] for s in dynamodb}
        assert written == {own_table[function["Properties"]["Handler"]], tables[name("event-idempotency")]}
        sqs = [s for s in statements if "sqs:" in json.dumps(s["Action"])]
        assert [s["Resource"] for s in sqs] == [get_att(mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0],
                                                        "Arn")]
        for statement in statements:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any(action == "*" or action.endswith(":*") for action in actions), statement
            if statement["Resource"] == "*":
                assert all(action.startswith("xray:") for action in actions), statement


# Code CDK ships, not ours: its singleton providers (S3 auto-delete, restrict the default security group) and the
# custom-resource Provider framework's own functions (onEvent, isComplete, onTimeout), which call our handlers.
CDK_PROVIDER = "CustomResourceProvider/Handler"
CDK_PROVIDER_FRAMEWORK = ("/framework-onEvent/Resource", "/framework-isComplete/Resource",
                          "/framework-onTimeout/Resource")


def test_every_function_asset_holds_its_handler_and_its_pinned_dependencies(assembly: Assembly) -> None:
    checked = set()
    for part in assembly.templates:
        for logical_id, function in assembly.resources(part, "AWS::Lambda::Function").items():
            path = function["Metadata"]["aws:cdk:path"]
            if path.endswith((CDK_PROVIDER, *CDK_PROVIDER_FRAMEWORK)):
                continue
            checked.add(part)
            assert "aws:asset:path" in function["Metadata"], f"{path}: no bundled asset"
            asset = assembly.outdir / function["Metadata"]["aws:asset:path"]
            module = function["Properties"]["Handler"].rsplit(".", 1)[0]
            assert (asset / f"{module}.py").is_file(), f"{part}/{logical_id}: {module}.py missing"
            assert not list(asset.rglob("__pycache__")), f"{part}/{logical_id}: bytecode from this machine"
            for line in (asset / "requirements.txt").read_text(encoding="utf-8").splitlines():
                requirement = line.split("#")[0].strip()
                if requirement:
                    package, version = requirement.split("==")
                    package = package.split("[")[0].lower()      # pyjwt[crypto] installs as pyjwt
                    installed = Path(asset) / f"{package.replace('-', '_')}-{version}.dist-info"
                    assert installed.is_dir(), f"{part}/{logical_id}: {requirement} not bundled"
            assert function["Properties"]["Architectures"] == ["arm64"]
    assert {"identity", "messaging", "chat"} <= checked   # the stacks whose handlers we write


def test_inbox_and_audit_trail_are_selected_for_the_backup_plan(assembly: Assembly) -> None:
    tagged = {t["Properties"]["TableName"] for t in resources(assembly, "AWS::DynamoDB::Table").values()
              if {"Key": BACKUP_TAG_KEY, "Value": BACKUP_TAG_VALUE} in t["Properties"].get("Tags", [])}
    name = assembly.settings.name
    assert tagged == {name("inbox"), name("audit")}     # idempotency records are disposable by design


def alarm_topic(assembly: Assembly) -> str:
    [logical_id] = [k for k, t in resources(assembly, "AWS::SNS::Topic").items()
                    if t["Properties"]["TopicName"] == assembly.settings.name("alarms")]
    return logical_id


def this_account(assembly: Assembly, part: str) -> Any:
    """The account a stack's statements name: the pseudo parameter, or the literal id of an account-bound synth."""
    account = assembly.accounts[part]
    return {"Ref": "AWS::AccountId"} if account == "unknown-account" else account


def allows_cloudwatch_alarms(statement: dict[str, Any], action: str, account: Any) -> bool:
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    condition = statement.get("Condition", {})
    return bool(statement["Effect"] == "Allow"
                and statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
                and any(a == action or (a.endswith("*") and action.startswith(a[:-1])) for a in actions)
                and ":alarm:*" in json.dumps(condition.get("ArnLike", {}).get("aws:SourceArn"))
                and condition.get("StringEquals", {}).get("aws:SourceAccount") == account)


def test_cloudwatch_alarms_may_publish_to_the_alarm_topic_and_use_its_key(assembly: Assembly) -> None:
    """The topic policy `enforce_ssl` writes replaces SNS's default policy: without an explicit Allow, CloudWatch's
    publish is refused; without the key grant, an encrypted topic drops alarm notifications silently."""
    topic_id = alarm_topic(assembly)
    [policy] = [p for p in resources(assembly, "AWS::SNS::TopicPolicy").values()
                if p["Properties"]["Topics"] == [ref(topic_id)]]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    account = this_account(assembly, "messaging")
    assert [s for s in statements
            if allows_cloudwatch_alarms(s, "sns:Publish", account) and s["Resource"] == ref(topic_id)]
    assert any(denies_insecure_transport(s) for s in statements)   # still TLS-only
    key = assembly.key_for("messaging", resources(assembly, "AWS::SNS::Topic")[topic_id]["Properties"][
        "KmsMasterKeyId"])
    key_statements = key["Properties"]["KeyPolicy"]["Statement"]
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert [s for s in key_statements if allows_cloudwatch_alarms(s, action, account)], action


def test_only_the_alarm_topic_accepts_cloudwatch(assembly: Assembly) -> None:
    others = {k for k in resources(assembly, "AWS::SNS::Topic") if k != alarm_topic(assembly)}
    for policy in resources(assembly, "AWS::SNS::TopicPolicy").values():
        if {t["Ref"] for t in policy["Properties"]["Topics"]} & others:
            assert not [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
                        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]


def test_alarms_are_emailed_to_the_configured_address(assembly: Assembly) -> None:
    subscriptions = [s["Properties"] for s in resources(assembly, "AWS::SNS::Subscription").values()
                     if s["Properties"]["TopicArn"] == ref(alarm_topic(assembly))]
    assert subscriptions == [{"Protocol": "email", "TopicArn": ref(alarm_topic(assembly)),
                              "Endpoint": assembly.settings.operations.alarm_email}]
