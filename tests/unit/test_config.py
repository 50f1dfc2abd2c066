"""Every config mistake is one line naming the file, the key and what is allowed — never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from refarch.stacks.selfnest import __main__ as selfnest_app
from refarch.stacks.selfnest.config import CONFIG_DIR, ConfigError, available_environments, load_settings, subnet_cidrs
from refarch.tools import preflight, synth

from tests.entry_points import run_main

ROOT = Path(__file__).resolve().parents[2]
TWO_ZONES = ["eu-west-1a", "eu-west-1b"]


def write_config(directory: Path, edit: dict[str, Any], drop: tuple[str, ...] = (), *, base: str = "dev") -> Path:
    """A copy of config/<base>.yaml with `edit` (dotted keys) applied and `drop` keys removed, as staging.yaml."""
    config = yaml.safe_load((CONFIG_DIR / f"{base}.yaml").read_text(encoding="utf-8"))
    for dotted, value in edit.items():
        *parents, leaf = dotted.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    for dotted in drop:
        *parents, leaf = dotted.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        del node[leaf]
    (directory / "staging.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return directory


def error_for(directory: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings("staging", config_dir=directory)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert "staging.yaml" in message
    return message


@pytest.mark.parametrize(("choice", "count"), [("none", 0), ("single", 1), ("one_per_az", 2)])
def test_nat_gateway_count_follows_the_choice(tmp_path: Path, choice: str, count: int) -> None:
    write_config(tmp_path, {"network.nat_gateways": choice, "network.availability_zones": TWO_ZONES})
    assert load_settings("staging", config_dir=tmp_path).network.nat_gateway_count == count


def test_shipped_environments_are_valid() -> None:
    assert load_settings("prod").network.nat_gateway_count == 3
    assert load_settings("dev").network.nat_gateway_count <= 1  # dev stays cheap: no NAT, or one shared


def test_unknown_environment_lists_the_known_ones() -> None:
    known = ", ".join(available_environments())
    assert known.startswith("dev, ")
    with pytest.raises(ConfigError,
                       match=rf"unknown environment 'staging'.*config/staging.yaml.*available: {known}\)$"):
        load_settings("staging")


def test_unknown_key_names_the_allowed_keys(tmp_path: Path) -> None:
    message = error_for(write_config(tmp_path, {"network.nat_gateway": "none"}))
    assert "network.nat_gateway: unknown key" in message
    assert "nat_gateways" in message and "vpc_cidr" in message


def test_wrong_type(tmp_path: Path) -> None:
    message = error_for(write_config(tmp_path, {"database.allocated_storage_gib": "twenty"}))
    assert "database.allocated_storage_gib: expected int" in message and "'twenty'" in message


def test_missing_key(tmp_path: Path) -> None:
    message = error_for(write_config(tmp_path, {}, drop=("web.waf",)))
    assert "web.waf: missing" in message


def test_value_not_in_the_allowed_set(tmp_path: Path) -> None:
    message = error_for(write_config(tmp_path, {"network.nat_gateways": "one"}))
    assert "network.nat_gateways: 'one' is not allowed" in message and "'none'" in message


@pytest.mark.parametrize(("cidr", "expected"), [
    ("10.0.0.0/8", "prefix must be from /16 to /28 (got /8)"),
    ("10.0.0.0/29", "prefix must be from /16 to /28 (got /29)"),
    ("10.0.0.300/16", "must be an IPv4 network"),
])
def test_vpc_cidr_outside_16_to_28(tmp_path: Path, cidr: str, expected: str) -> None:
    message = error_for(write_config(tmp_path, {"network.vpc_cidr": cidr}))
    assert "network.vpc_cidr:" in message and expected in message


def test_subnet_masks_that_do_not_fit_the_vpc(tmp_path: Path) -> None:
    message = error_for(write_config(tmp_path, {"network.vpc_cidr": "10.0.0.0/22",
                                                "network.subnet_masks": {"public": 24, "app": 24, "data": 24}}))
    assert "network:" in message and "do not fit in VPC 10.0.0.0/22" in message and "app=/24" in message


def test_subnet_mask_out_of_range(tmp_path: Path) -> None:
    message = error_for(write_config(tmp_path, {"network.subnet_masks": {"public": 24, "app": 30, "data": 24}}))
    assert "network.subnet_masks.app: 30 is out of range (allowed: 16 to 28)" in message


@pytest.mark.parametrize("zones", [["eu-west-1a"], ["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1d"]])
def test_availability_zone_count_out_of_range(tmp_path: Path, zones: list[str]) -> None:
    message = error_for(write_config(tmp_path, {"network.availability_zones": zones}))
    assert f"network.availability_zones: must list 2 to 3 availability zones (got {len(zones)})" in message


def test_zone_from_another_region(tmp_path: Path) -> None:
    message = error_for(write_config(tmp_path, {"network.availability_zones": ["eu-west-1a", "us-east-1b"]}))
    assert "'us-east-1b' is not a zone of region eu-west-1" in message


def test_cross_field_rules(tmp_path: Path) -> None:
    assert "must be at least allocated_storage_gib" in error_for(
        write_config(tmp_path, {"database.max_allocated_storage_gib": 30, "database.allocated_storage_gib": 40}))
    assert "memory_mib 4096 is not a Fargate size for cpu 256 (allowed: 512, 1024, 2048)" in error_for(
        write_config(tmp_path, {"web.memory_mib": 4096}))
    assert "is not a CloudWatch Logs retention period" in error_for(
        write_config(tmp_path, {"network.flow_log_retention_days": 31}))


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "staging.yaml").write_text("region: eu-west-1\nnetwork: [unclosed\n", encoding="utf-8")
    assert "not valid YAML at line" in error_for(tmp_path)


def test_subnet_allocation_is_aligned_and_inside_the_vpc(tmp_path: Path) -> None:
    write_config(tmp_path, {"network.vpc_cidr": "10.20.0.0/16", "network.availability_zones": TWO_ZONES,
                            "network.subnet_masks": {"public": 24, "app": 22, "data": 24}})
    allocation = subnet_cidrs(load_settings("staging", config_dir=tmp_path).network)
    assert allocation["app"] == ["10.20.4.0/22", "10.20.8.0/22"]  # aligned to /22 after the two public /24s


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "refarch.tools.synth", "--env", "staging"],
    [sys.executable, "-m", "refarch.stacks.selfnest"],
])
def test_entry_points_print_one_line_and_exit_non_zero(command: list[str]) -> None:
    """The processes themselves, once each (`make synth` and the app `cdk synth` runs)."""
    env = {**os.environ, "CDK_CONTEXT_JSON": '{"env": "staging"}'}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    assert "unknown environment 'staging'" in single_error_line(result)


def in_process(command: list[str], *, context: dict[str, object]) -> subprocess.CompletedProcess[str]:
    """An entry point of test_entry_points_print_one_line_and_exit_non_zero, called in this process."""
    if command[-1] == "refarch.stacks.selfnest":
        return run_main(lambda _: selfnest_app.main(context), [])
    return run_main(synth.main, command[3:])


def single_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The entry point exited 2 with exactly one line on stderr; that line."""
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip() and "!!" not in line]  # "!!": jsii banner
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_queue_visibility_shorter_than_six_consumer_timeouts_is_refused(tmp_path: Path) -> None:
    message = error_for(write_config(tmp_path, {"messaging.consumer_timeout_seconds": 60,
                                                "messaging.visibility_timeout_seconds": 300}))
    assert ("messaging: visibility_timeout_seconds (300) must be at least 6 x consumer_timeout_seconds (60) = 360"
            in message)


