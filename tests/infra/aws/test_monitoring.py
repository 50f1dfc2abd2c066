"""Monitoring: every widget and alarm measures a resource that exists in the templates, everything that runs is
covered, every alarm notifies someone, and the budget follows config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .assembly import Assembly, Resource

# Which resource (type, attribute: "Ref" or a GetAtt name) each metric dimension names. A fact about CloudWatch.
DIMENSIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("AWS/ApplicationELB", "LoadBalancer"): ("AWS::ElasticLoadBalancingV2::LoadBalancer", "LoadBalancerFullName"),
    ("AWS/ApplicationELB", "TargetGroup"): ("AWS::ElasticLoadBalancingV2::TargetGroup", "TargetGroupFullName"),
    ("AWS/ECS", "ClusterName"): ("AWS::ECS::Cluster", "Ref"),
    ("AWS/ECS", "ServiceName"): ("AWS::ECS::Service", "Name"),
    ("ECS/ContainerInsights", "ClusterName"): ("AWS::ECS::Cluster", "Ref"),
    ("ECS/ContainerInsights", "ServiceName"): ("AWS::ECS::Service", "Name"),
    ("AWS/RDS", "DBInstanceIdentifier"): ("AWS::RDS::DBInstance", "Ref"),
    ("AWS/SQS", "QueueName"): ("AWS::SQS::Queue", "QueueName"),
    ("AWS/Lambda", "FunctionName"): ("AWS::Lambda::Function", "Ref"),
    ("AWS/ApiGateway", "ApiId"): ("AWS::ApiGatewayV2::Api", "Ref"),
    ("AWS/ApiGateway", "Stage"): ("AWS::ApiGatewayV2::Stage", "StageName"),   # a literal: the stage's own name
}
Target = tuple[str, str]   # (template part, logical id)


def producer(assembly: Assembly, value: Any, consumer: str) -> tuple[str, Any]:
    """(template part, expression) that a value comes from: another stack's output, or the consumer itself."""
    if isinstance(value, dict) and "Fn::GetStackOutput" in value:
        wanted = value["Fn::GetStackOutput"]["StackName"]
        [part] = [part for part in assembly.templates if assembly.settings.name(part) == wanted]
        return part, assembly.resolve(value)
    return consumer, value


def resolve_dimension(assembly: Assembly, namespace: str, name: str, value: Any,
                      consumer: str = "monitoring") -> Target:
    """The resource a metric dimension names, or an AssertionError saying why it names none."""
    assert (namespace, name) in DIMENSIONS, f"unexpected dimension {namespace} {name}"
    resource_type, attribute = DIMENSIONS[(namespace, name)]
    source, value = producer(assembly, value, consumer)
    if (namespace, name) == ("AWS/Lambda", "FunctionName") and isinstance(value, str):
        # Secret rotation: a Serverless Application Repository stack's function, named by its parameter.
        return next((part, logical_id) for part, logical_id, application
                    in assembly.all_resources("AWS::Serverless::Application")
                    if application["Properties"]["Parameters"].get("functionName") == value)
    candidates = [(part, logical_id, resource) for part, logical_id, resource in assembly.all_resources(resource_type)
                  if isinstance(value, str) or part == source]
    if isinstance(value, str):   # a literal must equal the named property of exactly one resource
        found = [(part, logical_id) for part, logical_id, resource in candidates
                 if resource["Properties"].get(attribute) == value]
    elif attribute == "Ref":
        found = [(part, logical_id) for part, logical_id, _ in candidates if value == {"Ref": logical_id}]
    else:
        found = [(part, logical_id) for part, logical_id, _ in candidates
                 if value == {"Fn::GetAtt": [logical_id, attribute]}]
    assert len(found) == 1, f"{namespace} {name}={value} names {len(found)} {resource_type} resources"
    return found[0]


def alarm_metrics(properties: dict[str, Any]) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """(namespace, metric name, dimensions) of every metric an alarm evaluates, plain or inside math."""
    if "MetricName" in properties:
        yield properties["Namespace"], properties["MetricName"], properties.get("Dimensions", [])
    for query in properties.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            yield metric["Namespace"], metric["MetricName"], metric.get("Dimensions", [])


