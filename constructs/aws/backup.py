"""Backups: the S3 backup bucket with grandfather-father-son lifecycle rules, and AWS Backup (vault, plan, selection).

Data stores join the plan by carrying one tag (`select_for_backup`), so stacks that own tables or databases never
reference the backup stack, and the plan never references them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct, IConstruct

from .encryption import removal_policy
from .lifecycle import Transition
from .nag import GRANTS_POLICY, acknowledge, finding_form

# The one tag that puts a data store into its environment's AWS Backup plan (RDS now, the chat tables later).
BACKUP_TAG_KEY = "backup-plan"
BACKUP_TAG_VALUE = "gfs"

# When each generation runs (UTC), staggered so the daily, weekly and monthly jobs never share a window.
GFS_SCHEDULES: dict[str, events.Schedule] = {
    "daily": events.Schedule.cron(minute="0", hour="3"),
    "weekly": events.Schedule.cron(minute="0", hour="5", week_day="SUN"),
    "monthly": events.Schedule.cron(minute="0", hour="7", day="1"),
}


def select_for_backup(resource: IConstruct, *, plan_name: str | None) -> None:
    """Tag a data store so the AWS Backup plan `plan_name` selects it (None: this environment has no plan)."""
    cdk.Tags.of(resource).add(BACKUP_TAG_KEY, BACKUP_TAG_VALUE)
    if plan_name is None:
        reason = ("This environment has no AWS Backup plan (config backup.plan: null, so `cdk destroy` is not "
                  "blocked by a vault holding recovery points); the service's own backups still run.")
    else:
        reason = (f"Selected by tag {BACKUP_TAG_KEY}={BACKUP_TAG_VALUE} by the AWS Backup plan {plan_name}; "
                  "cdk-nag only recognises a selection that names the resource by ARN in its own stack.")
    acknowledge(resource, {"HIPAA.Security-RDSInBackupPlan": reason,
                           "HIPAA.Security-DynamoDBInBackupPlan": reason})


@dataclass(frozen=True, kw_only=True)
class GenerationLifecycle:
    """Objects under `prefix` move through `transitions` (already validated) and expire."""

    name: str
    prefix: str
    transitions: Sequence[Transition]
    expire_after_days: int


@dataclass(frozen=True, kw_only=True)
class ReplicationTarget:
    """A versioned, KMS-encrypted bucket in another region of this account, named and keyed by known names.

    Names rather than references: a CloudFormation stack cannot read another region's outputs without a custom
    resource, and both names are fixed by the DR stack.
    """

    region: str
    bucket_name: str
    key_alias: str   # alias/... of the destination key; S3 accepts an alias ARN as the replica key


class BackupBucket(Construct):
    """Versioned, KMS-encrypted, TLS-only, private bucket with access logs and one lifecycle rule per generation.

    Overwritten and deleted objects stay restorable as noncurrent versions for `noncurrent_version_expiry_days`.
    With `replication`, every new object version is copied to the target bucket (deletions are not: a delete
    marker placed by mistake or by an attacker must not reach the DR copy).
    """

    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, access_logs: s3.IBucket,
                 generations: Sequence[GenerationLifecycle], noncurrent_version_expiry_days: int,
                 retain_data: bool, bucket_name: str | None = None,
                 replication: ReplicationTarget | None = None) -> None:
        super().__init__(scope, id)
        rules = [s3.LifecycleRule(
            id=generation.name, prefix=generation.prefix,
            transitions=[s3.Transition(storage_class=s3.StorageClass(transition.storage_class.value),
                                       transition_after=cdk.Duration.days(transition.after_days))
                         for transition in generation.transitions],
            expiration=cdk.Duration.days(generation.expire_after_days),
        ) for generation in generations]
        rules.append(s3.LifecycleRule(
            id="noncurrent-versions",
            noncurrent_version_expiration=cdk.Duration.days(noncurrent_version_expiry_days),
            abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
        ))
        self.bucket = s3.Bucket(
            self, "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="backup-bucket/",
            lifecycle_rules=rules,
            removal_policy=removal_policy(retain_data=retain_data),
            auto_delete_objects=not retain_data,
        )
        self.key = key
        self.replication_role: iam.Role | None = None
        if replication is not None:
            self.replication_role = self._replicate_to(replication)

    def _replicate_to(self, target: ReplicationTarget) -> iam.Role:
        stack = cdk.Stack.of(self)
        destination_arn = f"arn:{stack.partition}:s3:::{target.bucket_name}"
        source_objects, destination_objects = self.bucket.arn_for_objects("*"), f"{destination_arn}/*"
        dr_keys = f"arn:{stack.partition}:kms:{target.region}:{stack.account}:key/*"
        role = iam.Role(self, "ReplicationRole", assumed_by=iam.ServicePrincipal("s3.amazonaws.com"),
                        description="S3 replication of the backup bucket to the DR region, and nothing else")
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetReplicationConfiguration", "s3:ListBucket"], resources=[self.bucket.bucket_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
            resources=[source_objects]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:ReplicateObject", "s3:ReplicateTags"], resources=[destination_objects]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["kms:Decrypt"], resources=[self.key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}}))
        # The destination key's id is only known in its own region; its alias pins the grant to exactly that key.
        role.add_to_policy(iam.PolicyStatement(
            actions=["kms:Encrypt", "kms:GenerateDataKey"],
            resources=[dr_keys],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{target.region}.amazonaws.com"},
                        "ForAnyValue:StringEquals": {"kms:ResourceAliases": target.key_alias}}))
        bucket = self.bucket.node.default_child
        assert isinstance(bucket, s3.CfnBucket)
        bucket.replication_configuration = s3.CfnBucket.ReplicationConfigurationProperty(
            role=role.role_arn,
            rules=[s3.CfnBucket.ReplicationRuleProperty(
                id="to-dr-region", status="Enabled", priority=1,
                filter=s3.CfnBucket.ReplicationRuleFilterProperty(prefix=""),
                delete_marker_replication=s3.CfnBucket.DeleteMarkerReplicationProperty(status="Disabled"),
                source_selection_criteria=s3.CfnBucket.SourceSelectionCriteriaProperty(
                    sse_kms_encrypted_objects=s3.CfnBucket.SseKmsEncryptedObjectsProperty(status="Enabled")),
                destination=s3.CfnBucket.ReplicationDestinationProperty(
                    bucket=destination_arn,
                    encryption_configuration=s3.CfnBucket.EncryptionConfigurationProperty(
                        replica_kms_key_id=f"arn:{stack.partition}:kms:{target.region}:{stack.account}:"
                                           f"{target.key_alias}")),
            )],
        )
        acknowledge(role, {
            **GRANTS_POLICY,
            f"AwsSolutions-IAM5[Resource::{finding_form(stack, source_objects)}]":
                "Replication reads every new object version of this bucket; only S3 can assume the role, for this "
                "bucket's replication configuration.",
            f"AwsSolutions-IAM5[Resource::{finding_form(stack, destination_objects)}]":
                "Replicas of any object are written into the DR replica bucket, and only into that bucket.",
            f"AwsSolutions-IAM5[Resource::{finding_form(stack, dr_keys)}]":
                "The DR key's id exists only in its own region; kms:ResourceAliases limits the grant to the one key "
                "with the DR backup alias, and kms:ViaService to S3 in that region.",
        })
        return role


@dataclass(frozen=True, kw_only=True)
class VaultLockShape:
    min_retention_days: int
    max_retention_days: int
    changeable_for_days: int | None   # None: governance mode


class EncryptedVault(Construct):
    """An AWS Backup vault encrypted with a customer-managed key, optionally under Vault Lock."""

    def __init__(self, scope: Construct, id: str, *, name: str, key: kms.IKey, lock: VaultLockShape | None,
                 retain_data: bool) -> None:
        super().__init__(scope, id)
        self.vault = backup.BackupVault(
            self, "Vault", backup_vault_name=name, encryption_key=key,
            lock_configuration=None if lock is None else backup.LockConfiguration(
                min_retention=cdk.Duration.days(lock.min_retention_days),
                max_retention=cdk.Duration.days(lock.max_retention_days),
                changeable_for=None if lock.changeable_for_days is None else cdk.Duration.days(
                    lock.changeable_for_days)),
            removal_policy=removal_policy(retain_data=retain_data),
        )


@dataclass(frozen=True, kw_only=True)
class PlanRuleShape:
    generation: str                     # daily / weekly / monthly: picks the schedule
    delete_after_days: int
    move_to_cold_storage_after_days: int | None


class GfsBackupPlan(Construct):
    """Daily, weekly and monthly AWS Backup rules over this environment's data stores that carry the backup tag.

    `resource_arn_patterns` limit the selection to this environment's resources (by name prefix), the tag
    condition to the ones meant to be backed up. With `copy_to_vault_arn`, every recovery point is also copied
    there (another region's vault) with the same lifecycle.
    """

    def __init__(self, scope: Construct, id: str, *, name: str, vault: backup.IBackupVault,
                 rules: Sequence[PlanRuleShape], resource_arn_patterns: Sequence[str],
                 copy_to_vault_arn: str | None) -> None:
        super().__init__(scope, id)
        copy_target = (None if copy_to_vault_arn is None
                       else backup.BackupVault.from_backup_vault_arn(self, "CopyTarget", copy_to_vault_arn))
        self.plan = backup.BackupPlan(self, "Plan", backup_plan_name=name, backup_vault=vault)
        for rule in rules:
            delete_after = cdk.Duration.days(rule.delete_after_days)
            cold_after = (None if rule.move_to_cold_storage_after_days is None
                          else cdk.Duration.days(rule.move_to_cold_storage_after_days))
            self.plan.add_rule(backup.BackupPlanRule(
                rule_name=rule.generation,
                schedule_expression=GFS_SCHEDULES[rule.generation],
                start_window=cdk.Duration.hours(1),
                completion_window=cdk.Duration.hours(8),
                delete_after=delete_after,
                move_to_cold_storage_after=cold_after,
                copy_actions=[] if copy_target is None else [backup.BackupPlanCopyActionProps(
                    destination_backup_vault=copy_target, delete_after=delete_after,
                    move_to_cold_storage_after=cold_after)],
            ))
        self.selection = self.plan.add_selection(
            "Tagged", backup_selection_name=f"{name}-tagged", allow_restores=True,
            resources=[backup.BackupResource.from_arn(pattern) for pattern in resource_arn_patterns])
        # Resources AND Conditions: of this environment's data stores, only those tagged for the plan.
        selection = self.selection.node.default_child
        assert isinstance(selection, backup.CfnBackupSelection)
        selection.add_property_override("BackupSelection.Conditions", {"StringEquals": [
            {"ConditionKey": f"aws:ResourceTag/{BACKUP_TAG_KEY}", "ConditionValue": BACKUP_TAG_VALUE}]})
        self.role = self.selection.grant_principal
        acknowledge(self.selection, {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSBackupServiceRolePolicyForBackup]": "The AWS-maintained policy for AWS Backup's backup jobs; AWS "
                                                     "keeps it current as services add backup APIs.",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSBackupServiceRolePolicyForRestores]": "The AWS-maintained policy for AWS Backup's restore jobs "
                                                       "(the restore drill uses it).",
        })
