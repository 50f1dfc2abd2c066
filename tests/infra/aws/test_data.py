"""Data tier: where the database lives, how it is encrypted, rotated and protected in each environment."""

from __future__ import annotations

import json
from typing import Any

from refarch.constructs.aws.database import APPLICATION_LOGIN

from .assembly import Assembly, get_att, service_task_definition


def database(assembly: Assembly) -> tuple[str, dict[str, Any]]:
    return assembly.only("data", "AWS::RDS::DBInstance")


def customer_managed_key(assembly: Assembly, part: str, value: Any) -> dict[str, Any]:
    """The KMS key a KmsKeyId-style property points at; fails unless it is a key defined in our templates."""
    resolved = assembly.resolve(value)
    logical_id = resolved["Fn::GetAtt"][0] if "Fn::GetAtt" in resolved else resolved["Ref"]
    for template in assembly.templates.values():
        key = template["Resources"].get(logical_id)
        if key is not None:
            assert key["Type"] == "AWS::KMS::Key"
            found: dict[str, Any] = key
            return found
    raise AssertionError(f"{value} is not one of our KMS keys")


def test_database_sits_in_the_isolated_data_subnets_and_is_private(assembly: Assembly) -> None:
    _, instance = database(assembly)
    props = instance["Properties"]
    assert props["PubliclyAccessible"] is False
    [(_, subnet_group)] = assembly.resources("data", "AWS::RDS::DBSubnetGroup").items()
    subnets = [assembly.resolve(subnet)["Ref"] for subnet in subnet_group["Properties"]["SubnetIds"]]
    network = assembly.resources("network", "AWS::EC2::Subnet")
    tiers = {next(t["Value"] for t in network[s]["Properties"]["Tags"] if t["Key"] == "aws-cdk:subnet-name")
             for s in subnets}
    assert tiers == {"data"} and len(subnets) == len(assembly.settings.network.availability_zones)
    assert int(props["Port"]) == 5432


def test_storage_secret_insights_and_logs_use_customer_managed_keys(assembly: Assembly) -> None:
    _, instance = database(assembly)
    props = instance["Properties"]
    assert props["StorageEncrypted"] is True
    storage_key = customer_managed_key(assembly, "data", props["KmsKeyId"])
    assert storage_key["Properties"]["EnableKeyRotation"] is True
    customer_managed_key(assembly, "data", props["PerformanceInsightsKMSKeyId"])
    for secret in assembly.resources("data", "AWS::SecretsManager::Secret").values():   # our own master secret
        customer_managed_key(assembly, "data", secret["Properties"]["KmsKeyId"])
    if "MasterUserSecret" in props:   # or the one RDS manages
        customer_managed_key(assembly, "data", props["MasterUserSecret"]["KmsKeyId"])
    for part, logical_id, log_group in assembly.all_resources("AWS::Logs::LogGroup"):
        customer_managed_key(assembly, part, log_group["Properties"].get("KmsKeyId", {"Ref": f"{logical_id}?"}))
        assert "RetentionInDays" in log_group["Properties"], f"{part}/{logical_id} keeps logs forever"


def test_exported_postgres_logs_go_to_our_encrypted_groups(assembly: Assembly) -> None:
    _, instance = database(assembly)
    identifier = instance["Properties"]["DBInstanceIdentifier"]
    names = sorted(group["Properties"]["LogGroupName"] for group in assembly.resources("data", "AWS::Logs::LogGroup")
                   .values() if group["Properties"]["LogGroupName"].startswith("/aws/rds/"))
    exported = instance["Properties"]["EnableCloudwatchLogsExports"]
    assert names == sorted(f"/aws/rds/instance/{identifier}/{kind}" for kind in exported)
    assert assembly.resources("data", "AWS::Lambda::Function") == {} or all(
        "LogRetention" not in logical_id for logical_id in assembly.resources("data", "AWS::Lambda::Function"))


def test_connections_must_use_tls(assembly: Assembly) -> None:
    [(_, parameters)] = assembly.resources("data", "AWS::RDS::DBParameterGroup").items()
    assert parameters["Properties"]["Parameters"]["rds.force_ssl"] == "1"


def has_read_replica(assembly: Assembly) -> bool:
    """Whether any stack (the DR region's) holds a read replica of this database."""
    return any("SourceDBInstanceIdentifier" in instance["Properties"]
               for _, _, instance in assembly.all_resources("AWS::RDS::DBInstance"))