def test_exactly_six_consumer_timeouts_is_accepted(tmp_path: Path) -> None:
    write_config(tmp_path, {"messaging.consumer_timeout_seconds": 60, "messaging.visibility_timeout_seconds": 360})
    assert load_settings("staging", config_dir=tmp_path).messaging.visibility_timeout_seconds == 360


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("identity.threat_protection", "strict", "identity.threat_protection: 'strict' is not allowed (allowed: "
                                             "'enforced', 'audit' or 'off')"),
    ("identity.password_min_length", 8, "identity.password_min_length: 8 is out of range (allowed: 12 to 99)"),
    ("messaging.batch_size", 11, "messaging.batch_size: 11 is out of range (allowed: 1 to 10)"),
])
def test_identity_and_messaging_values_are_checked(tmp_path: Path, key: str, value: object, expected: str) -> None:
    assert expected in error_for(write_config(tmp_path, {key: value}))


def test_web_callback_must_be_https(tmp_path: Path) -> None:
    message = error_for(write_config(tmp_path, {"identity.web_callback_urls": ["http://app.example/cb"]}))
    assert ("identity.web_callback_urls.0: 'http://app.example/cb' is not valid here (an https:// URL of your web "
            "app's sign-in callback)") in message

def write_prod_config(directory: Path, edit: dict[str, Any]) -> Path:
    """Like write_config, from config/prod.yaml (the shape with an AWS Backup plan and a DR region)."""
    return write_config(directory, edit, base="prod")


