"""DR-region parts: the network and cross-region read replica of pilot light and warm standby, and the Route 53
failover records and health check that move clients to a warm standby.

Recovery objectives each tier gives (AWS whitepaper "Disaster Recovery of Workloads on AWS"; our numbers come from the
parts each tier runs, see TIER_OBJECTIVES and docs/dr.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets

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
from .network import POSTGRES_PORT, DataSubnetAcl, TierSecurityGroups
from .web import HEALTH_CHECK_PATH


@dataclass(frozen=True, kw_only=True)
class Objectives:
    """What a DR tier promises at most: data lost (RPO) and time to serve again (RTO), and why."""

    rpo_minutes: float
    rto_minutes: float
    why: str


# Upper bounds this project designs each tier for. The replica tiers' RPO is the replication lag of the RDS
# cross-region read replica and the DynamoDB global tables (asynchronous: typically seconds, never zero — what was
# committed in the primary and not yet shipped is lost). Warm standby's RTO: Route 53 notices the outage
# (FailoverSettings.detection_seconds, at most 5 minutes of probes), clients follow the alias within its 60-second
# TTL, the replica is promoted (minutes) and auto scaling grows the standby tasks.
TIER_OBJECTIVES: dict[str, Objectives] = {
    "backup_restore": Objectives(rpo_minutes=24 * 60, rto_minutes=24 * 60,
                                 why="the newest daily backup copy; redeploy every tier and restore the data"),
    # Tens of minutes once the app tier deploys from code into the DR region; today's runbook takes hours there.
    "pilot_light": Objectives(rpo_minutes=5, rto_minutes=60,
                              why="replication lag; promote the replica, deploy the app tier, switch DNS by hand"),
    # Identity is the exception: Cognito user pools are regional and not replicated (docs/dr.md), so sign-in needs the
    # primary region's Cognito; the web and data tiers recover within these bounds without it.
    "warm_standby": Objectives(rpo_minutes=5, rto_minutes=15,
                               why="replication lag; DNS fails over on its own, promote the replica, scale out"),
}


@dataclass(frozen=True, kw_only=True)
class StandbyWebMasks:
    """Prefix lengths of warm standby's per-AZ public (load balancer) and app (tasks) subnets."""

    public: int
    app: int


class ReplicaNetwork(Construct):
    """The DR region's VPC. Pilot light: isolated data subnets only, the replica needs no route anywhere until it is
    promoted (failing over adds the app tier, redeploying the network and web stacks from code into this region).

    Warm standby (`web_tier`): also public subnets for a load balancer and private app subnets with one NAT gateway
    (a scaled-down standby; a zone outage in the DR region during a primary-region disaster is a second failure),
    listed after the data subnets so that moving from pilot light keeps their addresses and the replica in place.
    """

    def __init__(self, scope: Construct, id: str, *, cidr: str, availability_zones: list[str], data_mask: int,
                 logs_key: kms.IKey, flow_log_retention_days: int, retain_data: bool,
                 web_tier: StandbyWebMasks | None = None) -> None:
        super().__init__(scope, id)
        subnets = [ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                           cidr_mask=data_mask)]
        if web_tier is not None:
            subnets += [ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC,
                                                cidr_mask=web_tier.public, map_public_ip_on_launch=False),
                        ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                                                cidr_mask=web_tier.app)]
        self.vpc = ec2.Vpc(
            self, "Vpc", ip_addresses=ec2.IpAddresses.cidr(cidr), availability_zones=availability_zones,
            nat_gateways=0 if web_tier is None else 1, restrict_default_security_group=True,
            subnet_configuration=subnets,
        )
        self.data_subnets = ec2.SubnetSelection(subnet_group_name="data")
        self.public_subnets = ec2.SubnetSelection(subnet_group_name="public")
        self.app_subnets = ec2.SubnetSelection(subnet_group_name="app")
        self.flow_logs = EncryptedLogGroup(self, "FlowLogs", key=logs_key, retention_days=flow_log_retention_days,
                                           retain_data=retain_data)
        flow_log = self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(
            self.flow_logs.log_group), traffic_type=ec2.FlowLogTrafficType.ALL)
        acknowledge(flow_log, GRANTS_POLICY)
        self.web_groups: TierSecurityGroups | None = None
        if web_tier is None:
            # Nothing may connect until failover: the runbook admits the recovered app tier's security group then.
            self.security_group: ec2.ISecurityGroup = ec2.SecurityGroup(
                self, "Replica", vpc=self.vpc, allow_all_outbound=False,
                description="PostgreSQL read replica: no inbound until failover admits the recovered app tier")
        else:
            # The standby's tasks read the replica now (and write to it once promoted): the same chain as the
            # primary region's, internet -> load balancer -> app -> database, and the same stateless data-tier NACL.
            self.web_groups = TierSecurityGroups(self, "SecurityGroups", vpc=self.vpc)
            self.security_group = self.web_groups.database
            self.security_group.add_ingress_rule(self.web_groups.app, ec2.Port.tcp(POSTGRES_PORT),
                                                 "PostgreSQL from the warm standby app tasks")
            DataSubnetAcl(self, "DataSubnetAcl", vpc=self.vpc, data_subnets=self.data_subnets,
                          client_cidrs=[subnet.ipv4_cidr_block
                                        for subnet in self.vpc.select_subnets(subnet_group_name="app").subnets])
            # S3 (image layers from ECR) stays off the NAT gateway's per-GB bill.
            self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3,
                                          subnets=[self.app_subnets])
            acknowledge(self.vpc, {
                "HIPAA.Security-VPCNoUnrestrictedRouteToIGW": "Public subnets hold only the standby's internet-facing "
                "load balancer and NAT gateway; tasks are in private subnets, the replica in isolated ones.",
            })


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


