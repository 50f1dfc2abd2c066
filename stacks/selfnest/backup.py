"""selfnest-<env>-backup: the S3 backup bucket (replicated to the DR region) and the AWS Backup vault and plan."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from refarch.constructs.aws.backup import (
    BackupBucket,
    EncryptedVault,
    GenerationLifecycle,
    GfsBackupPlan,
    PlanRuleShape,
    ReplicationTarget,
    VaultLockShape,
)
from refarch.constructs.aws.encryption import own_function_logs
from refarch.constructs.aws.nag import acknowledge
from refarch.constructs.aws.web import AccessLogBucket

from constructs import Construct

from .config import BackupBucketSettings, SelfnestSettings
from .keys import tier_key


def backup_plan_name(settings: SelfnestSettings) -> str | None:
    return settings.name("backup") if settings.backup.plan is not None else None


def backup_bucket_name(settings: SelfnestSettings, region: str) -> str:
    """Fixed, globally unique names, so the other region's stack can point at the bucket without a lookup."""
    return f"{settings.name('backup')}-{cdk.Aws.ACCOUNT_ID}-{region}"


def dr_backup_key_alias(settings: SelfnestSettings) -> str:
    return f"alias/{settings.name('backup-dr')}"


def dr_vault_name(settings: SelfnestSettings) -> str:
    return settings.name("backup-dr")


def bucket_generations(bucket: BackupBucketSettings) -> list[GenerationLifecycle]:
    return [GenerationLifecycle(name=name, prefix=f"{name}/", transitions=generation.transition_list,
                                expire_after_days=generation.expire_after_days)
            for name, generation in bucket.generations.items()]


def vault_lock(settings: SelfnestSettings) -> VaultLockShape | None:
    lock = settings.backup.plan.vault_lock if settings.backup.plan is not None else None
    return None if lock is None else VaultLockShape(**lock.model_dump())


class BackupStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, settings: SelfnestSettings, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        backup, dr_region = settings.backup, settings.dr.copy_region
        key = tier_key(
            self, "BackupKey", settings=settings, alias=f"alias/{settings.name('backup')}",
            purpose="Selfnest backups: the S3 backup bucket, the AWS Backup vault and CDK's helper-function logs",
            for_cloudwatch_logs=True)
        own_function_logs(self, key=key, retention_days=settings.web.log_retention_days,
                          retain_data=settings.retain_data)
        access_logs = AccessLogBucket(self, "AccessLogs", retain_data=settings.retain_data,
                                      expire_after_days=settings.web.log_retention_days)
        self.bucket = BackupBucket(
            self, "BackupBucket", key=key, access_logs=access_logs.bucket,
            bucket_name=backup_bucket_name(settings, settings.region),
            generations=bucket_generations(backup.bucket),
            noncurrent_version_expiry_days=backup.bucket.noncurrent_version_expiry_days,
            retain_data=settings.retain_data,
            replication=None if dr_region is None else ReplicationTarget(
                region=dr_region, bucket_name=backup_bucket_name(settings, dr_region),
                key_alias=dr_backup_key_alias(settings)))
        if dr_region is None:
            acknowledge(self.bucket.bucket, {
                "HIPAA.Security-S3BucketReplicationEnabled": "This environment has no DR region (config dr.region: "
                                                             "null); prod replicates the bucket to its DR region.",
            })
        self.vault: EncryptedVault | None = None
        self.plan: GfsBackupPlan | None = None
        plan_name = backup_plan_name(settings)
        if backup.plan is None or plan_name is None:
            return
        self.vault = EncryptedVault(self, "Vault", name=settings.name("backup"), key=key,
                                    lock=vault_lock(settings), retain_data=settings.retain_data)
        prefix = settings.name("")
        self.plan = GfsBackupPlan(
            self, "Plan", name=plan_name, vault=self.vault.vault,
            rules=[PlanRuleShape(generation=name, delete_after_days=rule.delete_after_days,
                                 move_to_cold_storage_after_days=rule.move_to_cold_storage_after_days)
                   for name, rule in backup.plan.generations.items()],
            # This environment's database and tables: RDS identifiers and CloudFormation-generated table names
            # both start with the environment prefix.
            resource_arn_patterns=[self.format_arn(service="rds", resource="db", resource_name=f"{prefix}*",
                                                   arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME),
                                   self.format_arn(service="dynamodb", resource="table", resource_name=f"{prefix}*")],
            copy_to_vault_arn=None if dr_region is None else self.format_arn(
                service="backup", region=dr_region, resource="backup-vault", resource_name=dr_vault_name(settings),
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME))
