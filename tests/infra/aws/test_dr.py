"""selfnest-<env>-dr: what each DR tier keeps in the DR region."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from refarch.constructs.aws.database import APPLICATION_LOGIN
from refarch.constructs.aws.web import HEALTH_CHECK_PATH
from refarch.stacks.selfnest.config import CONFIG_DIR, ConfigError, load_settings
from refarch.tools.update_safety import physical_names

from tests.run_cache import ROOT

from .assembly import DEPLOYER_ACCOUNT, Assembly, cached_synthesis
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
    """A promoted replica keeps the source's master password: where a replica runs, the master secret is ours and
    replicated there (RDS-managed secrets cannot be); without a replica RDS manages it and no secret is ours. The
    API's login has no secret in any tier (IAM tokens, per region)."""
    secrets = list(with_dr_region.resources("data", "AWS::SecretsManager::Secret").values())
    replica_regions = with_dr_region.settings.dr.replica_regions
    assert len(secrets) == (1 if replica_regions else 0)
    for secret in secrets:
        replicas = [replica["Region"] for replica in secret["Properties"].get("ReplicaRegions", [])]
        assert replicas == replica_regions


def test_runbook_recovery_environment_deploys_beside_the_dr_stack(prod_pilot_light: Assembly, tmp_path: Path) -> None:
    """docs/dr.md's failover step 3: a copy of prod named `recovery`, pointed at the DR region, synthesizes clean
    there and takes no physical name the DR region already holds (the dr stack's, the chat replicas')."""
    prod = prod_pilot_light.settings
    raw = yaml.safe_load((CONFIG_DIR / "prod.yaml").read_text(encoding="utf-8"))
    raw["region"] = prod.dr.region
    raw["network"]["availability_zones"] = prod.dr.availability_zones
    raw["dr"] = {"tier": "backup_restore", "region": None}
    (tmp_path / "recovery.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    recovery = cached_synthesis(load_settings("recovery", config_dir=tmp_path), account=prod_pilot_light.accounts["dr"])
    assert recovery.findings == [] and set(recovery.regions.values()) == {prod.dr.region}
    taken = {name for resource in prod_pilot_light.templates["dr"]["Resources"].values()
             for name in physical_names(resource)}
    taken |= {name for resource in prod_pilot_light.resources("chat", "AWS::DynamoDB::GlobalTable").values()
              for name in physical_names(resource)}
    wanted = {name for template in recovery.templates.values() for resource in template["Resources"].values()
              for name in physical_names(resource)}
    assert taken and sorted(taken & wanted) == []


def standby_service(assembly: Assembly) -> tuple[str, dict[str, Any]]:
    return assembly.only("dr", "AWS::ECS::Service")


def standby_environment(assembly: Assembly) -> dict[str, Any]:
    _, service = standby_service(assembly)
    task = assembly.templates["dr"]["Resources"][service["Properties"]["TaskDefinition"]["Ref"]]
    [container] = task["Properties"]["ContainerDefinitions"]
    return {variable["Name"]: variable["Value"] for variable in container["Environment"]}


def test_only_warm_standby_runs_a_web_tier_or_failover_records(assembly: Assembly) -> None:
    standby = assembly.settings.dr.standby_region is not None
    assert ("dr" in assembly.templates and bool(assembly.resources("dr", "AWS::ECS::Service"))) is standby
    assert bool(list(assembly.all_resources("AWS::Route53::RecordSet"))) is standby
    assert bool(list(assembly.all_resources("AWS::Route53::HealthCheck"))) is standby


def test_warm_standby_runs_the_api_at_its_minimum_behind_its_own_load_balancer(prod_warm_standby: Assembly) -> None:
    assembly, settings = prod_warm_standby, prod_warm_standby.settings
    assert assembly.regions["dr"] == settings.dr.standby_region == settings.dr.region
    _, service = standby_service(assembly)
    assert service["Properties"]["DesiredCount"] == settings.dr.standby_tasks >= 1
    network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    [(_, scaling)] = assembly.resources("dr", "AWS::ApplicationAutoScaling::ScalableTarget").items()
    assert scaling["Properties"]["MinCapacity"] == settings.dr.standby_tasks
    assert scaling["Properties"]["MaxCapacity"] == max(settings.web.max_tasks, settings.dr.standby_tasks)
    [(_, balancer)] = assembly.resources("dr", "AWS::ElasticLoadBalancingV2::LoadBalancer").items()
    assert balancer["Properties"]["Scheme"] == "internet-facing"
    listeners = [listener["Properties"] for listener in
                 assembly.resources("dr", "AWS::ElasticLoadBalancingV2::Listener").values()]
    https = [listener for listener in listeners if listener["Port"] == 443]
    assert [certificate["CertificateArn"] for listener in https for certificate in listener["Certificates"]] == (
        [settings.dr.certificate_arn] if settings.web.certificate_arn else [])
    assert bool(assembly.resources("dr", "AWS::WAFv2::WebACLAssociation")) is settings.web.waf


def test_warm_standby_api_signs_in_to_the_replica_with_iam_tokens_for_it(prod_warm_standby: Assembly) -> None:
    assembly, settings = prod_warm_standby, prod_warm_standby.settings
    environment = standby_environment(assembly)
    replica_id, _ = replica(assembly)
    assert environment["DB_HOST"] == {"Fn::GetAtt": [replica_id, "Endpoint.Address"]}
    # The same login as in the primary region (the replica copies its roles), with tokens signed for the DR region.
    assert (environment["DB_IAM_USER"], environment["DB_REGION"]) == (APPLICATION_LOGIN, settings.dr.region)
    assert "DB_SECRET_ARN" not in environment
    # ... and the task role may sign in as exactly that login on exactly the replica; it reads no secret.
    policies = [statement for resource in assembly.resources("dr", "AWS::IAM::Policy").values()
                for statement in resource["Properties"]["PolicyDocument"]["Statement"]]
    assert not [statement for statement in policies if "secretsmanager:GetSecretValue" in statement["Action"]]
    [connect] = [statement for statement in policies if statement["Action"] == "rds-db:connect"]
    assert connect["Resource"] == {"Fn::Join": ["", [
        f"arn:aws:rds-db:{settings.dr.region}:{DEPLOYER_ACCOUNT}:dbuser:",
        {"Fn::GetAtt": [replica_id, "DbiResourceId"]}, f"/{APPLICATION_LOGIN}"]]}
    # The user pool and topic are the primary region's (the pool's id read across regions at deploy time).
    assert environment["USER_POOL_ID"]["Fn::GetStackOutput"]["Region"] == settings.region
    assert environment["SESSION_EVENTS_TOPIC_ARN"] == (
        f"arn:aws:sns:{settings.region}:{DEPLOYER_ACCOUNT}:{settings.name('session-events')}")


def test_warm_standby_replica_admits_only_the_standby_app_tier(prod_warm_standby: Assembly) -> None:
    assembly = prod_warm_standby
    _, instance = replica(assembly)
    [group] = instance["Properties"]["VPCSecurityGroups"]
    resources = assembly.templates["dr"]["Resources"]
    rules = resources[group["Fn::GetAtt"][0]]["Properties"].get("SecurityGroupIngress", []) + [
        rule["Properties"] for rule in assembly.resources("dr", "AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == group]
    _, service = standby_service(assembly)
    [app_group] = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    assert [(rule["SourceSecurityGroupId"], rule["FromPort"], rule["ToPort"]) for rule in rules] == [
        (app_group, 5432, 5432)]
    assert all("CidrIp" not in rule for rule in rules)


def failover_records(assembly: Assembly) -> dict[str, tuple[str, dict[str, Any]]]:
    """Failover role (PRIMARY/SECONDARY) -> (stack part, record properties)."""
    return {record["Properties"]["Failover"]: (part, record["Properties"])
            for part, _, record in assembly.all_resources("AWS::Route53::RecordSet")}


def test_failover_alias_records_send_clients_to_the_standby_when_the_primary_fails(
        prod_warm_standby: Assembly) -> None:
    assembly, failover = prod_warm_standby, prod_warm_standby.settings.dr.failover
    assert failover is not None
    records = failover_records(assembly)
    assert set(records) == {"PRIMARY", "SECONDARY"}
    (primary_part, primary), (secondary_part, secondary) = records["PRIMARY"], records["SECONDARY"]
    # Each in the stack of the load balancer it names: the primary region's, then the DR region's.
    assert assembly.regions[primary_part] == assembly.settings.region
    assert assembly.regions[secondary_part] == assembly.settings.dr.region
    for part, record in records.values():
        assert record["Name"] == f"{failover.record_name}." and record["Type"] == "A"
        assert record["HostedZoneId"] == failover.hosted_zone_id
        alias = record["AliasTarget"]
        assert alias["EvaluateTargetHealth"] is True
        [(balancer_id, _)] = assembly.resources(part, "AWS::ElasticLoadBalancingV2::LoadBalancer").items()
        assert alias["HostedZoneId"] == {"Fn::GetAtt": [balancer_id, "CanonicalHostedZoneID"]}
        assert alias["DNSName"]["Fn::Join"][1][1] == {"Fn::GetAtt": [balancer_id, "DNSName"]}
    assert primary["SetIdentifier"] != secondary["SetIdentifier"]
    assert "HealthCheckId" not in secondary   # the last resort answers whatever its health
    check = assembly.templates[primary_part]["Resources"][primary["HealthCheckId"]["Ref"]]
    config = check["Properties"]["HealthCheckConfig"]
    [(balancer_id, _)] = assembly.resources(primary_part, "AWS::ElasticLoadBalancingV2::LoadBalancer").items()
    assert config["FullyQualifiedDomainName"] == {"Fn::GetAtt": [balancer_id, "DNSName"]}
    assert config["ResourcePath"] == HEALTH_CHECK_PATH
    # With HTTPS, port 80 only redirects, and Route 53 counts a redirect as healthy: the check must use 443.
    https = assembly.settings.web.certificate_arn is not None
    assert (config["Type"], config["Port"]) == (("HTTPS", 443) if https else ("HTTP", 80))
    assert config["RequestInterval"] * config["FailureThreshold"] == failover.detection_seconds


def test_switching_to_warm_standby_keeps_the_pilot_light_replica_and_its_subnets(
        prod_pilot_light: Assembly, prod_warm_standby: Assembly) -> None:
    """The standby's subnets come after the replica's, so moving up a tier adds to the VPC and keeps the replica."""
    pilot_id, pilot = replica(prod_pilot_light)
    standby_id, standby = replica(prod_warm_standby)
    assert pilot_id == standby_id
    subnets = {logical_id: resource["Properties"]["CidrBlock"]
               for logical_id, resource in prod_pilot_light.resources("dr", "AWS::EC2::Subnet").items()}
    assert subnets.items() <= {logical_id: resource["Properties"]["CidrBlock"] for logical_id, resource
                               in prod_warm_standby.resources("dr", "AWS::EC2::Subnet").items()}.items()
    for name in ("DBSubnetGroupName", "KmsKeyId", "SourceDBInstanceIdentifier", "DBInstanceIdentifier"):
        assert pilot["Properties"][name] == standby["Properties"][name]


def test_warm_standby_config_names_what_it_misses_in_one_line(tmp_path: Path) -> None:
    raw = yaml.safe_load((CONFIG_DIR / "prod.yaml").read_text(encoding="utf-8"))
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "failover": ({"failover": None}, "tier warm_standby needs dr.failover"),
        "certificate": ({"certificate_arn": None}, "dr.certificate_arn: missing"),
        "region": ({"certificate_arn": "arn:aws:acm:eu-west-1:111122223333:certificate/abc"},
                   "is not in dr.region eu-central-1"),
        "record": ({"failover": {**raw["dr"]["failover"], "record_name": "api.other.org"}}, "is not in zone_name"),
        "interval": ({"failover": {**raw["dr"]["failover"], "health_check_interval_seconds": 20}},
                     "dr.failover.health_check_interval_seconds: 20 is not allowed"),
    }
    # Not a dr key: a primary that idles at zero tasks fails its own failover health check.
    idle = {**raw, "web": {**raw["web"], "min_tasks": 0}, "dr": {**raw["dr"], "tier": "warm_standby"}}
    (tmp_path / "idle.yaml").write_text(yaml.safe_dump(idle), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"web\.min_tasks: 0 cannot serve with dr\.tier warm_standby"):
        load_settings("idle", config_dir=tmp_path)
    for name, (change, message) in cases.items():
        broken = {**raw, "dr": {**raw["dr"], "tier": "warm_standby", **change}}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(broken), encoding="utf-8")
        with pytest.raises(ConfigError) as error:
            load_settings(name, config_dir=tmp_path)
        assert message in str(error.value) and "\n" not in str(error.value), (name, str(error.value))


def test_a_placeholder_zone_refuses_the_deploy(prod_warm_standby: Assembly) -> None:
    found = " ".join(prod_warm_standby.settings.placeholders())
    assert "dr.failover.zone_name" in found and "dr.certificate_arn" in found
    assert "dr.failover.hosted_zone_id" in found
    assert "dr.failover" not in " ".join(load_settings("prod", dr_tier="pilot_light").placeholders())


def test_the_standby_starts_only_after_the_primarys_migration_has_run(prod_warm_standby: Assembly) -> None:
    """The standby API signs in as the login the primary's deploy-time migration creates."""
    assert prod_warm_standby.settings.name("web") in prod_warm_standby.dependencies("dr")


def test_runbook_going_down_to_backup_restore_removes_the_replica_before_rds_manages_the_master_password(
        prod: Assembly, prod_pilot_light: Assembly) -> None:
    """docs/dr.md: the dr stack (which removes the replica) is deployed alone, before the data stack turns on RDS
    management of the master password, because `cdk deploy --all` orders the data stack first; the commands name
    the real stack, replica and primary."""
    text = (ROOT / "docs" / "dr.md").read_text(encoding="utf-8")
    [selector] = re.findall(r"cdk deploy --exclusively (\S+) -c env=prod -c dr_tier=backup_restore", text)
    dr_artifact = prod.artifacts["dr"]
    assert selector == dr_artifact["displayName"]
    assert f"CloudFormation stack {dr_artifact['properties']['stackName']}" in text
    # Why the order matters: the tier down turns management on in the data stack, which deploys before the dr stack.
    _, primary = prod.only("data", "AWS::RDS::DBInstance")
    assert primary["Properties"].get("ManageMasterUserPassword") is True
    _, primary_with_replica = prod_pilot_light.only("data", "AWS::RDS::DBInstance")
    assert "ManageMasterUserPassword" not in primary_with_replica["Properties"]
    assert prod_pilot_light.settings.name("data") in prod_pilot_light.dependencies("dr")
    # The retained replica (RETAIN in prod) is deleted by name, and the primary checked for replicas by name.
    replica_id, replica_instance = replica(prod_pilot_light)
    assert prod_pilot_light.templates["dr"]["Resources"][replica_id]["DeletionPolicy"] == "Retain"
    replica_name = replica_instance["Properties"]["DBInstanceIdentifier"]
    region = prod_pilot_light.settings.dr.region
    assert f"aws rds delete-db-instance --db-instance-identifier {replica_name} " in text
    assert f"--region {region}" in text
    assert (f"aws rds describe-db-instances --db-instance-identifier {primary['Properties']['DBInstanceIdentifier']} "
            "--query 'DBInstances[0].ReadReplicaDBInstanceIdentifiers'") in text


def test_restore_drill_gives_the_restored_instance_its_own_rds_managed_master_secret() -> None:
    """A restored instance starts with the snapshot's master password, which in backup_restore only the source's
    RDS-managed secret held (rotated weekly, deleted with the source): the drill turns on RDS management for it."""
    text = (ROOT / "docs" / "dr.md").read_text(encoding="utf-8")
    drill = text[text.index("start-restore-job"):text.index("3. **Promote the pilot-light replica**")]
    [restored] = re.findall(r"DBInstanceIdentifier=(\S+?),", drill)
    assert re.search(rf"aws rds modify-db-instance --db-instance-identifier {restored} \\\s+--manage-master-user-"
                     r"password --master-user-secret-kms-key-id <key> --apply-immediately", drill)
    assert "rotates every 7 days" in drill and "deletes with the" in drill