class PrimaryHealthCheck(Construct):
    """A Route 53 health check of the primary region's load balancer, probing the API's health path.

    HTTPS when the load balancer serves it: port 80 then only redirects, and Route 53 counts any status from 200 to
    399 as healthy, so an HTTP check would pass while the API behind the load balancer is down. The probe names the
    load balancer's own DNS name, which the certificate does not carry: without SNI the load balancer answers with
    its default certificate (Route 53 would otherwise retry the handshake without SNI after a name mismatch).
    """

    def __init__(self, scope: Construct, id: str, *, load_balancer: elbv2.IApplicationLoadBalancer, https: bool,
                 interval_seconds: int, failure_threshold: int) -> None:
        super().__init__(scope, id)
        self.health_check = route53.HealthCheck(
            self, "HealthCheck",
            type=route53.HealthCheckType.HTTPS if https else route53.HealthCheckType.HTTP,
            fqdn=load_balancer.load_balancer_dns_name, port=443 if https else 80, resource_path=HEALTH_CHECK_PATH,
            enable_sni=False if https else None, request_interval=cdk.Duration.seconds(interval_seconds),
            failure_threshold=failure_threshold)


class FailoverAlias(Construct):
    """One of a failover pair: an alias A record for `record_name` to `load_balancer`.

    PRIMARY answers while its health check (and, with evaluate target health, the load balancer's own targets) is
    healthy; SECONDARY answers otherwise. Alias records to a load balancer have the fixed TTL of 60 seconds.
    """

    def __init__(self, scope: Construct, id: str, *, zone: route53.IHostedZone, record_name: str,
                 load_balancer: elbv2.IApplicationLoadBalancer, failover: route53.Failover,
                 health_check: route53.IHealthCheck | None = None) -> None:
        super().__init__(scope, id)
        self.record = route53.ARecord(
            self, "Record", zone=zone, record_name=record_name, failover=failover, health_check=health_check,
            set_identifier=f"{failover.value.lower()}-{cdk.Stack.of(self).region}",
            target=route53.RecordTarget.from_alias(route53_targets.LoadBalancerTarget(
                load_balancer, _EvaluateTargetHealth())))


@jsii.implements(route53_targets.IAliasRecordTargetProps)
class _EvaluateTargetHealth:
    """Alias target options: let Route 53 also judge the load balancer by its own targets' health."""

    @property
    def evaluate_target_health(self) -> bool:
        return True

    @property
    def hosted_zone_id(self) -> str | None:
        return None


def hosted_zone(scope: Construct, id: str, *, hosted_zone_id: str, zone_name: str) -> route53.IHostedZone:
    """The public hosted zone named in config: imported (no lookup), so synth stays offline."""
    return route53.HostedZone.from_hosted_zone_attributes(scope, id, hosted_zone_id=hosted_zone_id,
                                                          zone_name=zone_name)
