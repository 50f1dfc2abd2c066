"""selfnest-<env>-backup: the GFS backup bucket and the AWS Backup vault, plan and tag selection, per variant."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

from refarch.constructs.aws.backup import BACKUP_TAG_KEY, BACKUP_TAG_VALUE, GFS_SCHEDULES
from refarch.constructs.aws.lifecycle import StorageClass, Transition, backup_rule_problems, lifecycle_problems
from refarch.labs.grading import handed_parts, stack_types

from .assembly import Assembly, get_att, ref
from .test_data import customer_managed_key


def backup_bucket(assembly: Assembly, part: str = "backup") -> tuple[str, dict[str, Any]]:
    return assembly.at_path(part, "BackupBucket/Bucket/Resource")


def template_lifecycle(bucket: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["Id"]: rule for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}


def joined(value: Any, account: str = "123456789012") -> str:
    """A Fn::Join of literals and AWS::AccountId / AWS::Partition as the string CloudFormation would make."""
    if isinstance(value, str):
        return value
    pseudo = {"AWS::AccountId": account, "AWS::Partition": "aws"}
    return "".join(part if isinstance(part, str) else pseudo[part["Ref"]] for part in value["Fn::Join"][1])


def test_backup_bucket_is_versioned_private_tls_only_kms_encrypted_and_logged(assembly: Assembly) -> None:
    logical_id, bucket = backup_bucket(assembly)
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(props["PublicAccessBlockConfiguration"][flag] is True for flag in
               ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
    [encryption] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key = customer_managed_key(assembly, "backup", encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"])
    assert key["Properties"]["EnableKeyRotation"] is True
    access_logs = props["LoggingConfiguration"]["DestinationBucketName"]
    assert access_logs != ref(logical_id) and access_logs["Ref"] in assembly.resources("backup", "AWS::S3::Bucket")
    [(_, policy)] = [(i, p) for i, p in assembly.resources("backup", "AWS::S3::BucketPolicy").items()
                     if p["Properties"]["Bucket"] == ref(logical_id)]
    denials = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denials)


def test_lifecycle_rules_follow_config_per_generation(assembly: Assembly) -> None:
    rules = template_lifecycle(backup_bucket(assembly)[1])
    config = assembly.settings.backup.bucket
    for name, generation in config.generations.items():
        rule = rules[name]
        assert rule["Prefix"] == f"{name}/" and rule["Status"] == "Enabled"
        assert rule["ExpirationInDays"] == generation.expire_after_days
        assert [(t["StorageClass"], t["TransitionInDays"]) for t in rule.get("Transitions", [])] == [
            (t.storage_class.value, t.after_days) for t in generation.transition_list]
    assert rules["noncurrent-versions"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": config.noncurrent_version_expiry_days}
    # The generations use all three Glacier classes (lab 06 adds Standard-IA before Glacier IR in dev).
    classes = {t["StorageClass"] for rule in rules.values() for t in rule.get("Transitions", [])}
    assert {"GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"} <= classes <= {"STANDARD_IA", "GLACIER_IR", "GLACIER",
                                                                    "DEEP_ARCHIVE"}


def test_every_synthesized_lifecycle_rule_respects_s3_minimums(assembly: Assembly) -> None:
    for part in ("backup", "dr"):
        if part not in assembly.templates:
            continue
        for rule in template_lifecycle(backup_bucket(assembly, part)[1]).values():
            transitions = [Transition(storage_class=StorageClass(t["StorageClass"]), after_days=t["TransitionInDays"])
                           for t in rule.get("Transitions", [])]
            assert lifecycle_problems(transitions, rule.get("ExpirationInDays")) == [], rule


def test_prod_plan_runs_daily_weekly_monthly_with_config_retention_and_copies_to_the_dr_vault(
        with_dr_region: Assembly) -> None:
    assembly = with_dr_region
    _, plan = assembly.only("backup", "AWS::Backup::BackupPlan")
    rules = {rule["RuleName"]: rule for rule in plan["Properties"]["BackupPlan"]["BackupPlanRule"]}
    config = assembly.settings.backup.plan
    assert config is not None
    _, dr_vault = assembly.only("dr", "AWS::Backup::BackupVault")
    dr_vault_arn = (f"arn:aws:backup:{assembly.settings.dr.region}:123456789012:backup-vault:"
                    f"{dr_vault['Properties']['BackupVaultName']}")
    for name, generation in config.generations.items():
        rule = rules[name]
        assert rule["ScheduleExpression"] == GFS_SCHEDULES[name].expression_string
        lifecycle = {"DeleteAfterDays": generation.delete_after_days}
        if generation.move_to_cold_storage_after_days is not None:
            lifecycle["MoveToColdStorageAfterDays"] = generation.move_to_cold_storage_after_days
        assert rule["Lifecycle"] == lifecycle
        assert backup_rule_problems(move_to_cold_storage_after_days=lifecycle.get("MoveToColdStorageAfterDays"),
                                    delete_after_days=lifecycle["DeleteAfterDays"]) == []
        [copy] = rule["CopyActions"]
        assert joined(copy["DestinationBackupVaultArn"]) == dr_vault_arn
        assert copy["Lifecycle"] == lifecycle
    assert any("MoveToColdStorageAfterDays" in rule["Lifecycle"] for rule in rules.values())
    assert len(set(GFS_SCHEDULES.values())) == len(rules)


def test_vaults_use_customer_managed_keys_and_are_locked_in_prod(with_dr_region: Assembly) -> None:
    assembly = with_dr_region
    lock = assembly.settings.backup.plan.vault_lock if assembly.settings.backup.plan else None
    assert lock is not None
    for part in ("backup", "dr"):
        _, vault = assembly.only(part, "AWS::Backup::BackupVault")
        customer_managed_key(assembly, part, vault["Properties"]["EncryptionKeyArn"])
        assert vault["Properties"]["LockConfiguration"] == {
            "MinRetentionDays": lock.min_retention_days, "MaxRetentionDays": lock.max_retention_days,
            "ChangeableForDays": lock.changeable_for_days}
        assert vault["DeletionPolicy"] == "Retain"


def test_selection_takes_this_environments_tagged_database(assembly: Assembly) -> None:
    _, database = assembly.only("data", "AWS::RDS::DBInstance")
    assert {"Key": BACKUP_TAG_KEY, "Value": BACKUP_TAG_VALUE} in database["Properties"]["Tags"]
    if assembly.settings.backup.plan is None:
        assert assembly.resources("backup", "AWS::Backup::BackupSelection") == {}
        assert assembly.resources("backup", "AWS::Backup::BackupVault") == {}
        return
    _, selection = assembly.only("backup", "AWS::Backup::BackupSelection")
    chosen = selection["Properties"]["BackupSelection"]
    assert chosen["Conditions"] == {"StringEquals": [
        {"ConditionKey": f"aws:ResourceTag/{BACKUP_TAG_KEY}", "ConditionValue": BACKUP_TAG_VALUE}]}
    patterns = [joined(pattern) for pattern in chosen["Resources"]]
    region = assembly.settings.region
    database_arn = f"arn:aws:rds:{region}:123456789012:db:{database['Properties']['DBInstanceIdentifier']}"
    assert any(fnmatch.fnmatchcase(database_arn, pattern) for pattern in patterns)
    # Not another environment's database, nor anything in another region.
    other = database_arn.replace(f"selfnest-{assembly.settings.environment}-", "selfnest-other-")
    assert not any(fnmatch.fnmatchcase(other, pattern) for pattern in patterns)
    assert all(f":{region}:" in pattern for pattern in patterns)
    assert {pattern.split(":")[2] for pattern in patterns} == {"rds", "dynamodb"}


def test_dev_keeps_backups_destroyable_and_copies_them_only_to_a_configured_dr_region(dev: Assembly) -> None:
    copied = dev.settings.dr.copy_region is not None
    assert ("dr" in dev.templates) == copied
    _, bucket = backup_bucket(dev)
    assert ("ReplicationConfiguration" in bucket["Properties"]) == copied
    assert bucket["DeletionPolicy"] == "Delete"


def test_bucket_replicates_to_the_dr_bucket_with_a_least_privilege_role(with_dr_region: Assembly) -> None:
    assembly = with_dr_region
    dr_region = assembly.settings.dr.region
    _, source = backup_bucket(assembly)
    _, replica = backup_bucket(assembly, "dr")
    replication = source["Properties"]["ReplicationConfiguration"]
    [rule] = replication["Rules"]
    destination = rule["Destination"]
    replica_name = joined(replica["Properties"]["BucketName"])
    assert replica_name.endswith(f"-{dr_region}") and replica_name != joined(source["Properties"]["BucketName"])
    assert joined(destination["Bucket"]) == f"arn:aws:s3:::{replica_name}"
    replica_key = joined(destination["EncryptionConfiguration"]["ReplicaKmsKeyID"])
    prefix = f"arn:aws:kms:{dr_region}:123456789012:"
    assert replica_key.startswith(f"{prefix}alias/")
    alias = replica_key.removeprefix(prefix)
    [dr_alias] = [a for a in assembly.resources("dr", "AWS::KMS::Alias").values()
                  if a["Properties"]["AliasName"] == alias]
    # The replica bucket is encrypted with that aliased key.
    [replica_encryption] = replica["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert replica_encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == get_att(
        dr_alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0], "Arn")
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
    assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    assert rule["Status"] == "Enabled" and rule["Filter"] == {"Prefix": ""}

    role_id = replication["Role"]["Fn::GetAtt"][0]
    role = assembly.templates["backup"]["Resources"][role_id]
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "s3.amazonaws.com"}
    assert "ManagedPolicyArns" not in role["Properties"]
    policies = [p for p in assembly.resources("backup", "AWS::IAM::Policy").values()
                if p["Properties"]["Roles"] == [ref(role_id)]]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    actions = {action for s in statements for action in ([s["Action"]] if isinstance(s["Action"], str)
                                                          else s["Action"])}
    assert actions == {"s3:GetReplicationConfiguration", "s3:ListBucket", "s3:GetObjectVersionForReplication",
                       "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging", "s3:ReplicateObject",
                       "s3:ReplicateTags", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"}
    assert all(s["Effect"] == "Allow" and s["Resource"] != "*" for s in statements)
    [encrypt] = [s for s in statements if "kms:Encrypt" in s["Action"]]
    assert encrypt["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": alias}
    assert encrypt["Condition"]["StringEquals"] == {"kms:ViaService": f"s3.{dr_region}.amazonaws.com"}
    [write] = [s for s in statements if "s3:ReplicateObject" in s["Action"]]
    assert joined(write["Resource"]) == f"arn:aws:s3:::{replica_name}/*"


def test_only_a_warm_standby_reads_across_regions_and_only_what_its_api_needs(assembly: Assembly) -> None:
    """Backup and pilot light build shared names from settings: no cross-region outputs, exports or custom
    resources. A warm standby's API reads what only the primary region knows (the user pool's ids, the topic's key)
    from the stacks its constructor is handed (the primary's identity and messaging), as weak references — still no
    custom resources."""
    settings = assembly.settings
    for part in ("backup", "dr"):
        if part not in assembly.templates:
            continue
        text = json.dumps(assembly.templates[part])
        assert "Fn::ImportValue" not in text, part
        # Same-region references are fine (the environment's key, with encryption.keys per_environment); across
        # regions only a warm standby's dr stack reads, and only from the primary stacks it is handed.
        across = {(reference["StackName"], reference["Region"])
                  for reference in stack_outputs_read(assembly.templates[part])
                  if reference.get("Region", assembly.regions[part]) != assembly.regions[part]}
        if part == "dr" and settings.dr.standby_region is not None:
            handed = handed_parts(stack_types(), "dr", settings)
            assert handed and across == {(settings.name(name), settings.region) for name in handed}
        else:
            assert across == set(), part
        assert not [r for r in assembly.templates[part]["Resources"].values()
                    if r["Type"].startswith("Custom::") and "CrossRegion" in r["Type"]]
    if "dr" in assembly.templates:
        assert assembly.regions["dr"] == assembly.settings.dr.region
        assert assembly.regions["backup"] == assembly.settings.region


def stack_outputs_read(node: Any) -> Iterator[dict[str, str]]:
    """Every Fn::GetStackOutput in a template (or part of one)."""
    if isinstance(node, dict):
        if "Fn::GetStackOutput" in node:
            yield node["Fn::GetStackOutput"]
        for value in node.values():
            yield from stack_outputs_read(value)
    elif isinstance(node, list):
        for value in node:
            yield from stack_outputs_read(value)
