"""BabyBloom's alerting under mocks: an emailing action group, metric alerts on what users feel, each sent to it,
and a resource-group budget with the configured thresholds."""

from __future__ import annotations

import re
from typing import Any

import pytest
from refarch.constructs.azure.alerting import first_of_this_month
from refarch.stacks.babybloom.config import ConfigError, read_stack_file, settings_from_config

from .conftest import Plan, pulumi_test

ACTION_GROUP = "azure-native:monitor:ActionGroup"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
BUDGET = "azure-native:consumption:Budget"
RESOURCE_GROUP = "azure-native:resources:ResourceGroup"


def criteria(alert: Any) -> dict[str, Any]:
    [criterion] = alert.inputs["criteria"]["allOf"]
    return dict(criterion)


def alert_on(plan: Plan, scope_type: str, metric: str) -> Any:
    [scope] = [resource.outputs["id"] for resource in plan.all(scope_type)]
    return alert_on_scope(plan, scope, metric)


def alert_on_scope(plan: Plan, scope: Any, metric: str) -> Any:
    found = [alert for alert in plan.all(METRIC_ALERT)
             if alert.inputs["scopes"] == [scope] and criteria(alert)["metricName"] == metric]
    assert len(found) == 1, f"expected one alert on {metric} of {scope}, found {len(found)}"
    return found[0]


@pulumi_test
def test_the_action_group_emails_the_configured_address(plan: Plan) -> None:
    group = plan.one(ACTION_GROUP)
    assert [receiver["emailAddress"] for receiver in group.inputs["emailReceivers"]] == [
        plan.settings.app.operations.alert_email]
    assert group.inputs["enabled"] is True and len(group.inputs["groupShortName"]) <= 12


@pulumi_test
def test_every_alert_notifies_the_action_group_and_explains_itself(plan: Plan) -> None:
    group_id = plan.id_of(ACTION_GROUP)
    alerts = plan.all(METRIC_ALERT)
    assert alerts
    for alert in alerts:
        assert alert.inputs["actions"] == [{"actionGroupId": group_id}]
        assert alert.inputs["enabled"] is True and alert.inputs["description"]
        assert alert.inputs["criteria"]["odataType"] == "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"


@pulumi_test
def test_function_failures_cosmos_throttling_and_storage_availability_are_alerted(plan: Plan) -> None:
    failures = alert_on(plan, "azure-native:applicationinsights:Component", "requests/failed")
    assert criteria(failures)["operator"] == "GreaterThanOrEqual"
    throttling = alert_on(plan, "azure-native:cosmosdb:DatabaseAccount", "TotalRequests")
    assert criteria(throttling)["dimensions"] == [{"name": "StatusCode", "operator": "Include", "values": ["429"]}]
    for account in plan.all("azure-native:storage:StorageAccount"):   # the host's and the code package's
        availability = alert_on_scope(plan, account.outputs["id"], "Availability")
        assert criteria(availability)["operator"] == "LessThan"


@pulumi_test
def test_request_unit_alert_fits_the_capacity_mode(plan: Plan) -> None:
    operations, cosmos = plan.settings.app.operations, plan.settings.app.cosmos
    if cosmos.capacity_mode == "serverless":
        alert = alert_on(plan, "azure-native:cosmosdb:DatabaseAccount", "TotalRequestUnits")
        assert criteria(alert)["threshold"] == operations.serverless_request_units_per_hour
        assert alert.inputs["windowSize"] == "PT1H"
    else:
        alert = alert_on(plan, "azure-native:cosmosdb:DatabaseAccount", "NormalizedRUConsumption")
        assert criteria(alert)["timeAggregation"] == "Maximum"


@pulumi_test
def test_the_budget_covers_the_resource_group_with_the_configured_thresholds(plan: Plan) -> None:
    budget_settings = plan.settings.app.operations.budget
    budget = plan.one(BUDGET)
    assert budget.inputs["scope"] == plan.id_of(RESOURCE_GROUP)
    assert budget.inputs["amount"] == budget_settings.monthly_amount
    assert budget.inputs["category"] == "Cost" and budget.inputs["timeGrain"] == "Monthly"
    assert re.fullmatch(r"\d{4}-\d{2}-01T00:00:00Z", budget.inputs["timePeriod"]["startDate"])
    notifications = budget.inputs["notifications"].values()
    assert {(n["thresholdType"], n["threshold"]) for n in notifications} == (
        {("Actual", p) for p in budget_settings.actual_alert_percents}
        | {("Forecasted", p) for p in budget_settings.forecast_alert_percents})
    for notification in notifications:
        assert notification["contactEmails"] == [plan.settings.app.operations.alert_email]
        assert notification["contactGroups"] == [plan.id_of(ACTION_GROUP)]


@pulumi_test
def test_dev_budget_is_the_lower_one(plans: dict[str, Plan]) -> None:
    assert plans["dev"].settings.app.operations.budget.monthly_amount < \
        plans["prod"].settings.app.operations.budget.monthly_amount


@pulumi_test
def test_budgets_start_on_the_first_of_the_current_month() -> None:
    import datetime
    assert first_of_this_month(datetime.date(2026, 12, 2)) == "2026-12-01T00:00:00Z"


@pulumi_test
@pytest.mark.parametrize(("edit", "message"), [
    ({"serverlessRequestUnitsPerHour": None}, "required when cosmos.capacityMode is serverless"),
    ({"budget": {"monthlyAmount": 20, "actualAlertPercents": [10, 20, 30, 40, 50], "forecastAlertPercents": [100]}},
     "at most 5"),
    ({"alertEmail": "ops team"}, "operations.alertEmail"),
])
def test_operations_mistakes_are_one_line(edit: dict[str, Any], message: str) -> None:
    import json
    config = read_stack_file("dev")
    operations = json.loads(config["babybloom:operations"])
    config["babybloom:operations"] = json.dumps({**operations, **edit})
    with pytest.raises(ConfigError) as caught:
        settings_from_config("dev", config)
    assert message in str(caught.value) and "\n" not in str(caught.value)
