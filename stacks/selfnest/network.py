"""selfnest-<env>-network: the VPC, its tiers and the security-group chain."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from refarch.constructs.aws.database import rds_manages_master_password
from refarch.constructs.aws.encryption import own_function_logs
from refarch.constructs.aws.network import DataSubnetAcl, TieredVpc, TierMasks, TierSecurityGroups

from constructs import Construct

from .config import SelfnestSettings
from .keys import tier_key


class NetworkStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, settings: SelfnestSettings, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        network = settings.network
        logs_key = tier_key(
            self, "LogsKey", settings=settings, alias=f"alias/{settings.name('network-logs')}",
            purpose="Selfnest VPC flow logs and CDK's helper-function logs", for_cloudwatch_logs=True)
        own_function_logs(self, key=logs_key, retention_days=network.flow_log_retention_days,
                          retain_data=settings.retain_data)
        self.tiers = TieredVpc(
            self, "Vpc", cidr=network.vpc_cidr, availability_zones=network.availability_zones,
            nat_gateways=network.nat_gateway_count, masks=TierMasks(**network.subnet_masks.model_dump()),
            logs_key=logs_key, flow_log_retention_days=network.flow_log_retention_days,
            retain_data=settings.retain_data,
            secrets_endpoint=not rds_manages_master_password(credentials_replica_regions=settings.dr.replica_regions),
            secrets_endpoint_zones=network.secrets_endpoint_availability_zones)
        DataSubnetAcl(self, "DataSubnetAcl", vpc=self.tiers.vpc, data_subnets=self.tiers.data_subnets,
                      client_cidrs=self.tiers.app_subnet_cidrs)
        self.security_groups = TierSecurityGroups(self, "SecurityGroups", vpc=self.tiers.vpc)