def test_rds_manages_the_master_password_unless_a_read_replica_needs_our_own_secret(assembly: Assembly) -> None:
    """RDS cannot manage the master password of an instance with read replicas (rds-secrets-manager.html,
    limitations): there the secret is ours, replicated to the DR region and rotated by a function in the VPC;
    everywhere else RDS generates, stores (under our key) and rotates it, with no function and no endpoint."""
    _, instance = database(assembly)
    props = instance["Properties"]
    secrets = assembly.resources("data", "AWS::SecretsManager::Secret")
    schedules = list(assembly.resources("data", "AWS::SecretsManager::RotationSchedule").values())
    rotation_apps = list(assembly.resources("data", "AWS::Serverless::Application").values())
    if not has_read_replica(assembly):
        assert props["ManageMasterUserPassword"] is True
        assert customer_managed_key(assembly, "data", props["MasterUserSecret"]["KmsKeyId"]) == \
            customer_managed_key(assembly, "data", props["KmsKeyId"])
        assert (secrets, schedules, rotation_apps) == ({}, [], [])
        return
    assert "ManageMasterUserPassword" not in props
    [(master_id, master)] = secrets.items()
    # Kept where data is kept: older snapshots and backup copies restore with its password.
    assert master["DeletionPolicy"] == ("Retain" if assembly.settings.retain_data else "Delete")
    assert [replica["Region"] for replica in master["Properties"]["ReplicaRegions"]] == \
        assembly.settings.dr.replica_regions
    days = assembly.settings.database.secret_rotation_days
    [schedule] = schedules
    assert schedule["Properties"]["RotationRules"]["ScheduleExpression"] == f"rate({days} days)"
    [attachment_id] = [logical_id for logical_id, attachment in assembly.resources(
        "data", "AWS::SecretsManager::SecretTargetAttachment").items()
        if attachment["Properties"]["SecretId"] == {"Ref": master_id}]
    assert schedule["Properties"]["SecretId"] == {"Ref": attachment_id}
    app_group = [logical_id for logical_id, group in assembly.resources("network", "AWS::EC2::SecurityGroup").items()
                 if group["Metadata"]["aws:cdk:path"].endswith("SecurityGroups/App/Resource")]
    [rotation_app] = rotation_apps
    mapping = rotation_app["Properties"]["Location"]["ApplicationId"]["Fn::FindInMap"][0]
    assert "SingleUser" in json.dumps(assembly.templates["data"]["Mappings"][mapping])
    parameters = rotation_app["Properties"]["Parameters"]
    assert "secretsmanager" in str(parameters["endpoint"])
    assert assembly.resolve(parameters["vpcSecurityGroupIds"]) == get_att(app_group[0], "GroupId")


def test_the_api_login_has_no_password_anywhere(assembly: Assembly) -> None:
    """No secret holds the API's login: it signs in with IAM tokens (test_web, rds-db:connect)."""
    for secret in assembly.resources("data", "AWS::SecretsManager::Secret").values():
        assert APPLICATION_LOGIN not in json.dumps(secret["Properties"])
    task = service_task_definition(assembly)
    environment = {variable["Name"]: assembly.resolve(variable["Value"])
                   for variable in task["Properties"]["ContainerDefinitions"][0]["Environment"]}
    assert "DB_SECRET_ARN" not in environment
    assert (environment["DB_IAM_USER"], environment["DB_REGION"]) == (APPLICATION_LOGIN, assembly.settings.region)


def test_iam_authentication_and_backups_are_on(assembly: Assembly) -> None:
    _, instance = database(assembly)
    props = instance["Properties"]
    assert props["EnableIAMDatabaseAuthentication"] is True
    assert props["BackupRetentionPeriod"] == assembly.settings.database.backup_retention_days
    assert props["CopyTagsToSnapshot"] is True


def test_prod_is_highly_available_protected_and_snapshotted_on_delete(prod: Assembly) -> None:
    _, instance = database(prod)
    assert instance["Properties"]["MultiAZ"] is True
    assert instance["Properties"]["DeletionProtection"] is True
    assert instance["DeletionPolicy"] == "Snapshot"
    assert instance["UpdateReplacePolicy"] == "Snapshot"
    assert instance["Properties"]["DeleteAutomatedBackups"] is False
    retained = (*prod.all_resources("AWS::KMS::Key"), *prod.all_resources("AWS::Logs::LogGroup"))
    for part, logical_id, resource in retained:
        assert resource["DeletionPolicy"] == "Retain", f"{part}/{logical_id}"


def test_dev_is_single_az_and_fully_destroyable(dev: Assembly) -> None:
    _, instance = database(dev)
    assert instance["Properties"]["MultiAZ"] is False
    assert instance["Properties"]["DeletionProtection"] is False
    assert instance["DeletionPolicy"] == "Delete"
    assert instance["Properties"]["DeleteAutomatedBackups"] is True
    for part in dev.templates:
        for logical_id, resource in dev.templates[part]["Resources"].items():
            assert resource.get("DeletionPolicy", "Delete") == "Delete", f"{part}/{logical_id} would be left behind"
    for _, _, stack_bucket in dev.all_resources("AWS::S3::Bucket"):
        assert {"Key": "aws-cdk:auto-delete-objects", "Value": "true"} in stack_bucket["Properties"]["Tags"]


def test_key_policies_let_services_use_a_key_only_on_behalf_of_this_deployment(assembly: Assembly) -> None:
    """A service principal in a key policy is always pinned to our own log groups, alarms or topic."""
    expected_condition = {"logs": "kms:EncryptionContext:aws:logs:arn", "cloudwatch.amazonaws.com": "aws:SourceArn",
                          "sns.amazonaws.com": "aws:SourceArn"}
    seen = set()
    for part, logical_id, key in assembly.all_resources("AWS::KMS::Key"):
        for statement in key["Properties"]["KeyPolicy"]["Statement"]:
            service = statement["Principal"].get("Service") if isinstance(statement["Principal"], dict) else None
            if service is None:
                continue
            kind = "logs" if str(service).startswith("logs.") or "logs." in str(service) else str(service)
            assert kind in expected_condition, f"{part}/{logical_id}: unexpected service principal {service}"
            conditions = {name for operator in statement["Condition"].values() for name in operator}
            assert expected_condition[kind] in conditions, f"{part}/{logical_id}: {service} is not pinned"
            seen.add(kind)
    assert seen == set(expected_condition)
