"""Alerting and a spending guard for one resource group: an action group that emails, Azure Monitor metric alerts
on what users feel (function failures, Cosmos DB throttling and RU consumption, storage availability), and a
Microsoft.Consumption budget over the resource group with actual and forecast thresholds."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import consumption, monitor

from .common import Placement

SINGLE_RESOURCE_CRITERIA = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
# Each rule looks at the last 15 minutes every 5: long enough to ride out one retried request, short enough to page
# while users are still affected.
EVALUATION_FREQUENCY = "PT5M"
WINDOW = "PT15M"
# Failed invocations in the window: one is a client's bad input answered with an exception; five is a pattern.
FUNCTION_FAILURES = 5
# Cosmos DB answers 429 when a request exceeds the provisioned (or serverless burst) RU/s; the SDK retries, so a few
# are normal, ten in 15 minutes means users wait.
COSMOS_THROTTLED_REQUESTS = 10
# Autoscale scales up to its maximum; at 90 % of it the next peak is throttled.
COSMOS_NORMALIZED_RU_PERCENT = 90
# Storage reports availability per minute; below 99 % the Functions host loses its leases and queue triggers.
STORAGE_AVAILABILITY_PERCENT = 99


@dataclass(frozen=True, kw_only=True)
class BudgetLimits:
    monthly_amount: int                      # in the subscription's billing currency
    actual_alert_percents: Sequence[int]
    forecast_alert_percents: Sequence[int]


@dataclass(frozen=True, kw_only=True)
class AlertingArgs:
    placement: Placement
    resource_group_id: pulumi.Input[str]
    action_group_name: str
    action_group_short_name: str             # shown as the sender of alert emails and SMS; at most 12 characters
    budget_name: str
    email: str
    budget: BudgetLimits
    insights_id: pulumi.Input[str]
    cosmos_account_id: pulumi.Input[str]
    # None: the account is serverless (no RU/s to saturate); alert on request units spent per hour instead.
    cosmos_serverless_request_units_per_hour: int | None
    # Storage accounts the app needs, by role: the host's (leases, reminder queue) and the code package's (Flex reads
    # the package whenever it starts an instance).
    storage_accounts: Mapping[str, pulumi.Input[str]]


@dataclass(frozen=True, kw_only=True)
class MetricRule:
    name: str
    description: str
    scope: pulumi.Input[str]
    namespace: str
    metric: str
    aggregation: str
    operator: str
    threshold: float
    severity: int
    window: str = WINDOW
    dimensions: tuple[tuple[str, tuple[str, ...]], ...] = ()


def first_of_this_month(today: datetime.date | None = None) -> str:
    """Budgets start on the first of a month, and not before the current one when created."""
    day = today or datetime.datetime.now(datetime.UTC).date()
    return f"{day.year:04d}-{day.month:02d}-01T00:00:00Z"


class Alerting(pulumi.ComponentResource):
    def __init__(self, name: str, args: AlertingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("refarch:azure:Alerting", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        place = args.placement
        self.action_group = monitor.ActionGroup(
            f"{name}-action-group",
            action_group_name=args.action_group_name,
            resource_group_name=place.resource_group_name,
            location="Global",
            group_short_name=args.action_group_short_name,
            enabled=True,
            email_receivers=[monitor.MicrosoftCommonEmailReceiverArgs(
                name="operations", email_address=args.email, use_common_alert_schema=True)],
            tags=dict(place.tags),
            opts=child,
        )
        ru_rule = (
            MetricRule(name="cosmos-ru-consumption", scope=args.cosmos_account_id,
                       namespace="Microsoft.DocumentDB/databaseAccounts", metric="NormalizedRUConsumption",
                       aggregation="Maximum", operator="GreaterThanOrEqual", threshold=COSMOS_NORMALIZED_RU_PERCENT,
                       severity=2, description="Cosmos DB uses 90 % of its autoscale maximum: the next peak is "
                                               "throttled. Raise cosmos.autoscaleMaxThroughput or find the hot query.")
            if args.cosmos_serverless_request_units_per_hour is None else
            MetricRule(name="cosmos-ru-consumption", scope=args.cosmos_account_id,
                       namespace="Microsoft.DocumentDB/databaseAccounts", metric="TotalRequestUnits",
                       aggregation="Total", operator="GreaterThan", window="PT1H",
                       threshold=args.cosmos_serverless_request_units_per_hour, severity=3,
                       description="Serverless Cosmos DB spent more request units in an hour than the app should: "
                                   "a runaway loop or scraping, billed per RU.")
        )
        rules = (
            MetricRule(name="function-failures", scope=args.insights_id,
                       namespace="microsoft.insights/components", metric="requests/failed", aggregation="Count",
                       operator="GreaterThanOrEqual", threshold=FUNCTION_FAILURES, severity=1,
                       description="Function invocations failed (5 or more in 15 minutes): Application Insights' "
                                   "failures view has the exceptions."),
            MetricRule(name="cosmos-throttling", scope=args.cosmos_account_id,
                       namespace="Microsoft.DocumentDB/databaseAccounts", metric="TotalRequests",
                       aggregation="Count", operator="GreaterThanOrEqual", threshold=COSMOS_THROTTLED_REQUESTS,
                       severity=2, dimensions=(("StatusCode", ("429",)),),
                       description="Cosmos DB answered 429 (too many requests) 10 times in 15 minutes: users wait "
                                   "on retries."),
            ru_rule,
            *(MetricRule(name=f"storage-availability-{role}", scope=account_id,
                         namespace="Microsoft.Storage/storageAccounts", metric="Availability", aggregation="Average",
                         operator="LessThan", threshold=STORAGE_AVAILABILITY_PERCENT, severity=1,
                         description=f"Storage availability below 99 % on the {role} account: the Functions host's "
                                     "leases and reminder queue, or the code package new instances start from.")
              for role, account_id in args.storage_accounts.items()),
        )
        self.alerts = {rule.name: self._alert(name, rule, place, child) for rule in rules}

        limits = args.budget
        thresholds = [("Actual", percent) for percent in limits.actual_alert_percents] + [
            ("Forecasted", percent) for percent in limits.forecast_alert_percents]
        self.budget = consumption.Budget(
            f"{name}-budget",
            budget_name=args.budget_name,
            scope=args.resource_group_id,
            category="Cost",
            amount=limits.monthly_amount,
            time_grain="Monthly",
            time_period=consumption.BudgetTimePeriodArgs(start_date=first_of_this_month()),
            notifications={
                f"{kind.lower()}{percent}": consumption.NotificationArgs(
                    enabled=True, operator="GreaterThan", threshold=percent, threshold_type=kind,
                    contact_emails=[args.email], contact_groups=[self.action_group.id])
                for kind, percent in thresholds
            },
            # The start date is the month of the first `pulumi up`; later runs must not move it.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["timePeriod"]),
        )
        self.register_outputs({"action_group_id": self.action_group.id, "budget_id": self.budget.id})

    def _alert(self, name: str, rule: MetricRule, place: Placement,
               child: pulumi.ResourceOptions) -> monitor.MetricAlert:
        return monitor.MetricAlert(
            f"{name}-{rule.name}",
            rule_name=rule.name,
            resource_group_name=place.resource_group_name,
            location="global",
            description=rule.description,
            severity=rule.severity,
            enabled=True,
            scopes=[rule.scope],
            evaluation_frequency=EVALUATION_FREQUENCY,
            window_size=rule.window,
            auto_mitigate=True,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type=SINGLE_RESOURCE_CRITERIA,
                all_of=[monitor.MetricCriteriaArgs(
                    criterion_type="StaticThresholdCriterion", name=rule.metric.replace("/", "-"),
                    metric_namespace=rule.namespace, metric_name=rule.metric, time_aggregation=rule.aggregation,
                    operator=rule.operator, threshold=rule.threshold,
                    dimensions=[monitor.MetricDimensionArgs(name=dimension, operator="Include", values=list(values))
                                for dimension, values in rule.dimensions] or None)]),
            actions=[monitor.MetricAlertActionArgs(action_group_id=self.action_group.id)],
            tags=dict(place.tags),
            opts=child,
        )
