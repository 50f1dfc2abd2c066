"""Selfnest's diagrams and bill come from the templates: committed models match the code, the README's cost table
matches the calculator, and what runs 24/7 (addresses, keys, hours) is all on the bill."""

from __future__ import annotations

from pathlib import Path

import pytest
from refarch.tools import architecture, cost, cost_tables
from refarch.tools.deployment import HOURS_PER_MONTH, CfnDeployment

from .assembly import Assembly
from .conftest import VARIANTS, Assemblies

ROOT = Path(__file__).resolve().parents[3]


def variant_for(env: str, tier: str | None) -> str:
    """The conftest variant synthesized with this environment and DR tier (the shapes the tools draw and price)."""
    return next(name for name, (variant_env, variant_tier, *_) in VARIANTS.items()
                if (variant_env, variant_tier) == (env, tier))


DIAGRAMS = {name: variant_for(env, tier) for name, env, tier in architecture.SELFNEST_VARIANTS}


def as_deployment(assembly: Assembly) -> CfnDeployment:
    return CfnDeployment(str(assembly.settings.environment), assembly.settings.region, assembly.templates,
                         assembly.regions)


@pytest.mark.parametrize("name", DIAGRAMS)
def test_committed_diagram_matches_the_templates(name: str, assemblies: Assemblies) -> None:
    env, tier = next((env, tier) for diagram, env, tier in architecture.SELFNEST_VARIANTS if diagram == name)
    model = architecture.model_aws(as_deployment(assemblies[DIAGRAMS[name]]), architecture.selfnest_title(env, tier))
    committed = architecture.DIAGRAM_DIR / f"{name}.json"
    assert committed.is_file(), f"docs/diagrams/{name}.json is missing: run `{architecture.COMMAND}`"
    assert model.as_json() == committed.read_text(encoding="utf-8"), (
        f"docs/diagrams/{name}.* no longer match the templates: run `{architecture.COMMAND}` and commit the result")
    for suffix in (".svg", ".png"):
        assert (architecture.DIAGRAM_DIR / f"{name}{suffix}").is_file(), f"run `{architecture.COMMAND}`"


def test_diagram_follows_the_security_group_chain(assembly: Assembly) -> None:
    model = architecture.model_aws(as_deployment(assembly), "test")
    by_icon: dict[str, list[str]] = {}
    for node_id, node in model.nodes.items():
        by_icon.setdefault(node["icon"], []).append(node_id)
    edges = {(source, target): label for source, target, label in model.merged_edges()}
    # One chain per region that serves the API: the primary's, and a warm standby's (which reads the replica).
    regions = {model.nodes[node]["group"][1] for node in by_icon["aws.network.ElbApplicationLoadBalancer"]}
    assert len(regions) == (2 if assembly.settings.dr.standby_region else 1)
    for region in regions:
        def in_region(icon: str, region: str = region) -> str:
            (node,) = [node for node in by_icon[icon] if model.nodes[node]["group"][1] == region]
            return node
        balancer, service = in_region("aws.network.ElbApplicationLoadBalancer"), in_region("aws.compute.Fargate")
        database = in_region("aws.database.RDSPostgresqlInstance")
        assert "tcp/443" in edges[(architecture.INTERNET, balancer)] or "tcp/80" in edges[(architecture.INTERNET,
                                                                                              balancer)]
        assert f"tcp/{assembly.settings.web.container_port}" in edges[(balancer, service)]
        assert "tcp/5432" in edges[(service, database)]
        # Tiers: the database sits in the data subnets, the load balancer in the public ones.
        assert model.nodes[database]["group"][-1] == "data subnets"
        assert model.nodes[balancer]["group"][-1] == "public subnets"


