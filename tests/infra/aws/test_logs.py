"""Nothing is left behind, nothing is unencrypted: every function's log group is the stack's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import custom_resources
from refarch.stacks.selfnest.app import SelfnestEnvironment
from refarch.stacks.selfnest.config import load_settings

from .assembly import Assembly, Resource, synthesize


def check_owned_group(assembly: Assembly, part: str, group_id: str, *, retention_days: int | None = None) -> None:
    group = assembly.resources(part, "AWS::Logs::LogGroup")[group_id]
    assert "KmsKeyId" in group["Properties"], f"{part}/{group_id} is not KMS-encrypted"
    assert "RetentionInDays" in group["Properties"], f"{part}/{group_id} never expires"
    if retention_days is not None:
        assert group["Properties"]["RetentionInDays"] == retention_days
    assert group["DeletionPolicy"] == ("Retain" if assembly.settings.retain_data else "Delete")


def functions_without_owned_logs(assembly: Assembly) -> list[str]:
    missing = []
    for part, logical_id, function in assembly.all_resources("AWS::Lambda::Function"):
        group = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
        if not (isinstance(group, dict) and group.get("Ref") in assembly.resources(part, "AWS::Logs::LogGroup")):
            missing.append(f"{part}/{logical_id}")
    return missing


def test_every_function_including_cdks_helpers_logs_into_a_group_its_stack_owns(assembly: Assembly) -> None:
    """CDK's helpers (restrict the default security group, empty buckets on delete, ...) otherwise get
    /aws/lambda/<name> from Lambda on their first run: plaintext, kept forever, and left behind by `cdk destroy`."""
    assert functions_without_owned_logs(assembly) == []
    helpers = 0
    for part, _, function in assembly.all_resources("AWS::Lambda::Function"):
        check_owned_group(assembly, part, function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"])
        helpers += "Custom::" in function.get("Metadata", {}).get("aws:cdk:path", "")
    assert helpers >= 1   # the network stack's default-security-group helper, at least


def rotations(assembly: Assembly) -> list[Resource]:
    """Every secret-rotation application (the master secret's where a DR replica keeps it ours, any a fork adds);
    elsewhere RDS rotates the master password itself and there is none."""
    found = list(assembly.resources("data", "AWS::Serverless::Application").values())
    assert bool(found) == bool(assembly.settings.dr.replica_regions), "rotation application where RDS rotates"
    return found


def test_only_variants_with_a_database_replica_run_a_rotation_function(assembly: Assembly) -> None:
    rotations(assembly)


def test_the_rotation_functions_default_log_group_is_created_first_encrypted_and_expiring(
        with_rotation: Assembly) -> None:
    assembly = with_rotation
    for application in rotations(assembly):
        name = f"/aws/lambda/{application['Properties']['Parameters']['functionName']}"
        [group_id] = [logical_id for logical_id, group in assembly.resources("data", "AWS::Logs::LogGroup").items()
                      if group["Properties"].get("LogGroupName") == name]
        check_owned_group(assembly, "data", group_id, retention_days=assembly.settings.database.log_retention_days)
        assert group_id in application["DependsOn"]


def test_the_rotation_function_calls_the_standard_endpoint_that_private_dns_answers(with_rotation: Assembly) -> None:
    assembly = with_rotation
    for application in rotations(assembly):
        endpoint = json.dumps(application["Properties"]["Parameters"]["endpoint"])
        assert "https://secretsmanager." in endpoint and "VpcEndpoint" not in endpoint and "vpce" not in endpoint
    [secrets_manager] = [e["Properties"] for _, _, e in assembly.all_resources("AWS::EC2::VPCEndpoint")
                         if "secretsmanager" in json.dumps(e["Properties"]["ServiceName"])]
    assert secrets_manager["PrivateDnsEnabled"] is True


def test_dev_keeps_no_log_group_after_destroy(dev: Assembly) -> None:
    kept = [f"{part}/{logical_id}" for part, logical_id, group in dev.all_resources("AWS::Logs::LogGroup")
            if group.get("DeletionPolicy") != "Delete"]
    assert kept == []


def test_a_helper_function_a_fork_adds_gets_an_owned_group_too(tmp_path: Path) -> None:
    """CDK's SDK-call custom resource is an L2 function without a log group: the stack's aspect gives it one."""
    def add_sdk_call(environment: SelfnestEnvironment) -> None:
        call = custom_resources.AwsSdkCall(service="STS", action="GetCallerIdentity",
                                           physical_resource_id=custom_resources.PhysicalResourceId.of("probe"))
        custom_resources.AwsCustomResource(
            environment.web, "Probe", on_create=call, install_latest_aws_sdk=False,
            policy=custom_resources.AwsCustomResourcePolicy.from_sdk_calls(
                resources=custom_resources.AwsCustomResourcePolicy.ANY_RESOURCE))

    tampered = synthesize(load_settings("dev"), tmp_path, tamper=add_sdk_call)
    added: list[dict[str, Any]] = [f for _, _, f in tampered.all_resources("AWS::Lambda::Function")
                                   if "AWS679f53fac002430cb0da5b7982bd2287" in f["Metadata"]["aws:cdk:path"]]
    assert added and functions_without_owned_logs(tampered) == []