@pytest.mark.parametrize(("edit", "expected"), [
    ({"backup.bucket.weekly.expire_after_days": 90},
     "backup.bucket.weekly: expiry at day 90 after GLACIER_IR at day 30: Glacier Instant Retrieval has a 90-day "
     "minimum storage duration (expire at day 120 or later)"),
    ({"backup.bucket.daily.transitions": {"STANDARD_IA": 7}},
     "backup.bucket.daily: STANDARD_IA at day 7: S3 moves objects to Standard-IA only once they are at least 30 "
     "days old"),
    ({"backup.bucket.monthly.transitions": {"GLACIER": 30, "DEEP_ARCHIVE": 90}},
     "backup.bucket.monthly: DEEP_ARCHIVE at day 90 after GLACIER at day 30: Glacier Flexible Retrieval has a "
     "90-day minimum storage duration (move at day 120 or later)"),
    ({"backup.bucket.monthly.expire_after_days": 200},
     "backup.bucket.monthly: expiry at day 200 after DEEP_ARCHIVE at day 120: Glacier Deep Archive has a 180-day "
     "minimum storage duration (expire at day 300 or later)"),
    ({"backup.bucket.weekly.transitions": {"GLACIER_DEEP": 30}},
     "backup.bucket.weekly.transitions.GLACIER_DEEP: 'GLACIER_DEEP' is not allowed (allowed: 'STANDARD_IA'"),
])
def test_lifecycle_rule_that_breaks_an_s3_minimum_is_refused_in_one_line(tmp_path: Path, edit: dict[str, Any],
                                                                          expected: str) -> None:
    assert expected in error_for(write_prod_config(tmp_path, edit))


def test_backup_plan_cold_storage_and_vault_lock_rules(tmp_path: Path) -> None:
    assert ("backup.plan.monthly: deletion at day 100 after cold storage at day 30: AWS Backup keeps cold recovery "
            "points at least 90 days (delete at day 120 or later)") in error_for(
        write_prod_config(tmp_path, {"backup.plan.monthly.delete_after_days": 100}))
    assert "daily.delete_after_days (3) is outside the vault lock's 7 to 2557 days" in error_for(
        write_prod_config(tmp_path, {"backup.plan.daily.delete_after_days": 3}))
    assert "backup.plan.vault_lock.changeable_for_days: 1 is out of range (allowed: 3 to 36500)" in error_for(
        write_prod_config(tmp_path, {"backup.plan.vault_lock.changeable_for_days": 1}))


def test_dr_settings_and_replica_regions() -> None:
    dev, prod = load_settings("dev"), load_settings("prod", dr_tier="backup_restore")
    assert dev.dr.tier == prod.dr.tier == "backup_restore"
    # Backups are copied to the DR region wherever one is configured (dev has none until lab 11 adds one).
    assert dev.dr.copy_region == dev.dr.region != dev.region
    assert prod.dr.copy_region == prod.dr.region != prod.region
    assert prod.dr.replica_regions == []
    pilot = load_settings("prod", dr_tier="pilot_light")
    assert pilot.dr.tier == "pilot_light" and pilot.dr.replica_regions == [pilot.dr.region]


@pytest.mark.parametrize(("environment", "tier", "expected"), [
    ("prod", "multi_site", "config/prod.yaml with dr_tier=multi_site: dr.tier: 'multi_site' is not allowed "
                           "(allowed: 'backup_restore', 'pilot_light' or 'warm_standby')"),
    # What dev lacks for a replica (a DR region, or its network once lab 11 adds the region): one line either way.
    ("dev", "pilot_light", "config/dev.yaml with dr_tier=pilot_light: dr: tier pilot_light needs dr."),
])
def test_dr_tier_override_is_validated_like_config(environment: str, tier: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environment, dr_tier=tier)
    assert str(caught.value) == expected or str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_dr_region_and_network_must_be_separate(tmp_path: Path) -> None:
    assert "dr.region: must differ from region (eu-west-1)" in error_for(
        write_prod_config(tmp_path, {"dr.region": "eu-west-1", "dr.availability_zones": ["eu-west-1a"],
                                     "dr.tier": "backup_restore"}))
    assert "dr.vpc_cidr: 10.30.0.0/16 overlaps network.vpc_cidr 10.30.0.0/16" in error_for(
        write_prod_config(tmp_path, {"dr.vpc_cidr": "10.30.0.0/16"}))


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "refarch.tools.synth", "--env", "prod", "--dr-tier", "hot"],
    [sys.executable, "-m", "refarch.stacks.selfnest"],
])
def test_a_bad_dr_tier_stops_the_entry_points_with_one_line(command: list[str]) -> None:
    result = in_process(command, context={"env": "prod", "dr_tier": "hot"})
    assert "dr.tier: 'hot' is not allowed" in single_error_line(result)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("chat.max_frame_bytes", 65536, "chat.max_frame_bytes: 65536 is out of range (allowed: 256 to 32768)"),
    ("chat.join_minutes_before_start", -5, "chat.join_minutes_before_start: -5 is out of range (allowed: 0 to 120)"),
    ("chat.log_retention_days", 10, "chat.log_retention_days: 10 is not a CloudWatch Logs retention period"),
    ("chat.message_retention_days", 0, "chat.message_retention_days: 0 is out of range (allowed: 1 to 3650)"),
])
def test_chat_values_are_checked(tmp_path: Path, key: str, value: object, expected: str) -> None:
    assert expected in error_for(write_config(tmp_path, {key: value}))


