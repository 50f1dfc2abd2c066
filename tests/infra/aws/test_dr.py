"""selfnest-<env>-dr: what each DR tier keeps in the DR region."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from refarch.stacks.selfnest.config import CONFIG_DIR, load_settings
from refarch.tools.update_safety import physical_names

from .assembly import Assembly, synthesize
from .test_backup import joined
from .test_data import customer_managed_key


def replica(assembly: Assembly) -> tuple[str, dict[str, Any]]:
    return assembly.only("dr", "AWS::RDS::DBInstance")


def test_backup_restore_keeps_only_backups_in_the_dr_region(prod: Assembly) -> None:
    assert prod.settings.dr.tier == "backup_restore"
    assert prod.settings.dr.replica_regions == []
    types = {resource["Type"] for resource in prod.templates["dr"]["Resources"].values()}
    assert "AWS::RDS::DBInstance" not in types and "AWS::EC2::VPC" not in types
    assert {"AWS::S3::Bucket", "AWS::Backup::BackupVault", "AWS::KMS::Key"} <= types


def test_pilot_light_runs_an_encrypted_cross_region_replica_of_the_primary(prod_pilot_light: Assembly) -> None:
    assembly = prod_pilot_light
    settings = assembly.settings
    assert settings.dr.replica_regions == [settings.dr.region]   # what the chat tables' TableV2(replicas=) get
    _, primary = assembly.only("data", "AWS::RDS::DBInstance")
    _, instance = replica(assembly)
    props = instance["Properties"]
    assert joined(props["SourceDBInstanceIdentifier"]) == (
        f"arn:aws:rds:{settings.region}:123456789012:db:{primary['Properties']['DBInstanceIdentifier']}")
    key = customer_managed_key(assembly, "dr", props["KmsKeyId"])
    assert key["Properties"]["EnableKeyRotation"] is True
    customer_managed_key(assembly, "dr", props["PerformanceInsightsKMSKeyId"])
    assert "StorageEncrypted" not in props   # CloudFormation refuses it on a replica; the key encrypts it
    assert props["PubliclyAccessible"] is False and props["EnableIAMDatabaseAuthentication"] is True
    assert props["DeletionProtection"] is settings.database.deletion_protection
    assert instance["DeletionPolicy"] == "Retain"
    [(_, parameters)] = assembly.resources("dr", "AWS::RDS::DBParameterGroup").items()
    assert parameters["Properties"]["Parameters"]["rds.force_ssl"] == "1"


def test_pilot_light_replica_sits_in_an_isolated_vpc_that_admits_nothing(prod_pilot_light: Assembly) -> None:
    assembly = prod_pilot_light
    resources = assembly.templates["dr"]["Resources"]
    types = {resource["Type"] for resource in resources.values()}
    assert not types & {"AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP",
                        "AWS::EC2::SecurityGroupIngress"}
    [(_, vpc)] = assembly.resources("dr", "AWS::EC2::VPC").items()
    assert vpc["Properties"]["CidrBlock"] == assembly.settings.dr.vpc_cidr
    subnets = assembly.resources("dr", "AWS::EC2::Subnet").values()
    assert sorted(s["Properties"]["AvailabilityZone"] for s in subnets) == assembly.settings.dr.availability_zones
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets)
    routes = assembly.resources("dr", "AWS::EC2::Route")
    assert routes == {}
    _, instance = replica(assembly)
    [group] = instance["Properties"]["VPCSecurityGroups"]
    replica_group = resources[group["Fn::GetAtt"][0]]["Properties"]
    assert "SecurityGroupIngress" not in replica_group
    assert assembly.resources("dr", "AWS::EC2::FlowLog")


def test_dr_keys_are_in_the_dr_region_and_retained(with_dr_region: Assembly) -> None:
    for _, key in with_dr_region.resources("dr", "AWS::KMS::Key").items():
        assert key["DeletionPolicy"] == "Retain" and key["Properties"]["EnableKeyRotation"] is True
    assert with_dr_region.regions["dr"] == with_dr_region.settings.dr.region


def test_pilot_light_keeps_live_replicas_of_chat_sessions_and_history(prod_pilot_light: Assembly) -> None:
    settings = prod_pilot_light.settings
    global_tables = {t["Properties"]["TableName"]: t["Properties"]
                     for t in prod_pilot_light.resources("chat", "AWS::DynamoDB::GlobalTable").values()}
    assert set(global_tables) == {settings.name("chat-sessions"), settings.name("chat-messages")}
    [alias] = [a for a in prod_pilot_light.resources("dr", "AWS::KMS::Alias").values()
               if a["Properties"]["AliasName"] == f"alias/{settings.name('chat-replica')}"]
    replica_key = prod_pilot_light.resources("dr", "AWS::KMS::Key")[alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]]
    assert replica_key["Properties"]["EnableKeyRotation"] is True
    for properties in global_tables.values():
        replica = next(r for r in properties["Replicas"] if r["Region"] == settings.dr.region)
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert replica["DeletionProtectionEnabled"] is True
        alias_arn = replica["SSESpecification"]["KMSMasterKeyId"]["Fn::Join"][1]
        assert f":kms:{settings.dr.region}:" in alias_arn[2] and alias_arn[-1].endswith(
            f":alias/{settings.name('chat-replica')}")
        assert {"Key": "backup-plan", "Value": "gfs"} in replica["Tags"]
    # The replica key must exist before the chat stack creates replicas that use it.
    manifest = json.loads((prod_pilot_light.outdir / "manifest.json").read_text(encoding="utf-8"))
    artifact_of = {artifact.get("displayName", ""): artifact_id
                   for artifact_id, artifact in manifest["artifacts"].items()}
    chat = manifest["artifacts"][artifact_of["selfnest-prod/chat"]]
    assert artifact_of["selfnest-prod/dr"] in chat["dependencies"]


def test_replicable_chat_tables_are_global_in_every_tier_with_replicas_only_under_pilot_light(
        assembly: Assembly) -> None:
    """Switching tiers must only add or remove replicas: CloudFormation cannot change a table's resource type."""
    settings = assembly.settings
    global_tables = {t["Properties"]["TableName"]: t["Properties"]
                     for t in assembly.resources("chat", "AWS::DynamoDB::GlobalTable").values()}
    assert set(global_tables) == {settings.name("chat-sessions"), settings.name("chat-messages")}
    for properties in global_tables.values():
        assert sorted(replica["Region"] for replica in properties["Replicas"]) == sorted(
            [settings.region, *settings.dr.replica_regions])
        assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_database_credentials_are_replicated_where_the_replica_runs(with_dr_region: Assembly) -> None:
    """A promoted replica keeps the source's passwords: its secrets (master and the API's) must outlive the primary
    region."""
    secrets = with_dr_region.resources("data", "AWS::SecretsManager::Secret").values()
    assert len(secrets) == 2
    for secret in secrets:
        replicas = [replica["Region"] for replica in secret["Properties"].get("ReplicaRegions", [])]
        assert replicas == with_dr_region.settings.dr.replica_regions


