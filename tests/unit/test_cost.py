"""refarch cost's arithmetic and price sheets, on small deployments built here (the real ones: tests/infra)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from refarch.tools import cost
from refarch.tools.deployment import HOURS_PER_MONTH, CfnDeployment

ROOT = Path(__file__).resolve().parents[2]
SHEETS = sorted(cost.PRICING_DIR.glob("*-*.yaml"))


def deployment(resources: dict[str, Any], region: str = "eu-west-1") -> CfnDeployment:
    return CfnDeployment("test", region, {"web": {"Resources": resources}}, {"web": region})


@pytest.mark.parametrize("sheet", SHEETS, ids=[sheet.name for sheet in SHEETS])
def test_every_price_is_dated_and_names_its_source_page(sheet: Path) -> None:
    cloud, region = sheet.stem.split("-", 1)
    loaded = cost.load_sheet(cloud, region)
    assert loaded.as_of and loaded.region == region
    raw = yaml.safe_load(sheet.read_text(encoding="utf-8"))["prices"]
    assert set(loaded.prices) == set(raw)
    for price in loaded.prices.values():
        assert price.source.startswith("https://") and price.unit and price.amount > 0


def test_aws_sheets_price_the_same_items_in_every_region() -> None:
    keys = [set(cost.load_sheet("aws", sheet.stem.split("-", 1)[1]).prices) for sheet in SHEETS
            if sheet.name.startswith("aws-")]
    assert keys and all(found == keys[0] for found in keys)


def test_a_missing_price_names_the_file_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "aws-xx-test-1.yaml").write_text("as_of: '2026-01-01'\nprices: {}\n", encoding="utf-8")
    (tmp_path / "assumptions.yaml").write_text("aws: {}\n", encoding="utf-8")
    nat = {"Nat": {"Type": "AWS::EC2::NatGateway", "Properties": {}}}
    with pytest.raises(cost.PricingError, match=r"aws-xx-test-1\.yaml: prices\.nat_gateway_hour: missing"):
        cost.aws_bill(deployment(nat, "xx-test-1"), tmp_path)


def test_a_region_without_a_sheet_is_one_clear_error() -> None:
    with pytest.raises(cost.PricingError, match="no price sheet for aws region mars-north-1"):
        cost.load_sheet("aws", "mars-north-1")


def test_public_ipv4_addresses_and_keys_are_billed_always_on() -> None:
    sheet = cost.load_sheet("aws", "eu-west-1")
    bill = cost.aws_bill(deployment({
        "Lb": {"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
               "Properties": {"Scheme": "internet-facing", "Subnets": ["a", "b", "c"]}},
        "Eip": {"Type": "AWS::EC2::EIP", "Properties": {}},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
    }))
    ipv4 = [line for line in bill.lines if line.price_key == "public_ipv4_hour"]
    assert sum(line.quantity for line in ipv4) == 4 * HOURS_PER_MONTH  # one per ALB subnet, one per EIP
    assert all(line.always_on for line in ipv4)
    expected = (HOURS_PER_MONTH * sheet["alb_hour"].amount + 4 * HOURS_PER_MONTH * sheet["public_ipv4_hour"].amount
                + sheet["kms_key_month"].amount)
    assert bill.always_on_monthly == pytest.approx(expected)
    assert bill.idle_per_day == pytest.approx(expected * 24 / HOURS_PER_MONTH)


def test_usage_items_carry_their_assumed_volume_and_stay_out_of_the_idle_cost() -> None:
    bill = cost.aws_bill(deployment({"Topic": {"Type": "AWS::SNS::Topic", "Properties": {}}}))
    assumed = cost.load_assumptions("aws")["sns_publishes"]
    (line,) = bill.lines
    assert not line.always_on and line.assumption is not None and assumed.meaning in line.assumption
    assert line.quantity == pytest.approx(assumed.quantity / 1_000_000)
    assert bill.idle_per_day == 0 and bill.usage_monthly == pytest.approx(line.monthly)


def test_fargate_bills_the_autoscaling_floor_with_the_task_shape() -> None:
    sheet = cost.load_sheet("aws", "eu-west-1")
    bill = cost.aws_bill(deployment({
        "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
            "Cpu": "512", "Memory": "1024", "RuntimePlatform": {"CpuArchitecture": "ARM64"}}},
        "Service": {"Type": "AWS::ECS::Service", "Properties": {
            "DesiredCount": 5, "TaskDefinition": {"Ref": "Task"},
            "NetworkConfiguration": {"AwsvpcConfiguration": {"AssignPublicIp": "DISABLED"}}}},
        "Scaling": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {
            "MinCapacity": 2, "MaxCapacity": 4, "ResourceId": {"Fn::Join": ["", ["service/", {"Ref": "Service"}]]}}},
    }))
    by_key = {line.price_key: line for line in bill.lines}
    assert by_key["fargate_arm_vcpu_hour"].quantity == 2 * 0.5 * HOURS_PER_MONTH
    assert by_key["fargate_arm_gb_hour"].monthly == pytest.approx(2 * 1 * HOURS_PER_MONTH
                                                                  * sheet["fargate_arm_gb_hour"].amount)
    assert "public_ipv4_hour" not in by_key


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refarch.tools.cli", "cost", *args], cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=120)


@pytest.mark.parametrize("args", [("--stack", "prod"), ("--azure", "--env", "prod"), ("--env", "nope"),
                                  ("--env", "prod", "--dr-tier", "bogus"), ("--azure", "--stack", "nope")])
def test_wrong_arguments_are_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("refarch: error: ")


def test_a_resource_type_with_no_price_and_no_reason_is_listed_not_dropped() -> None:
    bill = cost.aws_bill(deployment({"Thing": {"Type": "AWS::Example::Unknown", "Properties": {}},
                                     "Role": {"Type": "AWS::IAM::Role", "Properties": {}}}))
    assert bill.unpriced == ["AWS::Example::Unknown"]
    assert "NOT PRICED" in cost.render(bill) and "AWS::Example::Unknown" in cost.render(bill)


def test_route53_health_checks_bill_the_check_and_each_option_they_use() -> None:
    """An AWS endpoint's check, plus one option charge each for HTTPS, string matching, the 10 s interval and latency
    measurement; failover alias records to a load balancer bill no queries."""
    sheet = cost.load_sheet("aws", "eu-west-1")
    check, option = sheet["route53_health_check_month"].amount, sheet["route53_health_check_option_month"].amount
    cases = [({"Type": "HTTP", "RequestInterval": 30}, 0), ({"Type": "HTTPS", "RequestInterval": 30}, 1),
             ({"Type": "HTTPS_STR_MATCH", "RequestInterval": 10, "MeasureLatency": True}, 4)]
    for config, options in cases:
        bill = cost.aws_bill(deployment({
            "Check": {"Type": "AWS::Route53::HealthCheck", "Properties": {"HealthCheckConfig": config}},
            "Record": {"Type": "AWS::Route53::RecordSet", "Properties": {"Failover": "PRIMARY"}}}))
        assert bill.unpriced == []
        assert bill.always_on_monthly == pytest.approx(check + options * option), config
