"""selfnest-<env>-data: the PostgreSQL database and the key that encrypts it."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ssm as ssm
from refarch.constructs.aws.backup import select_for_backup
from refarch.constructs.aws.database import DatabaseShape, PrivateDatabase

from constructs import Construct

from .backup import backup_plan_name
from .config import SelfnestSettings
from .keys import tier_key
from .network import NetworkStack

DATABASE_NAME = "selfnest"


class DataStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, settings: SelfnestSettings, network: NetworkStack,
                 **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        key = tier_key(
            self, "DatabaseKey", settings=settings, alias=f"alias/{settings.name('database')}",
            purpose="Selfnest PostgreSQL storage, snapshots, credentials and Performance Insights",
            for_cloudwatch_logs=True)
        tiers, groups = network.tiers, network.security_groups
        self.database = PrivateDatabase(
            self, "Postgres", vpc=tiers.vpc, subnets=tiers.data_subnets, security_group=groups.database,
            clients=groups.app, rotation_subnets=tiers.app_subnets, secrets_endpoint=tiers.secrets_manager_endpoint,
            key=key, shape=DatabaseShape(**settings.database.model_dump()), retain_data=settings.retain_data,
            instance_identifier=settings.name("postgres"), database_name=DATABASE_NAME,
            credentials_replica_regions=settings.dr.replica_regions)
        select_for_backup(self.database.instance, plan_name=backup_plan_name(settings))
        self.api_secret_replica_arn: str | None = None
        if settings.dr.standby_region is not None:
            # The warm standby's API reads the replica of its secret in the DR region, whose ARN is the primary's
            # with the region changed. Derived here, where the primary's ARN is a plain Ref, and handed to the DR
            # stack as one value (CDK passes a resource attribute across regions, not an expression over one).
            secret_name = cdk.Fn.select(6, cdk.Fn.split(":", self.database.app_secret.secret_arn))
            self.api_secret_replica_arn = ssm.StringParameter(
                self, "ApiSecretReplicaArn", parameter_name=f"/{settings.name('api-secret-replica-arn')}",
                description="ARN of the API's database secret replica in the warm standby region",
                string_value=cdk.Fn.join("", [f"arn:{self.partition}:secretsmanager:{settings.dr.standby_region}:",
                                              self.account, ":secret:", secret_name])).string_value