def test_runbook_recovery_environment_deploys_beside_the_dr_stack(prod_pilot_light: Assembly, tmp_path: Path) -> None:
    """docs/dr.md's failover step 3: a copy of prod named `recovery`, pointed at the DR region, synthesizes clean
    there and takes no physical name the DR region already holds (the dr stack's, the chat replicas')."""
    prod = prod_pilot_light.settings
    raw = yaml.safe_load((CONFIG_DIR / "prod.yaml").read_text(encoding="utf-8"))
    raw["region"] = prod.dr.region
    raw["network"]["availability_zones"] = prod.dr.availability_zones
    raw["dr"] = {"tier": "backup_restore", "region": None}
    (tmp_path / "recovery.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    recovery = synthesize(load_settings("recovery", config_dir=tmp_path), tmp_path / "cdk.out",
                          account=prod_pilot_light.accounts["dr"])
    assert recovery.findings == [] and set(recovery.regions.values()) == {prod.dr.region}
    taken = {name for resource in prod_pilot_light.templates["dr"]["Resources"].values()
             for name in physical_names(resource)}
    taken |= {name for resource in prod_pilot_light.resources("chat", "AWS::DynamoDB::GlobalTable").values()
              for name in physical_names(resource)}
    wanted = {name for template in recovery.templates.values() for resource in template["Resources"].values()
              for name in physical_names(resource)}
    assert taken and sorted(taken & wanted) == []
