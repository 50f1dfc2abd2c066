"""Operating a Selfnest environment: one dashboard an on-call person reads in one screen, alarms that each say why
they exist, a composite "service unhealthy" alarm to page on, and a monthly budget.

What is watched is found in the environment's construct trees (every Lambda function, queue, load balancer, service,
database and WebSocket stage), so a function or queue a fork adds is watched without touching this file. Metrics
come from the constructs themselves (names and dimensions are their attributes), never from retyped names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigatewayv2
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sam as sam
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from constructs import Construct

FIVE_MINUTES = cdk.Duration.minutes(5)
ONE_MINUTE = cdk.Duration.minutes(1)
GIB = 1024 ** 3

# Thresholds, each from the design it guards (docs/architecture.md, "Operating it", has the runbook per alarm).
# A handful of 5xx in five minutes is more than the API's own errors (it answers 4xx for bad input) ever produce.
HTTP_5XX_PER_5_MINUTES = 5
# The booking API answers from one indexed query; a p95 above a second for 15 minutes means the database or the
# tasks are saturated, not a slow request.
P95_LATENCY_SECONDS = 1.0
# Auto scaling targets 60 % CPU; staying above 85 % means it has reached max_tasks and users will feel it next.
SERVICE_UTILIZATION_PERCENT = 85
# The database should idle well below this; sustained 80 % leaves no headroom for a Multi-AZ failover's catch-up.
DATABASE_CPU_PERCENT = 80
# Storage autoscaling grows the volume when 10 % is free; below 10 % of the initial size it is at its maximum or in
# its six-hour cooldown, and writes will stop when it reaches zero.
FREE_STORAGE_FRACTION = 0.10
# Consumers finish a message in seconds; one that waited two visibility timeouts has failed a delivery or sits
# behind a backlog the consumers cannot drain.
OLDEST_MESSAGE_VISIBILITY_TIMEOUTS = 2
# Any throttle means the account's concurrency (10 in a new account) is exhausted and events or chat frames wait.
FUNCTION_THROTTLES = 1
# A single error can be a client's bad frame; three in five minutes is a pattern worth a look.
FUNCTION_ERRORS_PER_5_MINUTES = 3
# Chat frames that reached API Gateway but not a handler (integration) or failed in it (execution).
WEBSOCKET_ERRORS_PER_5_MINUTES = 5


@dataclass(kw_only=True)
class Watched:
    """Everything in an environment that has metrics worth watching, by kind."""

    load_balancers: list[elbv2.ApplicationLoadBalancer] = field(default_factory=list)
    services: list[ecs.FargateService] = field(default_factory=list)
    databases: list[rds.DatabaseInstance] = field(default_factory=list)
    functions: list[lambda_.Function] = field(default_factory=list)
    queues: list[sqs.Queue] = field(default_factory=list)              # queues that feed a consumer
    dead_letter_queues: list[sqs.Queue] = field(default_factory=list)  # (their own depth alarms live beside them)
    websocket_stages: list[apigatewayv2.WebSocketStage] = field(default_factory=list)
    # Secret rotation runs in a Serverless Application Repository stack: known by its function name only.
    rotation_function_names: list[str] = field(default_factory=list)

    @classmethod
    def in_scopes(cls, scopes: Sequence[Construct]) -> Watched:
        watched = cls()
        for scope in scopes:
            for node in scope.node.find_all():
                for kind, attribute in ((elbv2.ApplicationLoadBalancer, "load_balancers"),
                                        (ecs.FargateService, "services"), (rds.DatabaseInstance, "databases"),
                                        (lambda_.Function, "functions"),
                                        (apigatewayv2.WebSocketStage, "websocket_stages")):
                    if isinstance(node, kind):
                        getattr(watched, attribute).append(node)
                if isinstance(node, sqs.Queue):
                    watched.queues.append(node)
                if isinstance(node, secretsmanager.SecretRotation):
                    application = node.node.default_child
                    parameters = application.parameters if isinstance(application, sam.CfnApplication) else None
                    if isinstance(parameters, Mapping):
                        watched.rotation_function_names.append(parameters["functionName"])
        dead_letters = {id(queue.dead_letter_queue.queue) for queue in watched.queues
                        if queue.dead_letter_queue is not None}
        watched.dead_letter_queues = [queue for queue in watched.queues if id(queue) in dead_letters]
        watched.queues = [queue for queue in watched.queues if id(queue) not in dead_letters]
        return watched


@dataclass(frozen=True, kw_only=True)
class QueueShape:
    visibility_timeout_seconds: int


class ServiceMonitoring(Construct):
    """The dashboard and alarms of one environment; every alarm notifies `alarm_topic`.

    `unhealthy` is the composite alarm to page on: users are failing (5xx, no healthy API task, the database down or
    out of space, chat frames failing). The other alarms inform; each says what it means in its description.
    """

    def __init__(self, scope: Construct, id: str, *, dashboard_name: str, watched: Watched,
                 alarm_topic: sns.ITopic, queue_shape: QueueShape, initial_storage_gib: int,
                 paging_only: bool = False, dashboard: bool = True, services_scale_to_zero: bool = False) -> None:
        """`paging_only`: only the alarms behind `unhealthy` (each alarm is billed monthly); `dashboard`: False
        builds none; `services_scale_to_zero`: the services run no task while idle, so "no healthy target" and a
        silent service are normal, and the load balancer's own 5xx (the first requests' 503s) page instead."""
        super().__init__(scope, id)
        self._action = cloudwatch_actions.SnsAction(alarm_topic)
        self._paging_only = paging_only
        idle_service = "not_breaching" if services_scale_to_zero else "breaching"
        self.alarms: list[cloudwatch.Alarm] = []
        paging: list[cloudwatch.IAlarm] = []
        widgets: list[list[cloudwatch.IWidget]] = []

        for balancer in watched.load_balancers:
            name = balancer.node.id
            elb_5xx = balancer.metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=FIVE_MINUTES)
            target_5xx = balancer.metrics.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT,
                                                           period=FIVE_MINUTES)
            latency = balancer.metrics.target_response_time(period=FIVE_MINUTES, statistic="p95")
            paging += [
                self._alarm(f"{name}Elb5xx", elb_5xx, threshold=HTTP_5XX_PER_5_MINUTES, missing="not_breaching",
                            why="The load balancer itself answered 5xx (502/503/504): no healthy target or targets "
                                "timing out. No requests means no errors."),
                self._alarm(f"{name}Target5xx", target_5xx, threshold=HTTP_5XX_PER_5_MINUTES,
                            missing="not_breaching",
                            why="The booking API answered 5xx: an unhandled error, usually the database or SNS."),
            ]
            self._inform(f"{name}P95Latency", latency, threshold=P95_LATENCY_SECONDS, periods=3,
                        missing="not_breaching",
                        why="p95 response time above 1 s for 15 minutes: tasks or database saturated.")
            widgets.append([
                cloudwatch.GraphWidget(title="ALB requests and 5xx", width=8, left=[
                    balancer.metrics.request_count(period=FIVE_MINUTES)], right=[elb_5xx, target_5xx]),
                cloudwatch.GraphWidget(title="ALB p95 latency (s)", width=8, left=[latency]),
            ])
            # The balancer's own target groups: the ones beside it in its construct (CDK's group metrics would name
            # the balancer by splitting a listener ARN: Fn::Split of a cross-stack Fn::GetStackOutput, which cfn-lint
            # rejects and this reference does not need).
            siblings = balancer.node.scope.node.find_all() if balancer.node.scope is not None else []
            for group in (node for node in siblings if isinstance(node, elbv2.ApplicationTargetGroup)):
                def target_metric(metric_name: str, statistic: str, group: elbv2.ApplicationTargetGroup = group,
                                  balancer: elbv2.ApplicationLoadBalancer = balancer) -> cloudwatch.Metric:
                    return cloudwatch.Metric(
                        namespace="AWS/ApplicationELB", metric_name=metric_name, period=ONE_MINUTE,
                        statistic=statistic, dimensions_map={"LoadBalancer": balancer.load_balancer_full_name,
                                                             "TargetGroup": group.target_group_full_name})

                healthy = target_metric("HealthyHostCount", "Minimum")
                if not services_scale_to_zero:
                    paging.append(self._alarm(
                        f"{self._path_id(group)}NoHealthyTargets", healthy, threshold=1, periods=3,
                        comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, missing="breaching",
                        why="No API task has passed its health check for 3 minutes: every request gets 502/503. The "
                            "metric stops only if the target group is gone, which is as bad."))
                widgets[-1].append(cloudwatch.GraphWidget(title="Target health", width=8, left=[
                    healthy, target_metric("UnHealthyHostCount", "Maximum")]))
        for service in watched.services:
            name = service.node.scope.node.id if service.node.scope is not None else service.node.id
            cpu, memory = service.metric_cpu_utilization(period=FIVE_MINUTES), \
                service.metric_memory_utilization(period=FIVE_MINUTES)
            running = cloudwatch.Metric(namespace="ECS/ContainerInsights", metric_name="RunningTaskCount",
                                        dimensions_map={"ClusterName": service.cluster.cluster_name,
                                                        "ServiceName": service.service_name},
                                        period=ONE_MINUTE, statistic="Minimum")
            for kind, metric in (("Cpu", cpu), ("Memory", memory)):
                self._inform(f"{name}Service{kind}", metric, threshold=SERVICE_UTILIZATION_PERCENT, periods=3,
                             missing=idle_service,
                             why=f"API tasks above {SERVICE_UTILIZATION_PERCENT} % {kind.lower()} for 15 minutes: auto "
                                "scaling is at max_tasks. ECS reports every minute while a task runs, so silence "
                                "means none does.")
            widgets.append([
                cloudwatch.GraphWidget(title="Fargate CPU and memory (%)", width=8, left=[cpu, memory]),
                cloudwatch.GraphWidget(title="Running API tasks", width=8, left=[running]),
            ])
        for database in watched.databases:
            name = database.node.scope.node.id if database.node.scope is not None else database.node.id
            cpu = database.metric_cpu_utilization(period=FIVE_MINUTES)
            free = database.metric_free_storage_space(period=FIVE_MINUTES, statistic="Minimum")
            connections = database.metric_database_connections(period=FIVE_MINUTES, statistic="Maximum")
            self._inform(f"{name}DatabaseCpu", cpu, threshold=DATABASE_CPU_PERCENT, periods=3, missing="breaching",
                        why="Database CPU above 80 % for 15 minutes. RDS reports every minute while the instance "
                            "runs: no data means it is stopped or unreachable.")
            paging.append(self._alarm(
                f"{name}DatabaseStorage", free, threshold=FREE_STORAGE_FRACTION * initial_storage_gib * GIB,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, missing="breaching",
                why="Free storage below 10 % of the initial volume: storage autoscaling is at its maximum or cooling "
                    "down, and writes stop at zero."))
            widgets.append([
                cloudwatch.GraphWidget(title="RDS CPU (%)", width=8, left=[cpu]),
                cloudwatch.GraphWidget(title="RDS free storage (bytes)", width=8, left=[free]),
                cloudwatch.GraphWidget(title="RDS connections", width=8, left=[connections]),
            ])
        queue_widgets: list[cloudwatch.IMetric] = []
        for queue in watched.queues:
            age = queue.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES, statistic="Maximum")
            queue_widgets.append(age)
            self._inform(f"{self._path_id(queue)}OldestMessage", age,
                        threshold=OLDEST_MESSAGE_VISIBILITY_TIMEOUTS * queue_shape.visibility_timeout_seconds,
                        missing="not_breaching",
                        why="A session event has waited two visibility timeouts: its consumer fails or cannot keep "
                            "up. SQS stops reporting an idle queue, so no data is no backlog.")
        widgets.append([
            cloudwatch.GraphWidget(title="Queues: oldest message (s)", width=12, left=queue_widgets),
            cloudwatch.GraphWidget(title="Dead-letter queues: messages", width=12, left=[
                queue.metric_approximate_number_of_messages_visible(period=ONE_MINUTE, statistic="Maximum")
                for queue in watched.dead_letter_queues]),
        ])
        errors: list[cloudwatch.IMetric] = []
        throttles: list[cloudwatch.IMetric] = []
        durations: list[cloudwatch.IMetric] = []
        for function in watched.functions:
            label = self._path_id(function)
            function_errors = function.metric_errors(period=FIVE_MINUTES, label=label)
            function_throttles = function.metric_throttles(period=FIVE_MINUTES, label=label)
            errors.append(function_errors)
            throttles.append(function_throttles)
            durations.append(function.metric_duration(period=FIVE_MINUTES, statistic="p95", label=label))
            self._inform(f"{label}Errors", function_errors, threshold=FUNCTION_ERRORS_PER_5_MINUTES,
                        missing="not_breaching",
                        why="The function failed 3 times in 5 minutes (its log group has the stack traces). No "
                            "invocations means no errors.")
            self._inform(f"{label}Throttles", function_throttles, threshold=FUNCTION_THROTTLES,
                        missing="not_breaching",
                        why="Lambda refused to run the function: the account's concurrency is exhausted.")
        for function_name in watched.rotation_function_names:
            rotation_errors = cloudwatch.Metric(namespace="AWS/Lambda", metric_name="Errors", label="SecretRotation",
                                                dimensions_map={"FunctionName": function_name},
                                                period=FIVE_MINUTES, statistic="Sum")
            errors.append(rotation_errors)
            self._inform(f"{function_name[-40:]}Errors", rotation_errors, threshold=1, missing="not_breaching",
                        why="Rotating the database secret failed: the old password stays valid, but the next "
                            "rotation retries and the log group /aws/lambda/<function> says why (usually the "
                            "database or the Secrets Manager endpoint unreachable from the app subnets).")
        widgets.append([
            cloudwatch.GraphWidget(title="Function errors", width=8, left=errors),
            cloudwatch.GraphWidget(title="Function throttles", width=8, left=throttles),
            cloudwatch.GraphWidget(title="Function p95 duration (ms)", width=8, left=durations),
        ])
        for stage in watched.websocket_stages:
            def chat_metric(metric_name: str, stage: apigatewayv2.WebSocketStage = stage) -> cloudwatch.Metric:
                return cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name=metric_name,
                                         dimensions_map={"ApiId": stage.api.api_id, "Stage": stage.stage_name},
                                         period=FIVE_MINUTES, statistic="Sum")

            failures = cloudwatch.MathExpression(
                expression="integration + execution", label="Integration and execution errors",
                using_metrics={"integration": chat_metric("IntegrationError"),
                               "execution": chat_metric("ExecutionError")}, period=FIVE_MINUTES)
            paging.append(self._alarm(
                f"{self._path_id(stage)}Errors", failures, threshold=WEBSOCKET_ERRORS_PER_5_MINUTES,
                missing="not_breaching",
                why="Chat frames failed between API Gateway and the handlers: clients see errors or silence."))
            widgets.append([
                cloudwatch.GraphWidget(title="WebSocket connections and messages", width=12, left=[
                    chat_metric("ConnectCount"), chat_metric("MessageCount")]),
                cloudwatch.GraphWidget(title="WebSocket errors", width=12, left=[
                    chat_metric("IntegrationError"), chat_metric("ExecutionError"), chat_metric("ClientError")]),
            ])

        self.unhealthy = cloudwatch.CompositeAlarm(
            self, "ServiceUnhealthy",
            alarm_description="Page: users are failing now (5xx, no healthy API task, database out of space, chat "
                              "frames failing). Open the dashboard; the child alarm in ALARM says where.",
            alarm_rule=cloudwatch.AlarmRule.any_of(*(cloudwatch.AlarmRule.from_alarm(alarm, cloudwatch.AlarmState.ALARM)
                                                     for alarm in paging)))
        self.unhealthy.add_alarm_action(self._action)
        widgets.insert(0, [cloudwatch.AlarmStatusWidget(title="Alarms", width=24,
                                                        alarms=[self.unhealthy, *self.alarms])])
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name, widgets=widgets) \
            if dashboard else None

    def _inform(self, id: str, metric: cloudwatch.IMetric, *, threshold: float, why: str, missing: str,
                periods: int = 1, comparison: cloudwatch.ComparisonOperator =
                cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD) -> None:
        """An alarm that informs rather than pages: left out when only paging alarms are wanted."""
        if not self._paging_only:
            self._alarm(id, metric, threshold=threshold, why=why, missing=missing, periods=periods,
                        comparison=comparison)

    def _alarm(self, id: str, metric: cloudwatch.IMetric, *, threshold: float, why: str, missing: str,
               periods: int = 1,
               comparison: cloudwatch.ComparisonOperator =
               cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self, id, metric=metric, threshold=threshold, evaluation_periods=periods, datapoints_to_alarm=periods,
            comparison_operator=comparison, alarm_description=why,
            treat_missing_data={"breaching": cloudwatch.TreatMissingData.BREACHING,
                                "not_breaching": cloudwatch.TreatMissingData.NOT_BREACHING}[missing])
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)
        return alarm

    @staticmethod
    def _path_id(construct: Construct) -> str:
        """A readable, unique id from the construct path below its stack, e.g. ChatSendMessageFunction."""
        stack = cdk.Stack.of(construct)
        parts = construct.node.path.removeprefix(stack.node.path + "/").split("/")
        return "".join(part[:1].upper() + part[1:] for part in parts if part not in {"Resource", "Default"}) \
            .replace("-", "").replace("_", "")


@dataclass(frozen=True, kw_only=True)
class BudgetShape:
    monthly_limit_usd: int
    email: str
    actual_alert_percents: list[int]
    forecast_alert_percents: list[int]
    cost_tag: str
    cost_tag_value: str


class MonthlyBudget(Construct):
    """An AWS Budget over the costs tagged `cost_tag`=`cost_tag_value`, emailing at each actual and forecast %."""

    def __init__(self, scope: Construct, id: str, *, budget_name: str, shape: BudgetShape) -> None:
        super().__init__(scope, id)
        subscriber = budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=shape.email)
        notifications = [
            budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind, comparison_operator="GREATER_THAN", threshold=percent,
                    threshold_type="PERCENTAGE"),
                subscribers=[subscriber])
            for kind, percents in (("ACTUAL", shape.actual_alert_percents),
                                   ("FORECASTED", shape.forecast_alert_percents))
            for percent in percents
        ]
        self.budget = budgets.CfnBudget(
            self, "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=budget_name, budget_type="COST", time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=shape.monthly_limit_usd, unit="USD"),
                filter_expression=budgets.CfnBudget.ExpressionProperty(
                    tags=budgets.CfnBudget.TagValuesProperty(key=shape.cost_tag, values=[shape.cost_tag_value]))),
            notifications_with_subscribers=notifications)