def dashboard_widgets(assembly: Assembly) -> list[dict[str, Any]]:
    """The dashboard body as JSON, each token replaced by what it resolves to in its producing template."""
    [(_, dashboard)] = assembly.resources("monitoring", "AWS::CloudWatch::Dashboard").items()
    body = dashboard["Properties"]["DashboardBody"]
    tokens: dict[str, Any] = {}
    text = ""
    for part in body["Fn::Join"][1]:
        if isinstance(part, str):
            text += part
        else:
            placeholder = f"@token{len(tokens)}@"
            tokens[placeholder] = part
            text += placeholder
    widgets: list[dict[str, Any]] = json.loads(text)["widgets"]

    def restore(value: Any) -> Any:
        if isinstance(value, str) and value in tokens:
            return tokens[value]
        assert not (isinstance(value, str) and "@token" in value), f"a dimension built from pieces: {value}"
        if isinstance(value, list):
            return [restore(item) for item in value]
        if isinstance(value, dict):
            return {key: restore(item) for key, item in value.items()}
        return value

    return [restore(widget) for widget in widgets]


def alarms(assembly: Assembly) -> dict[str, Resource]:
    return assembly.resources("monitoring", "AWS::CloudWatch::Alarm")


def watched_targets(assembly: Assembly) -> set[Target]:
    found: set[Target] = set()
    for part in assembly.templates:
        for alarm in assembly.resources(part, "AWS::CloudWatch::Alarm").values():
            for namespace, _, dimensions in alarm_metrics(alarm["Properties"]):
                found.update(resolve_dimension(assembly, namespace, d["Name"], d["Value"], part) for d in dimensions)
    return found


def test_every_dashboard_metric_names_a_resource_in_the_templates(assembly: Assembly) -> None:
    if not assembly.settings.operations.dashboard:   # config leaves it out (its monthly price)
        assert assembly.resources("monitoring", "AWS::CloudWatch::Dashboard") == {}
        return
    metric_count = 0
    for widget in dashboard_widgets(assembly):
        for metric in widget["properties"].get("metrics", []):
            namespace, _name, *rest = metric
            dimensions = [item for item in rest if not isinstance(item, dict) or not {
                "Fn::GetStackOutput", "Ref", "Fn::GetAtt"}.isdisjoint(item)]
            assert len(dimensions) % 2 == 0, metric
            for name, value in zip(dimensions[::2], dimensions[1::2], strict=True):
                resolve_dimension(assembly, namespace, name, value)
            metric_count += 1
    assert metric_count > 0


def test_every_alarm_metric_names_a_resource_in_the_templates(assembly: Assembly) -> None:
    for alarm in alarms(assembly).values():
        for namespace, _, dimensions in alarm_metrics(alarm["Properties"]):
            assert dimensions, alarm["Properties"]["AlarmDescription"]
            for dimension in dimensions:
                resolve_dimension(assembly, namespace, dimension["Name"], dimension["Value"])


def ours(function: Resource) -> bool:
    """Functions we wrote, not CDK's singleton helpers (custom-resource providers)."""
    return "Custom::" not in function.get("Metadata", {}).get("aws:cdk:path", "")


def test_every_function_queue_load_balancer_database_and_chat_stage_is_alarmed(assembly: Assembly) -> None:
    """With `operations.alarms: paging` only what users feel (load balancer, database, chat stage) and lost events
    (dead-letter queues) are alarmed; otherwise every function and queue too."""
    primary = {part for part, region in assembly.regions.items() if region == assembly.settings.region}
    everything = assembly.settings.operations.alarms == "all"
    expected: set[Target] = set()
    for resource_type in ("AWS::SQS::Queue", "AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::RDS::DBInstance",
                          "AWS::ApiGatewayV2::Stage", "AWS::Serverless::Application"):
        for part, logical_id, resource in assembly.all_resources(resource_type):
            informational = resource_type == "AWS::Serverless::Application" or (
                resource_type == "AWS::SQS::Queue" and not dead_letter_queue(resource))
            if part in primary and (everything or not informational):
                expected.add((part, logical_id))
    if everything:
        expected.update((part, logical_id) for part, logical_id, function
                        in assembly.all_resources("AWS::Lambda::Function") if part in primary and ours(function))
    assert expected - watched_targets(assembly) == set()


