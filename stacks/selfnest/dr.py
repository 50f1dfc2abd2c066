"""selfnest-<env>-dr, in the DR region: where backups land (every tier), the live replica runs (pilot light, warm
standby) and a scaled-down web tier waits behind Route 53 failover (warm standby)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_route53 as route53
from refarch.constructs.aws.backup import BackupBucket, EncryptedVault
from refarch.constructs.aws.database import grant_connect_as_application
from refarch.constructs.aws.dr import (
    CrossRegionReadReplica,
    FailoverAlias,
    ReplicaNetwork,
    ReplicaShape,
    StandbyWebMasks,
    hosted_zone,
)
from refarch.constructs.aws.encryption import CustomerManagedKey, own_function_logs
from refarch.constructs.aws.nag import acknowledge
from refarch.constructs.aws.web import AccessLogBucket, LoadBalancedService, RegionalWebFirewall, ServiceShape

from constructs import Construct

from .backup import backup_bucket_name, bucket_generations, dr_backup_key_alias, dr_vault_name, vault_lock
from .config import SelfnestSettings
from .identity import IdentityStack
from .messaging import MessagingStack
from .web import API_DIRECTORY, api_environment, grant_api_calls


def chat_replica_key_alias(settings: SelfnestSettings) -> str:
    """The DR-region key of the chat tables' replicas: known by name, because its id cannot be known in advance."""
    return f"alias/{settings.name('chat-replica')}"


def chat_replicas(settings: SelfnestSettings) -> dict[str, str]:
    """Region -> replica key (alias ARN) for the chat's global tables; empty unless the tier keeps a live replica."""
    return {region: f"arn:{cdk.Aws.PARTITION}:kms:{region}:{cdk.Aws.ACCOUNT_ID}:{chat_replica_key_alias(settings)}"
            for region in settings.dr.replica_regions}


class DisasterRecoveryStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, settings: SelfnestSettings,
                 identity: IdentityStack | None = None, messaging: MessagingStack | None = None,
                 **kwargs: Any) -> None:
        """`identity` and `messaging`: the primary region's stacks, which a warm standby's API reads
        (as cross-region references); other tiers need none of them."""
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
        if not dr.replica_regions or dr.vpc_cidr is None:
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
        masks = settings.network.subnet_masks
        network = ReplicaNetwork(
            self, "Network", cidr=dr.vpc_cidr, availability_zones=dr.availability_zones,
            data_mask=masks.data, logs_key=database_key.key,
            flow_log_retention_days=settings.network.flow_log_retention_days, retain_data=settings.retain_data,
            web_tier=None if dr.standby_region is None else StandbyWebMasks(public=masks.public, app=masks.app))
        database = settings.database
        self.replica = CrossRegionReadReplica(
            self, "Postgres", source_region=settings.region, source_identifier=settings.name("postgres"),
            instance_identifier=settings.name("postgres-replica"), network=network, key=database_key.key,
            shape=ReplicaShape(engine_version=database.engine_version, instance_type=database.instance_type,
                               max_allocated_storage_gib=database.max_allocated_storage_gib,
                               log_retention_days=database.log_retention_days,
                               deletion_protection=database.deletion_protection),
            retain_data=settings.retain_data)
        self.standby: LoadBalancedService | None = None
        if dr.standby_region is not None:
            if identity is None or messaging is None:
                raise ValueError("a warm standby needs the primary region's identity and messaging stacks")
            self.standby = self._standby(settings, network=network, identity=identity,
                                         messaging=messaging)

    def _standby(self, settings: SelfnestSettings, *, network: ReplicaNetwork,
                 identity: IdentityStack, messaging: MessagingStack) -> LoadBalancedService:
        """Warm standby: the API at `dr.standby_tasks` tasks behind its own load balancer, reading the replica as
        the API's login (IAM tokens for the replica); Route 53 sends clients here when the primary's health check
        fails. Writes fail until the runbook promotes the replica (docs/dr.md); auto scaling then grows it to
        `web.max_tasks`."""
        web, dr = settings.web, settings.dr
        assert self.replica is not None and network.web_groups is not None and dr.failover is not None
        logs_key = CustomerManagedKey(
            self, "StandbyLogsKey", alias=f"alias/{settings.name('standby-web-logs')}",
            purpose="Selfnest warm standby API container and firewall logs", retain_data=settings.retain_data,
            for_cloudwatch_logs=True)
        access_logs = AccessLogBucket(self, "StandbyAccessLogs", retain_data=settings.retain_data,
                                      expire_after_days=web.log_retention_days)
        service = LoadBalancedService(
            self, "Standby", vpc=network.vpc, public_subnets=network.public_subnets, app_subnets=network.app_subnets,
            load_balancer_security_group=network.web_groups.load_balancer, app_security_group=network.web_groups.app,
            assign_public_ip=False, image_directory=str(API_DIRECTORY),
            shape=ServiceShape(
                cpu=web.cpu, memory_mib=web.memory_mib, min_tasks=dr.standby_tasks,
                max_tasks=max(web.max_tasks, dr.standby_tasks), container_port=web.container_port,
                log_retention_days=web.log_retention_days,
                environment=api_environment(settings, db_host=self.replica.instance.db_instance_endpoint_address,
                                            db_region=self.region, identity=identity, messaging=messaging)),
            logs_key=logs_key.key, access_logs=access_logs.bucket, certificate_arn=dr.certificate_arn,
            retain_data=settings.retain_data)
        # The same login as in the primary region (the replica copies its roles), signed in with IAM tokens for the
        # replica itself: rds-db:connect names the replica's own DbiResourceId.
        grant_connect_as_application(self.replica.instance, service.task_role)
        grant_api_calls(service.task_role, identity=identity, messaging=messaging)
        if web.waf:
            RegionalWebFirewall(self, "StandbyFirewall", resource_arn=service.load_balancer.load_balancer_arn,
                                requests_per_5_minutes_per_ip=web.waf_requests_per_5_minutes_per_ip,
                                metric_prefix=settings.name("standby-web"), logs_key=logs_key.key,
                                log_retention_days=web.log_retention_days, retain_data=settings.retain_data)
        failover = dr.failover
        FailoverAlias(self, "FailoverSecondary",
                      zone=hosted_zone(self, "Zone", hosted_zone_id=failover.hosted_zone_id,
                                       zone_name=failover.zone_name),
                      record_name=failover.record_name, load_balancer=service.load_balancer,
                      failover=route53.Failover.SECONDARY)
        return service
