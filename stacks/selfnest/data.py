"""selfnest-<env>-data: the PostgreSQL database and the key that encrypts it."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
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
