"""Traces and correlated logs, as deployed: X-Ray active tracing on our functions with exactly the grants it needs,
and session events reaching every queue with their message attributes (the correlation id) intact."""

from __future__ import annotations

import json
from typing import Any

from .assembly import Assembly, ref
from .test_messaging import CDK_PROVIDER, CDK_PROVIDER_FRAMEWORK

XRAY_WRITE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def our_functions(assembly: Assembly) -> list[tuple[str, str, dict[str, Any]]]:
    """(part, logical id, function) of every function whose code is ours (services/), not CDK's providers."""
    return [(part, logical_id, function)
            for part, logical_id, function in assembly.all_resources("AWS::Lambda::Function")
            if not function["Metadata"]["aws:cdk:path"].endswith((CDK_PROVIDER, *CDK_PROVIDER_FRAMEWORK))]


def role_statements(assembly: Assembly, part: str, function: dict[str, Any]) -> list[dict[str, Any]]:
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [statement for policy in assembly.resources(part, "AWS::IAM::Policy").values()
            if ref(role) in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]]


def actions(statement: dict[str, Any]) -> set[str]:
    return set(statement["Action"]) if isinstance(statement["Action"], list) else {statement["Action"]}


def test_each_of_our_functions_traces_actively_and_may_only_write_traces_on_any_resource(assembly: Assembly) -> None:
    functions = our_functions(assembly)
    assert functions
    for part, logical_id, function in functions:
        assert function["Properties"].get("TracingConfig") == {"Mode": "Active"}, f"{part}/{logical_id}"
        statements = role_statements(assembly, part, function)
        xray = [statement for statement in statements if any(a.startswith("xray:") for a in actions(statement))]
        # X-Ray's write actions have no resource-level permissions ("*"); nothing else may use "*".
        assert [(actions(statement), statement["Resource"]) for statement in xray] == [(XRAY_WRITE, "*")], logical_id
        assert all(statement["Resource"] != "*" for statement in statements if statement not in xray), logical_id


def test_every_session_event_subscription_delivers_raw_so_the_correlation_id_arrives_as_a_queue_attribute(
        assembly: Assembly) -> None:
    """Only raw message delivery turns SNS message attributes into SQS message attributes (without it they are
    inside the JSON envelope in the body, where neither the consumers nor Lambda's filters look)."""
    queues = []
    for part, logical_id, subscription in assembly.all_resources("AWS::SNS::Subscription"):
        properties = subscription["Properties"]
        if properties["Protocol"] == "sqs":
            assert properties.get("RawMessageDelivery") is True, f"{part}/{logical_id}"
            queues.append(logical_id)
    assert len(queues) >= 3   # notifications, audit, chat sessions (and whatever a fork adds)


def test_every_queue_fed_function_holds_the_correlation_rule_it_imports(assembly: Assembly) -> None:
    for part, logical_id, mapping in assembly.all_resources("AWS::Lambda::EventSourceMapping"):
        function = assembly.templates[part]["Resources"][mapping["Properties"]["FunctionName"]["Ref"]]
        asset = assembly.outdir / function["Metadata"]["aws:asset:path"]
        assert (asset / "consumer.py").is_file(), f"{part}/{logical_id}"
        assert (asset / "selfnest_api" / "correlation.py").is_file(), f"{part}/{logical_id}"


def test_the_session_events_topic_passes_trace_headers_through(assembly: Assembly) -> None:
    """PassThrough (SNS's default) hands the API's trace header on to the queues; Active would also record SNS
    segments, which needs an X-Ray resource policy for sns.amazonaws.com and costs per sampled trace."""
    [topic] = [topic for _, _, topic in assembly.all_resources("AWS::SNS::Topic")
               if topic["Properties"]["TopicName"] == assembly.settings.name("session-events")]
    assert topic["Properties"].get("TracingConfig", "PassThrough") == "PassThrough", json.dumps(topic)
