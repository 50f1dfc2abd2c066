"""BabyBloom's diagrams and bill come from the offline plan: committed models match it, the README's cost table
matches the calculator, and what bills by the hour (private endpoints, autoscale floor) is on the bill."""

from __future__ import annotations

import json

import pytest
from refarch.tools import architecture, cost, cost_tables
from refarch.tools.deployment import HOURS_PER_MONTH, PulumiDeployment, pulumi_deployment

from .conftest import Plan, pulumi_test


def as_deployment(plan: Plan) -> PulumiDeployment:
    # Through JSON, as `make plan-azure` writes it and `make diagrams` reads it.
    planned = json.loads(json.dumps([resource.as_json() for resource in plan.resources], default=str))
    return pulumi_deployment(plan.stack, planned)


@pytest.mark.parametrize(("name", "stack"), architecture.BABYBLOOM_STACKS)
@pulumi_test
def test_committed_diagram_matches_the_plan(name: str, stack: str, plans: dict[str, Plan]) -> None:
    model = architecture.model_azure(as_deployment(plans[stack]), architecture.babybloom_title(stack))
    committed = architecture.DIAGRAM_DIR / f"{name}.json"
    assert committed.is_file(), f"docs/diagrams/{name}.json is missing: run `{architecture.COMMAND}`"
    assert model.as_json() == committed.read_text(encoding="utf-8"), (
        f"docs/diagrams/{name}.* no longer match the plan: run `{architecture.COMMAND}` and commit the result")


@pulumi_test
def test_every_role_assignment_is_an_arrow_from_the_identity_to_its_scope(plan: Plan) -> None:
    model = architecture.model_azure(as_deployment(plan), "test")
    (app,) = [resource.name for resource in plan.all("azure-native:web:WebApp")]
    assignments = plan.all("azure-native:authorization:RoleAssignment") + plan.all(
        "azure-native:cosmosdb:SqlResourceSqlRoleAssignment")
    roles = [(source, label) for source, _, label in model.edges if label.startswith("role: ")]
    assert len(roles) == len(assignments)
    assert {source for source, _ in roles} <= {app, architecture.DEPLOYER}
    assert any(source == app for source, _ in roles)
    endpoints = plan.all("azure-native:network:PrivateEndpoint")
    assert sum(1 for _, _, label in model.edges if label == "private link") == len(endpoints)
    for endpoint in endpoints:
        assert model.nodes[endpoint.name]["group"][-1].startswith("subnet ")


@pulumi_test
def test_bill_has_every_hourly_item(plan: Plan) -> None:
    bill = cost.azure_bill(as_deployment(plan))
    assert not bill.unpriced, f"resource types with no price and no no-charge reason in tools/cost.py: {bill.unpriced}"
    sheet = cost.load_sheet("azure", plan.settings.location)
    endpoints = len(plan.all("azure-native:network:PrivateEndpoint"))
    hours = sum(line.quantity for line in bill.lines if line.price_key == "private_endpoint_hour")
    assert hours == endpoints * HOURS_PER_MONTH
    databases = [resource for resource in plan.all("azure-native:cosmosdb:SqlResourceSqlDatabase")
                 if (resource.inputs.get("options") or {}).get("autoscaleSettings")]
    floor = [line for line in bill.lines if line.price_key == "cosmos_autoscale_100rus_hour"]
    assert len(floor) == len(databases) and all(line.always_on for line in floor)
    for line, database in zip(floor, databases, strict=True):
        peak = database.inputs["options"]["autoscaleSettings"]["maxThroughput"]
        zone = sheet["cosmos_zone_redundancy_factor"].amount if "zone-redundant" in line.item else 1
        assert line.quantity == pytest.approx(peak / 10 / 100 * zone * HOURS_PER_MONTH)


@pulumi_test
def test_readme_and_cost_page_tables_match_the_calculator(plans: dict[str, Plan]) -> None:
    wanted = cost_tables.table({stack: cost.azure_bill(as_deployment(plans[stack]))
                                for stack in cost_tables.BABYBLOOM_STACKS})
    for page in cost_tables.PAGES:
        text = page.read_text(encoding="utf-8")
        block = text.split(cost_tables.marker("babybloom") + "\n", 1)[1].split(
            "\n" + cost_tables.marker("babybloom", end=True), 1)[0]
        assert block == wanted, f"{page.name}'s BabyBloom cost table is out of date: run `{cost_tables.COMMAND}`"
