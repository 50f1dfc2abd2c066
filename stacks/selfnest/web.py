"""selfnest-<env>-web: the public load balancer, the API service on Fargate and, in prod, the WAF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_route53 as route53
from refarch.constructs.aws.database import APPLICATION_LOGIN
from refarch.constructs.aws.dr import FailoverAlias, PrimaryHealthCheck, hosted_zone
from refarch.constructs.aws.encryption import own_function_logs
from refarch.constructs.aws.network import POSTGRES_PORT
from refarch.constructs.aws.web import (
    AccessLogBucket,
    LoadBalancedService,
    MigrationOnDeploy,
    MigrationTask,
    RegionalWebFirewall,
    ServiceShape,
)

from constructs import Construct

from .config import SelfnestSettings
from .data import DATABASE_NAME, DataStack
from .identity import IdentityStack
from .keys import tier_key
from .messaging import MessagingStack
from .network import NetworkStack

API_DIRECTORY = Path(__file__).resolve().parents[2] / "services" / "selfnest_api"


class WebStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, settings: SelfnestSettings, network: NetworkStack,
                 data: DataStack, identity: IdentityStack, messaging: MessagingStack,
                 **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        web, tiers, groups, database = settings.web, network.tiers, network.security_groups, data.database
        logs_key = tier_key(
            self, "LogsKey", settings=settings, alias=f"alias/{settings.name('web-logs')}",
            purpose="Selfnest API container logs", for_cloudwatch_logs=True)
        access_logs = AccessLogBucket(self, "AccessLogs", retain_data=settings.retain_data,
                                      expire_after_days=web.log_retention_days)
        self.api = LoadBalancedService(
            self, "Api", vpc=tiers.vpc, public_subnets=tiers.public_subnets, app_subnets=tiers.app_subnets,
            load_balancer_security_group=groups.load_balancer, app_security_group=groups.app,
            assign_public_ip=tiers.app_tasks_need_public_ip, image_directory=str(API_DIRECTORY),
            shape=ServiceShape(
                cpu=web.cpu, memory_mib=web.memory_mib, min_tasks=web.min_tasks, max_tasks=web.max_tasks,
                container_port=web.container_port, log_retention_days=web.log_retention_days,
                environment=api_environment(settings, db_host=database.endpoint.hostname, db_region=self.region,
                                            identity=identity, messaging=messaging),
            ),
            logs_key=logs_key, access_logs=access_logs.bucket, certificate_arn=web.certificate_arn,
            retain_data=settings.retain_data)
        # The API signs in with IAM tokens its own role signs: no secret to read, no password to leak or rotate.
        database.grant_connect(self.api.task_role)
        # Run by the deploy itself, before the service starts: the service signs in as the login it creates. The
        # master secret (RDS-managed where it holds only username and password) is the only one it reads; where the
        # database is comes from DB_HOST/DB_PORT/DB_NAME.
        self.migration = MigrationTask(
            self, "Migration", image=self.api.image, cpu=256, memory_mib=512, log_group=self.api.logs,
            environment={"DB_HOST": database.endpoint.hostname, "DB_PORT": str(database.port),
                         "DB_NAME": database.database_name, "DB_SECRET_ARN": database.secret.secret_arn,
                         "APP_DB_IAM_USER": database.application_login,
                         # The password-era logins are retired only where this instance sees every session that
                         # may use them: a warm standby's API signs in to the replica (docs/dr.md, by hand there).
                         "RETIRE_PRE_IAM_LOGINS": "true" if settings.dr.standby_region is None else "false",
                         "USER_POOL_ID": identity.directory.pool.user_pool_id,
                         "USER_POOL_CLIENT_IDS": ",".join(identity.directory.api_client_ids),
                         "SESSION_EVENTS_TOPIC_ARN": messaging.session_events.topic_arn})
        database.grant_read_credentials(self.migration.task_role, secret=database.secret)
        self.migrate_on_deploy = MigrationOnDeploy(
            self, "MigrateOnDeploy", migration=self.migration, cluster=self.api.cluster, vpc=tiers.vpc,
            subnets=tiers.app_subnets, security_group=groups.app, assign_public_ip=tiers.app_tasks_need_public_ip,
            logs_key=logs_key, log_retention_days=web.log_retention_days, retain_data=settings.retain_data)
        self.api.service.node.add_dependency(self.migrate_on_deploy.resource)
        cdk.CfnOutput(self, "MigrateTaskDefinition", value=self.migration.task.task_definition_arn,
                      description="Run by every deploy that changes it; by hand: aws ecs run-task --launch-type "
                                  "FARGATE --task-definition <this> --cluster <cluster> with the API service's "
                                  "subnets and security group")
        cdk.CfnOutput(self, "Cluster", value=self.api.cluster.cluster_name)
        grant_api_calls(self.api.task_role, identity=identity, messaging=messaging)
        own_function_logs(self, key=logs_key, retention_days=web.log_retention_days,
                          retain_data=settings.retain_data)
        failover = settings.dr.failover
        if settings.dr.standby_region is not None and failover is not None:
            # Warm standby: this region answers the failover name while Route 53's probes of this load balancer
            # pass; the DR stack holds the SECONDARY record to the standby's.
            self.health_check = PrimaryHealthCheck(
                self, "PrimaryHealthCheck", load_balancer=self.api.load_balancer,
                https=web.certificate_arn is not None, interval_seconds=failover.health_check_interval_seconds,
                failure_threshold=failover.failure_threshold)
            zone = hosted_zone(self, "Zone", hosted_zone_id=failover.hosted_zone_id, zone_name=failover.zone_name)
            FailoverAlias(self, "FailoverPrimary", zone=zone, record_name=failover.record_name,
                          load_balancer=self.api.load_balancer, failover=route53.Failover.PRIMARY,
                          health_check=self.health_check.health_check)
        if web.waf:
            RegionalWebFirewall(self, "Firewall", resource_arn=self.api.load_balancer.load_balancer_arn,
                                requests_per_5_minutes_per_ip=web.waf_requests_per_5_minutes_per_ip,
                                metric_prefix=settings.name("web"), logs_key=logs_key,
                                log_retention_days=web.log_retention_days, retain_data=settings.retain_data)


def api_environment(settings: SelfnestSettings, *, db_host: str, db_region: str, identity: IdentityStack,
                    messaging: MessagingStack) -> dict[str, str]:
    """The API container's settings (services/selfnest_api/settings.py), in the primary region or a warm standby."""
    web = settings.web
    return {
        "DB_HOST": db_host,
        "DB_PORT": str(POSTGRES_PORT),
        "DB_NAME": DATABASE_NAME,
        # The API's own login, never the master: an IAM token per connection, signed for the database's region.
        "DB_IAM_USER": APPLICATION_LOGIN,
        "DB_REGION": db_region,
        "USER_POOL_ID": identity.directory.pool.user_pool_id,
        "USER_POOL_CLIENT_IDS": ",".join(identity.directory.api_client_ids),
        "SESSION_EVENTS_TOPIC_ARN": messaging.session_events.topic_arn,
        "MAX_OPEN_BOOKINGS": str(web.max_open_bookings_per_client),
        "BOOKING_CHANGES_PER_HOUR": str(web.booking_changes_per_hour),
        "SESSIONS_PAGE_SIZE": str(web.sessions_page_size),
    }


def grant_api_calls(role: iam.IRole, *, identity: IdentityStack, messaging: MessagingStack) -> None:
    """What the API calls besides its database: publish session events, read the therapist roster."""
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["sns:Publish"], resources=[messaging.session_events.topic_arn]))
    # SNS encrypts each published message under the topic's key on the publisher's behalf.
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[messaging.topic_key.key_arn]))
    # The therapist roster (selfnest_api/roster.py): who holds therapist rights now, read from the pool.
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["cognito-idp:ListUsersInGroup", "cognito-idp:AdminGetUser"],
        resources=[identity.directory.pool.user_pool_arn]))