def dead_letter_queue(queue: Resource) -> bool:
    return str(queue["Properties"].get("QueueName", "")).endswith("-dlq")


def test_every_alarm_notifies_the_alarm_topic_and_treats_missing_data_on_purpose(assembly: Assembly) -> None:
    topic = next(logical_id for logical_id, t in assembly.resources("messaging", "AWS::SNS::Topic").items()
                 if t["Properties"]["TopicName"] == assembly.settings.name("alarms"))
    count = 0
    for part in assembly.templates:
        for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
            for logical_id, alarm in assembly.resources(part, kind).items():
                properties = alarm["Properties"]
                actions = [assembly.resolve(action) for action in properties.get("AlarmActions", [])]
                scaling = [action["Ref"] for action in actions if assembly.templates[part]["Resources"].get(
                    action.get("Ref", ""), {}).get("Type") == "AWS::ApplicationAutoScaling::ScalingPolicy"]
                assert actions == [{"Ref": topic}] or (scaling and len(scaling) == len(actions)), \
                    f"{part}/{logical_id} notifies nobody and scales nothing"
                assert properties.get("AlarmDescription"), f"{part}/{logical_id} does not say what it means"
                if kind == "AWS::CloudWatch::Alarm":
                    assert properties.get("TreatMissingData") in {"breaching", "notBreaching"}, logical_id
                count += 1
    assert count > len(alarms(assembly))


def test_the_composite_alarm_pages_on_what_users_feel(assembly: Assembly) -> None:
    [(_, composite)] = assembly.resources("monitoring", "AWS::CloudWatch::CompositeAlarm").items()
    rule = json.dumps(composite["Properties"]["AlarmRule"])
    children = {logical_id for logical_id in alarms(assembly) if logical_id in rule}
    paged_targets: set[str] = set()
    for logical_id in children:
        for namespace, _, dimensions in alarm_metrics(alarms(assembly)[logical_id]["Properties"]):
            for dimension in dimensions:
                part, target = resolve_dimension(assembly, namespace, dimension["Name"], dimension["Value"])
                paged_targets.add(assembly.templates[part]["Resources"][target]["Type"])
    # A service that idles at zero tasks has no healthy target while idle: its balancer's own 503s page instead.
    idles_at_zero = assembly.settings.web.min_tasks == 0
    assert {"AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::RDS::DBInstance", "AWS::ApiGatewayV2::Stage"} | (
        set() if idles_at_zero else {"AWS::ElasticLoadBalancingV2::TargetGroup"}) <= paged_targets


def test_the_budget_follows_config(assembly: Assembly) -> None:
    budget_settings = assembly.settings.operations.budget
    [(_, budget)] = assembly.resources("monitoring", "AWS::Budgets::Budget").items()
    data = budget["Properties"]["Budget"]
    assert data["BudgetLimit"] == {"Amount": budget_settings.monthly_limit_usd, "Unit": "USD"}
    assert data["TimeUnit"] == "MONTHLY" and data["BudgetType"] == "COST"
    assert data["FilterExpression"] == {"Tags": {"Key": budget_settings.cost_tag,
                                                 "Values": [assembly.settings.tags[budget_settings.cost_tag]]}}
    alerts = {(n["Notification"]["NotificationType"], n["Notification"]["Threshold"]):
              n["Subscribers"] for n in budget["Properties"]["NotificationsWithSubscribers"]}
    assert set(alerts) == ({("ACTUAL", p) for p in budget_settings.actual_alert_percents}
                           | {("FORECASTED", p) for p in budget_settings.forecast_alert_percents})
    assert all(s == [{"SubscriptionType": "EMAIL", "Address": budget_settings.email}] for s in alerts.values())


def test_dev_has_the_lower_budget(dev: Assembly, prod: Assembly) -> None:
    assert dev.settings.operations.budget.monthly_limit_usd < prod.settings.operations.budget.monthly_limit_usd
