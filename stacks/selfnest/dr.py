"""selfnest-<env>-dr, in the DR region: where backups land (every tier) and the live replica runs (pilot light)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from refarch.constructs.aws.backup import BackupBucket, EncryptedVault
from refarch.constructs.aws.dr import CrossRegionReadReplica, ReplicaNetwork, ReplicaShape
from refarch.constructs.aws.encryption import CustomerManagedKey, own_function_logs
from refarch.constructs.aws.nag import acknowledge
from refarch.constructs.aws.web import AccessLogBucket

from constructs import Construct

from .backup import backup_bucket_name, bucket_generations, dr_backup_key_alias, dr_vault_name, vault_lock
from .config import SelfnestSettings


def chat_replica_key_alias(settings: SelfnestSettings) -> str:
    """The DR-region key of the chat tables' replicas: known by name, because its id cannot be known in advance."""
    return f"alias/{settings.name('chat-replica')}"


def chat_replicas(settings: SelfnestSettings) -> dict[str, str]:
    """Region -> replica key (alias ARN) for the chat's global tables; empty unless the tier keeps a live replica."""
    return {region: f"arn:{cdk.Aws.PARTITION}:kms:{region}:{cdk.Aws.ACCOUNT_ID}:{chat_replica_key_alias(settings)}"
            for region in settings.dr.replica_regions}


class DisasterRecoveryStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, settings: SelfnestSettings, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        backup, dr = settings.backup, settings.dr
        key = CustomerManagedKey(
            self, "BackupKey", alias=dr_backup_key_alias(settings),
            purpose="Selfnest backups in the DR region: bucket replicas and AWS Backup copies",
            retain_data=settings.retain_data)
        access_logs = AccessLogBucket(self, "AccessLogs", retain_data=settings.retain_data,
                                      expire_after_days=settings.web.log_retention_days)
        # Same generations as the source: S3 does not replicate lifecycle expiries, so the replica runs its own.
        self.bucket = BackupBucket(
            self, "BackupBucket", key=key.key, access_logs=access_logs.bucket,
            bucket_name=backup_bucket_name(settings, self.region), generations=bucket_generations(backup.bucket),
            noncurrent_version_expiry_days=backup.bucket.noncurrent_version_expiry_days,
            retain_data=settings.retain_data)
        acknowledge(self.bucket.bucket, {
            "HIPAA.Security-S3BucketReplicationEnabled": "This bucket is the cross-region replica of the backup "
                                                         "bucket; replicating it again would add a third region.",
        })
        self.vault = None if backup.plan is None else EncryptedVault(
            self, "Vault", name=dr_vault_name(settings), key=key.key, lock=vault_lock(settings),
            retain_data=settings.retain_data)

        self.replica: CrossRegionReadReplica | None = None
        if dr.tier != "pilot_light" or dr.vpc_cidr is None:
            return
        # Created before the chat stack, which names it by alias for its global tables' replicas in this region.
        self.chat_replica_key = CustomerManagedKey(
            self, "ChatReplicaKey", alias=chat_replica_key_alias(settings),
            purpose="Selfnest chat sessions and message history replicas in the DR region",
            retain_data=settings.retain_data)
        database_key = CustomerManagedKey(
            self, "DatabaseKey", alias=f"alias/{settings.name('database-replica')}",
            purpose="Selfnest PostgreSQL read replica in the DR region: storage, Performance Insights and logs",
            retain_data=settings.retain_data, for_cloudwatch_logs=True)
        own_function_logs(self, key=database_key.key, retention_days=settings.network.flow_log_retention_days,
                          retain_data=settings.retain_data)
        network = ReplicaNetwork(
            self, "Network", cidr=dr.vpc_cidr, availability_zones=dr.availability_zones,
            data_mask=settings.network.subnet_masks.data, logs_key=database_key.key,
            flow_log_retention_days=settings.network.flow_log_retention_days, retain_data=settings.retain_data)
        database = settings.database
        self.replica = CrossRegionReadReplica(
            self, "Postgres", source_region=settings.region, source_identifier=settings.name("postgres"),
            instance_identifier=settings.name("postgres-replica"), network=network, key=database_key.key,
            shape=ReplicaShape(engine_version=database.engine_version, instance_type=database.instance_type,
                               max_allocated_storage_gib=database.max_allocated_storage_gib,
                               log_retention_days=database.log_retention_days,
                               deletion_protection=database.deletion_protection),
            retain_data=settings.retain_data)