def test_chat_burst_below_the_steady_rate_is_refused(tmp_path: Path) -> None:
    message = error_for(write_config(tmp_path, {"chat.throttle_rate_per_second": 100, "chat.throttle_burst": 50}))
    assert "chat: throttle_burst (50) must be at least throttle_rate_per_second (100)" in message


def test_a_replicated_chat_history_may_be_provisioned(tmp_path: Path) -> None:
    """The history is a global table in every tier, so provisioning it (lab 07) and pilot light go together."""
    write_prod_config(tmp_path, {"chat.provisioned_tables": {"messages": {"read_units": 50, "write_units": 100}},
                                 "dr.tier": "pilot_light"})
    settings = load_settings("staging", config_dir=tmp_path)
    assert settings.chat.provisioned_tables["messages"].write_units == 100 and settings.dr.replica_regions


def test_engine_version_is_a_constant_the_cdk_knows(tmp_path: Path) -> None:
    from refarch.constructs.aws.database import POSTGRES_VERSIONS

    for environment in available_environments():
        version = load_settings(environment).database.engine_version
        assert POSTGRES_VERSIONS[version].postgres_full_version == version
    message = error_for(write_config(tmp_path, {"database.engine_version": "17.99"}))
    assert "database.engine_version: 17.99 is not a PostgreSQL version aws-cdk-lib knows (known 17.x: 17.1," in message
    assert "17.9;" in message


BACKUP_RESTORE = {"dr.tier": "backup_restore"}


def test_placeholders_are_found_by_key(tmp_path: Path) -> None:
    """Web and identity placeholders, whatever tier prod.yaml names (warm standby's own: tests/infra/aws/test_dr.py)."""
    write_prod_config(tmp_path, {**BACKUP_RESTORE,
        "web.certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000",
        "identity.web_callback_urls": ["https://app.selfnest.example/auth/callback"]})
    found = load_settings("staging", config_dir=tmp_path).placeholders()
    assert [line.split(": ")[1] for line in found] == ["web.certificate_arn", "identity.web_callback_urls.0"]
    assert all(line.startswith("config/staging.yaml: ") and "\n" not in line for line in found)
    write_prod_config(tmp_path, {**BACKUP_RESTORE,
        "web.certificate_arn": "arn:aws:acm:eu-west-1:210987654321:certificate/6f1c2d3e-aaaa-bbbb-cccc-0123456789ab",
        "identity.web_callback_urls": ["https://app.selfnest.health/auth/callback", "https://localhost:5173/cb"]})
    assert load_settings("staging", config_dir=tmp_path).placeholders() == []
    for example in ("https://selfnest.example.com/cb", "https://app.test/cb", "https://example.org/cb"):
        write_prod_config(tmp_path, {**BACKUP_RESTORE, "identity.web_callback_urls": [example]})
        assert "identity.web_callback_urls.0" in " ".join(load_settings("staging", config_dir=tmp_path).placeholders())
    write_prod_config(tmp_path, {**BACKUP_RESTORE, "web.certificate_arn": None,
                                 "identity.web_callback_urls": ["https://a.io/cb"]})
    assert load_settings("staging", config_dir=tmp_path).placeholders() == []