def test_diagram_shows_every_subscription_with_its_filter(assembly: Assembly) -> None:
    model = architecture.model_aws(as_deployment(assembly), "test")
    labels = [label for _, _, label in model.merged_edges()]
    subscriptions = list(assembly.all_resources("AWS::SNS::Subscription"))
    filtered = [resource for _, _, resource in subscriptions if resource["Properties"].get("FilterPolicy")]
    assert sum(1 for label in labels if label.startswith("filter ")) == len(filtered)
    mappings = list(assembly.all_resources("AWS::Lambda::EventSourceMapping"))
    assert sum(1 for label in labels if label.startswith("event source")) == len(mappings)


def test_bill_has_every_always_on_address_key_and_hour(assembly: Assembly) -> None:
    bill = cost.aws_bill(as_deployment(assembly))
    assert not bill.unpriced, f"resource types with no price and no no-charge reason in tools/cost.py: {bill.unpriced}"
    quantity = {key: sum(line.quantity for line in bill.lines if line.price_key == key)
                for key in {line.price_key for line in bill.lines}}
    keys = list(assembly.all_resources("AWS::KMS::Key"))
    assert quantity["kms_key_month"] == len(keys)
    balancers = [resource for _, _, resource in assembly.all_resources("AWS::ElasticLoadBalancingV2::LoadBalancer")]
    addresses = sum(len(balancer["Properties"]["Subnets"]) for balancer in balancers)
    addresses += len(list(assembly.all_resources("AWS::EC2::EIP")))
    if assembly.settings.network.nat_gateways == "none":   # tasks in public subnets, each with its own address
        addresses += assembly.settings.web.min_tasks
    assert quantity["public_ipv4_hour"] == addresses * HOURS_PER_MONTH
    assert quantity.get("nat_gateway_hour", 0) == len(list(assembly.all_resources("AWS::EC2::NatGateway"))) * 730
    managed_master_secrets = [resource for _, _, resource in assembly.all_resources("AWS::RDS::DBInstance")
                              if resource["Properties"].get("ManageMasterUserPassword") is True]
    assert quantity["secret_month"] == (len(list(assembly.all_resources("AWS::SecretsManager::Secret")))
                                        + len(managed_master_secrets))
    assert bill.idle_per_day == pytest.approx(bill.always_on_monthly * 24 / HOURS_PER_MONTH)


def test_readme_and_cost_page_tables_match_the_calculator(assemblies: Assemblies) -> None:
    bills = {}
    for env, tier in cost_tables.SELFNEST_VARIANTS:
        bills[cost_tables.column_name(env, tier)] = cost.aws_bill(as_deployment(assemblies[variant_for(env, tier)]))
    wanted = cost_tables.table(bills)
    for page in cost_tables.PAGES:
        text = page.read_text(encoding="utf-8")
        block = text.split(cost_tables.marker("selfnest") + "\n", 1)[1].split(
            "\n" + cost_tables.marker("selfnest", end=True), 1)[0]
        assert block == wanted, f"{page.name}'s Selfnest cost table is out of date: run `{cost_tables.COMMAND}`"


# Issue 15: the learner's shape ("lab") idles at most this much a day, list price.
LEARNER_BUDGET_PER_DAY = 1.50
LAB = "lab"


def test_lab_is_the_cheapest_environment_when_idle(assemblies: Assemblies) -> None:
    bills = {name: cost.aws_bill(as_deployment(assemblies[name])) for name in VARIANTS}
    assert min(bills, key=lambda name: bills[name].idle_per_day) == LAB, {
        name: round(bill.idle_per_day, 2) for name, bill in bills.items()}


def test_lab_idles_within_the_learner_budget(assemblies: Assemblies) -> None:
    """The lab's whole always-on bill, nothing left out: with the API on IAM database authentication and the master
    password managed by RDS, no rotation function runs in the VPC and no Secrets Manager endpoint is billed."""
    bill = cost.aws_bill(as_deployment(assemblies[LAB]))
    assert bill.idle_per_day <= LEARNER_BUDGET_PER_DAY, cost.render(bill)
