"""A three-tier VPC: public (load balancer), app (containers, functions), data (isolated, no route out)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms

from constructs import Construct

from .encryption import EncryptedLogGroup
from .nag import GRANTS_POLICY, acknowledge

POSTGRES_PORT = 5432
EPHEMERAL_PORTS = (1024, 65535)  # replies to clients land on these (Linux and NAT use subsets of the range)


@dataclass(frozen=True, kw_only=True)
class TierMasks:
    public: int
    app: int
    data: int


class TieredVpc(Construct):
    """VPC with one subnet per tier per AZ, flow logs and free gateway endpoints.

    With `nat_gateways=0` the app tier is public (tasks get public IPs but only the load balancer's security group
    may reach them); otherwise it is private with one NAT gateway per AZ. The data tier never has a route out.
    """

    def __init__(self, scope: Construct, id: str, *, cidr: str, availability_zones: list[str], nat_gateways: int,
                 masks: TierMasks, logs_key: kms.IKey, flow_log_retention_days: int, retain_data: bool,
                 secrets_endpoint: bool, secrets_endpoint_zones: list[str] | None = None) -> None:
        super().__init__(scope, id)
        app_subnet_type = ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PUBLIC
        self.vpc = ec2.Vpc(
            self, "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            availability_zones=availability_zones,
            nat_gateways=nat_gateways,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=masks.public,
                                        map_public_ip_on_launch=False),
                ec2.SubnetConfiguration(name="app", subnet_type=app_subnet_type, cidr_mask=masks.app,
                                        map_public_ip_on_launch=False if nat_gateways == 0 else None),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                        cidr_mask=masks.data),
            ],
        )
        self.public_subnets = ec2.SubnetSelection(subnet_group_name="public")
        self.app_subnets = ec2.SubnetSelection(subnet_group_name="app")
        self.data_subnets = ec2.SubnetSelection(subnet_group_name="data")
        self.app_tasks_need_public_ip = nat_gateways == 0

        self.flow_logs = EncryptedLogGroup(self, "FlowLogs", key=logs_key, retention_days=flow_log_retention_days,
                                           retain_data=retain_data)
        flow_log = self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(
            self.flow_logs.log_group), traffic_type=ec2.FlowLogTrafficType.ALL)
        acknowledge(flow_log, GRANTS_POLICY)

        # Gateway endpoints are free and keep S3/DynamoDB traffic (backups, chat tables) off the internet path.
        endpoint_subnets = [self.app_subnets, self.data_subnets]
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=endpoint_subnets)
        self.vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB,
                                      subnets=endpoint_subnets)
        # Secrets Manager over PrivateLink, only when something in the VPC needs it: the master secret's rotation
        # function (database.rds_manages_master_password), which has no other way out without NAT and whose traffic
        # then never leaves the VPC. `secrets_endpoint_zones` (default: every zone) places it in fewer zones: its
        # private DNS name answers from the whole VPC, across zones. Tasks with a public IP or NAT reach Secrets
        # Manager's public endpoint over TLS without it.
        self.secrets_manager_endpoint: ec2.InterfaceVpcEndpoint | None = None
        if secrets_endpoint:
            secrets_subnets = self.app_subnets if secrets_endpoint_zones is None else ec2.SubnetSelection(
                subnet_group_name="app", availability_zones=secrets_endpoint_zones)
            self.secrets_manager_endpoint = self.vpc.add_interface_endpoint(
                "SecretsManager", service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
                subnets=secrets_subnets, private_dns_enabled=True, open=False,  # callers admit their own clients
            )
        acknowledge(self.vpc, {
            "HIPAA.Security-VPCNoUnrestrictedRouteToIGW": "Public subnets hold the internet-facing load balancer "
            "(and, without NAT, the app tasks, whose security group admits only the load balancer); the data "
            "subnets have no route out at all.",
        })
        self.app_subnet_cidrs = [subnet.ipv4_cidr_block
                                 for subnet in self.vpc.select_subnets(subnet_group_name="app").subnets]


class DataSubnetAcl(Construct):
    """Stateless guard on the data tier: PostgreSQL in from the app tier, replies out on ephemeral ports, nothing else.

    Security groups already enforce this statefully; the NACL is the second, subnet-wide line a misconfigured
    security group cannot open.
    """

    def __init__(self, scope: Construct, id: str, *, vpc: ec2.IVpc, data_subnets: ec2.SubnetSelection,
                 client_cidrs: list[str], port: int = POSTGRES_PORT) -> None:
        super().__init__(scope, id)
        self.acl = ec2.NetworkAcl(self, "Acl", vpc=vpc, subnet_selection=data_subnets)
        for index, cidr in enumerate(client_cidrs):
            self.acl.add_entry(
                f"PostgresInFromApp{index}", rule_number=100 + index, cidr=ec2.AclCidr.ipv4(cidr),
                traffic=ec2.AclTraffic.tcp_port(port), direction=ec2.TrafficDirection.INGRESS,
                rule_action=ec2.Action.ALLOW,
            )
            self.acl.add_entry(
                f"RepliesOutToApp{index}", rule_number=100 + index, cidr=ec2.AclCidr.ipv4(cidr),
                traffic=ec2.AclTraffic.tcp_port_range(*EPHEMERAL_PORTS),
                direction=ec2.TrafficDirection.EGRESS, rule_action=ec2.Action.ALLOW,
            )
        # Everything else falls through to the NACL's implicit final deny (rule *).
        acknowledge(self, {
            "AwsSolutions-VPC3": "Deliberate: a stateless, subnet-wide second layer behind the security groups, "
                                 "limited to PostgreSQL from the app subnets and replies to them.",
        })


class TierSecurityGroups(Construct):
    """The security-group chain internet -> load balancer -> app -> database.

    Each hop is opened by the construct that creates it: the load balancer's listeners open it to the internet on
    their ports, attaching the service as a target opens load balancer -> app, and the database admits the app
    group on PostgreSQL. Creating the groups here keeps them in the network stack, referenced by the others.
    """

    def __init__(self, scope: Construct, id: str, *, vpc: ec2.IVpc) -> None:
        super().__init__(scope, id)
        self.load_balancer = ec2.SecurityGroup(
            self, "LoadBalancer", vpc=vpc, allow_all_outbound=False,
            description="Public load balancer: listener ports from the internet, out only to app tasks",
        )
        acknowledge(self.load_balancer, {
            "AwsSolutions-EC23": "Internet-facing load balancer: open to the world on its listener ports only "
                                 "(80, and 443 when a certificate is configured); everything behind it is not.",
        })
        self.app = ec2.SecurityGroup(
            self, "App", vpc=vpc, allow_all_outbound=True,
            description="App tier (web tasks, rotation function): in only from the load balancer",
        )
        self.database = ec2.SecurityGroup(
            self, "Database", vpc=vpc, allow_all_outbound=False,
            description="PostgreSQL: in only from the app tier on 5432",
        )