def test_deploy_refuses_placeholders_before_cdk_runs() -> None:
    """`make deploy` runs the preflight before `cdk deploy` (dry run: this test never deploys), and the preflight
    prints one line per placeholder and fails, or passes silently once config holds none."""
    plan = subprocess.run(["make", "--no-print-directory", "-n", "deploy", "ENV=prod"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.splitlines()
    preflight_line = next(i for i, line in enumerate(plan) if "refarch.tools.preflight --env prod" in line)
    deploy_line = next(i for i, line in enumerate(plan) if line.startswith("cdk deploy --all -c env=prod"))
    assert preflight_line < deploy_line
    as_process = subprocess.run([sys.executable, "-m", "refarch.tools.preflight", "--env", "prod"], cwd=ROOT,
                                capture_output=True, text=True, check=False)
    assert as_process.stderr.splitlines() == [f"error: {line}" for line in load_settings("prod").placeholders()]
    for environment in available_environments():   # the other cases in this process (tests/entry_points.py)
        found = run_main(preflight.main, ["--env", environment])
        expected = load_settings(environment).placeholders()
        assert found.stderr.splitlines() == [f"error: {line}" for line in expected]
        assert found.returncode == (2 if expected else 0)
        if environment == "prod":
            assert (as_process.returncode, as_process.stderr) == (found.returncode, found.stderr)


@pytest.mark.parametrize(("prefix", "problem"), [
    ("Selfnest", "is not a Cognito domain prefix"),
    ("-selfnest", "is not a Cognito domain prefix"),
    ("my-aws-login", "contains 'aws', which Cognito reserves"),
    ("cognito-dev", "contains 'cognito'"),
])
def test_a_domain_prefix_cognito_refuses_is_one_line(tmp_path: Path, prefix: str, problem: str) -> None:
    write_config(tmp_path, {"identity.domain_prefix": prefix})
    message = error_for(tmp_path)
    assert "identity.domain_prefix" in message and problem in message


def test_an_ses_sender_outside_its_verified_domain_is_refused(tmp_path: Path) -> None:
    write_config(tmp_path, {"identity.ses_email": {"from_address": "no-reply@other.example",
                                                   "verified_domain": "selfnest.example"}})
    assert "is not an address at verified_domain 'selfnest.example'" in error_for(tmp_path)


def test_more_budget_alerts_than_aws_allows_are_refused(tmp_path: Path) -> None:
    write_config(tmp_path, {"operations.budget.actual_alert_percents": [10, 20, 30, 40, 50, 60, 70, 80],
                            "operations.budget.forecast_alert_percents": [80, 90, 100]})
    assert "11 alert thresholds; AWS Budgets allows at most 10 notifications" in error_for(tmp_path)


def test_the_budget_cost_tag_must_be_one_of_the_tags(tmp_path: Path) -> None:
    write_config(tmp_path, {"operations.budget.cost_tag": "cost-center"})
    message = error_for(tmp_path)
    assert "operations.budget.cost_tag: 'cost-center' is not one of tags" in message


def test_an_alarm_email_that_is_not_an_address_is_refused(tmp_path: Path) -> None:
    write_config(tmp_path, {"operations.alarm_email": "ops team"})
    assert "operations.alarm_email: 'ops team' is not valid here (an email address" in error_for(tmp_path)


def test_secrets_endpoint_zones_fit_the_zones(tmp_path: Path) -> None:
    message = error_for(write_config(tmp_path, {"network.secrets_endpoint_zones": 3,
                                                "network.availability_zones": TWO_ZONES}))
    assert "network: secrets_endpoint_zones (3) is more than the 2 availability_zones" in message
    write_config(tmp_path, {"network.secrets_endpoint_zones": 1})
    assert load_settings("staging", config_dir=tmp_path).network.secrets_endpoint_availability_zones == TWO_ZONES[:1]


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("encryption", {"keys": "one"}, "'per_purpose' or 'per_environment'"),
    ("operations.alarms", "some", "'all' or 'paging'"),
])
def test_cost_knobs_name_their_choices(tmp_path: Path, key: str, value: object, allowed: str) -> None:
    message = error_for(write_config(tmp_path, {key: value}))
    assert "is not allowed" in message and allowed in message


def test_a_service_may_idle_at_zero_tasks_but_not_cap_at_zero(tmp_path: Path) -> None:
    write_config(tmp_path, {"web.min_tasks": 0})
    assert load_settings("staging", config_dir=tmp_path).web.min_tasks == 0
    message = error_for(write_config(tmp_path, {"web.min_tasks": 0, "web.max_tasks": 0}))
    assert "web.max_tasks: 0 is out of range (allowed: 1 to 100)" in message
