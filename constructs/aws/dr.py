"""Pilot light in the DR region: a small isolated network and a cross-region read replica of the database."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds

from constructs import Construct

from .database import (
    DEFAULT_PORT,
    ENHANCED_MONITORING_ROLE,
    EXPORTED_LOGS,
    exported_log_groups,
    postgres_engine,
    tls_only_parameters,
)
from .encryption import EncryptedLogGroup
from .nag import GRANTS_POLICY, acknowledge
from .network import POSTGRES_PORT


class ReplicaNetwork(Construct):
    """A VPC with isolated data subnets only: the replica needs no route anywhere until it is promoted.

    Failing over adds the app tier here (redeploying the network and web stacks from code into this region).
    """

    def __init__(self, scope: Construct, id: str, *, cidr: str, availability_zones: list[str], data_mask: int,
                 logs_key: kms.IKey, flow_log_retention_days: int, retain_data: bool) -> None:
        super().__init__(scope, id)
        self.vpc = ec2.Vpc(
            self, "Vpc", ip_addresses=ec2.IpAddresses.cidr(cidr), availability_zones=availability_zones,
            nat_gateways=0, restrict_default_security_group=True,
            subnet_configuration=[ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                                          cidr_mask=data_mask)],
        )
        self.data_subnets = ec2.SubnetSelection(subnet_group_name="data")
        self.flow_logs = EncryptedLogGroup(self, "FlowLogs", key=logs_key, retention_days=flow_log_retention_days,
                                           retain_data=retain_data)
        flow_log = self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(
            self.flow_logs.log_group), traffic_type=ec2.FlowLogTrafficType.ALL)
        acknowledge(flow_log, GRANTS_POLICY)
        # Nothing may connect until failover: the runbook admits the recovered app tier's security group then.
        self.security_group = ec2.SecurityGroup(
            self, "Replica", vpc=self.vpc, allow_all_outbound=False,
            description="PostgreSQL read replica: no inbound until failover admits the recovered app tier")


@dataclass(frozen=True, kw_only=True)
class ReplicaShape:
    engine_version: str
    instance_type: str
    max_allocated_storage_gib: int
    log_retention_days: int
    deletion_protection: bool


class CrossRegionReadReplica(Construct):
    """A read replica, in this stack's region, of a PostgreSQL instance in another region of the same account.

    RDS copies the encrypted source across regions and re-encrypts it with `key` (a key in this region).
    """

    def __init__(self, scope: Construct, id: str, *, source_region: str, source_identifier: str,
                 instance_identifier: str, network: ReplicaNetwork, key: kms.IKey, shape: ReplicaShape,
                 retain_data: bool) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        # Built from known parts: CDK would format an imported instance's ARN in *this* region, and a stack cannot
        # read another region's outputs without a custom resource.
        self.source_arn = (f"arn:{stack.partition}:rds:{source_region}:{stack.account}:db:{source_identifier}")
        engine = postgres_engine(shape.engine_version)
        source = rds.DatabaseInstance.from_database_instance_attributes(
            self, "Source", instance_identifier=source_identifier, instance_endpoint_address="unused",
            port=POSTGRES_PORT, security_groups=[], engine=engine)
        log_groups = exported_log_groups(self, instance_identifier=instance_identifier, key=key,
                                         retention_days=shape.log_retention_days, retain_data=retain_data)
        self.instance = rds.DatabaseInstanceReadReplica(
            self, "Instance",
            source_database_instance=source,
            instance_type=ec2.InstanceType(shape.instance_type),
            instance_identifier=instance_identifier,
            vpc=network.vpc,
            vpc_subnets=network.data_subnets,
            security_groups=[network.security_group],
            port=POSTGRES_PORT,
            storage_encrypted=True,
            storage_encryption_key=key,
            storage_type=rds.StorageType.GP3,
            max_allocated_storage=shape.max_allocated_storage_gib,
            parameter_group=tls_only_parameters(self, "Parameters", engine=engine),
            publicly_accessible=False,
            iam_authentication=True,
            multi_az=False,
            deletion_protection=shape.deletion_protection,
            auto_minor_version_upgrade=True,
            monitoring_interval=cdk.Duration.seconds(60),
            enable_performance_insights=True,
            performance_insight_encryption_key=key,
            cloudwatch_logs_exports=list(EXPORTED_LOGS),
            removal_policy=cdk.RemovalPolicy.RETAIN if retain_data else cdk.RemovalPolicy.DESTROY,
        )
        replica = self.instance.node.default_child
        assert isinstance(replica, rds.CfnDBInstance)
        replica.source_db_instance_identifier = self.source_arn
        # A cross-region replica is encrypted by naming its key (KmsKeyId); CloudFormation rejects StorageEncrypted
        # next to SourceDBInstanceIdentifier.
        replica.add_property_deletion_override("StorageEncrypted")
        for log_group in log_groups:
            self.instance.node.add_dependency(log_group)

        acknowledge(self.instance, {**DEFAULT_PORT, **ENHANCED_MONITORING_ROLE})
        acknowledge(self.instance, {
            "AwsSolutions-RDS3": "Pilot light keeps one replica warm at the lowest cost; the runbook makes it "
                                 "Multi-AZ when it is promoted.",
            "HIPAA.Security-RDSMultiAZSupport": "Pilot light keeps one replica warm at the lowest cost; the runbook "
                                                "makes it Multi-AZ when it is promoted.",
            "HIPAA.Security-RDSInstanceBackupEnabled": "RDS for PostgreSQL read replicas take no automated backups; "
                                                       "the source's backups (and their DR-region copies) cover the "
                                                       "data, and the runbook turns backups on at promotion.",
            "HIPAA.Security-RDSInBackupPlan": "A replica of a database that is already in the AWS Backup plan "
                                              "(and copied to this region's vault); backing it up again would "
                                              "only duplicate the recovery points.",
        })
