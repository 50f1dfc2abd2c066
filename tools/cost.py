"""`refarch cost`: the monthly bill of a deployment, line by line, from its templates or offline plan.

Every line names the resource it comes from, the unit, the quantity, the unit price (from the dated price sheet in
pricing/, which names its source page) and the monthly amount. Lines that bill whether or not anyone uses the system
(hours, keys, addresses, provisioned capacity) make the idle cost; usage-priced lines are computed at the volumes in
pricing/assumptions.yaml and marked as assumptions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from .deployment import HOURS_PER_MONTH, CfnDeployment, CfnResource, PlannedResource, PulumiDeployment

PRICING_DIR = Path(__file__).resolve().parents[1] / "pricing"
DAYS_PER_MONTH = HOURS_PER_MONTH / 24


class PricingError(Exception):
    """A price sheet or assumption is missing or malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Price:
    key: str
    amount: float
    unit: str
    source: str


@dataclass(frozen=True)
class PriceSheet:
    path: Path
    as_of: str
    region: str
    prices: dict[str, Price]

    def __getitem__(self, key: str) -> Price:
        if key not in self.prices:
            raise PricingError(f"{_shown(self.path)}: prices.{key}: missing (add it with its price, unit and source "
                               f"page)")
        return self.prices[key]


def load_sheet(cloud: str, region: str, directory: Path = PRICING_DIR) -> PriceSheet:
    path = directory / f"{cloud}-{region}.yaml"
    shown = _shown(path)
    if not path.is_file():
        raise PricingError(f"{shown}: no price sheet for {cloud} region {region} (copy one in {directory.name}/ "
                           f"and fill in that region's prices)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    prices = {}
    for key, entry in (data.get("prices") or {}).items():
        if not isinstance(entry, dict) or not {"price", "unit", "source"} <= set(entry):
            raise PricingError(f"{shown}: prices.{key}: needs price, unit and source")
        if not str(entry["source"]).startswith("https://"):
            raise PricingError(f"{shown}: prices.{key}.source: must be the https:// page the price was read from")
        prices[key] = Price(key, float(entry["price"]), str(entry["unit"]), str(entry["source"]))
    if "as_of" not in data:
        raise PricingError(f"{shown}: as_of: missing (the date the prices were read)")
    return PriceSheet(path, str(data["as_of"]), str(data.get("region", region)), prices)


@dataclass(frozen=True)
class Assumption:
    quantity: float
    meaning: str


def load_assumptions(cloud: str, directory: Path = PRICING_DIR) -> dict[str, Assumption]:
    data = yaml.safe_load((directory / "assumptions.yaml").read_text(encoding="utf-8")) or {}
    return {key: Assumption(float(entry["quantity"]), str(entry["meaning"]))
            for key, entry in (data.get(cloud) or {}).items()}


@dataclass(frozen=True)
class Line:
    """One billed item of one resource."""

    resource: str
    item: str  # what is billed, e.g. "public IPv4 addresses"
    region: str
    unit: str
    quantity: float
    unit_price: float
    price_key: str
    source: str
    assumption: str | None = None  # set for usage-priced items: what volume was assumed

    @property
    def monthly(self) -> float:
        return self.quantity * self.unit_price

    @property
    def always_on(self) -> bool:
        return self.assumption is None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "monthly": round(self.monthly, 4), "always_on": self.always_on}


@dataclass(frozen=True)
class Bill:
    deployment: str
    sheets: list[PriceSheet]
    lines: list[Line]
    unpriced: list[str]  # resource types the calculator knows neither a price nor a no-charge reason for

    @property
    def always_on_monthly(self) -> float:
        return sum(line.monthly for line in self.lines if line.always_on)

    @property
    def idle_per_day(self) -> float:
        return self.always_on_monthly / DAYS_PER_MONTH

    @property
    def usage_monthly(self) -> float:
        return sum(line.monthly for line in self.lines if not line.always_on)

    @property
    def monthly(self) -> float:
        return self.always_on_monthly + self.usage_monthly

    def as_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "price_sheets": [{"file": _shown(sheet.path), "as_of": sheet.as_of,
                              "region": sheet.region} for sheet in self.sheets],
            "lines": [line.as_dict() for line in self.lines],
            "always_on_monthly": round(self.always_on_monthly, 2),
            "idle_per_day": round(self.idle_per_day, 2),
            "usage_monthly_at_assumed_volumes": round(self.usage_monthly, 2),
            "monthly": round(self.monthly, 2),
            "unpriced_types": self.unpriced,
        }


class LineMaker:
    """Builds lines for one resource with the right region's prices and the cloud's assumptions."""

    def __init__(self, sheet: PriceSheet, assumptions: dict[str, Assumption], resource: str) -> None:
        self.sheet, self.assumptions, self.resource = sheet, assumptions, resource
        self.lines: list[Line] = []

    def fixed(self, item: str, price_key: str, quantity: float) -> None:
        """Billed whether or not the resource is used (per hour or per month)."""
        price = self.sheet[price_key]
        self.lines.append(Line(self.resource, item, self.sheet.region, price.unit, quantity, price.amount, price_key,
                               price.source))

    def usage(self, item: str, price_key: str, assumption_key: str, per_unit: float = 1.0,
              times: float = 1.0) -> None:
        """Billed by use: quantity = assumed volume x `times` / `per_unit` (e.g. requests per million)."""
        price = self.sheet[price_key]
        if assumption_key not in self.assumptions:
            raise PricingError(f"pricing/assumptions.yaml: {assumption_key}: missing")
        assumed = self.assumptions[assumption_key]
        quantity = assumed.quantity * times / per_unit
        self.lines.append(Line(self.resource, item, self.sheet.region, price.unit, quantity, price.amount, price_key,
                               price.source, f"{number(assumed.quantity)} {assumed.meaning}"))


# ---------------------------------------------------------------------------------------------------------------- AWS

# Types billed nothing by themselves: configuration, permissions, wiring, or billed through the resource they serve
# (a stage through its API, a subscription through its topic). A type in neither this set nor AWS_RULES is listed
# as unpriced on the bill, and the infra tests fail naming it, so a new paid resource cannot slip in unseen.
NO_CHARGE_AWS = frozenset({
    # Warm standby's failover records are aliases to load balancers: Route 53 charges no queries for those, and the
    # hosted zone they live in is the user's own (imported, not created here). Its secret-ARN hand-over parameter is
    # a standard-tier SSM parameter (no charge).
    "AWS::Route53::RecordSet", "AWS::SSM::Parameter",
    "AWS::CDK::Metadata", "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::KMS::Alias",
    "AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::RouteTable", "AWS::EC2::Route", "AWS::EC2::InternetGateway",
    "AWS::EC2::VPCGatewayAttachment", "AWS::EC2::SubnetRouteTableAssociation", "AWS::EC2::NetworkAcl",
    "AWS::EC2::NetworkAclEntry", "AWS::EC2::SubnetNetworkAclAssociation", "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress", "AWS::ECS::Cluster",
    "AWS::ECS::TaskDefinition", "AWS::ElasticLoadBalancingV2::Listener", "AWS::ElasticLoadBalancingV2::TargetGroup",
    "AWS::ElasticLoadBalancingV2::ListenerRule", "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy", "AWS::RDS::DBParameterGroup", "AWS::RDS::DBSubnetGroup",
    "AWS::SecretsManager::ResourcePolicy", "AWS::SecretsManager::RotationSchedule",
    "AWS::SecretsManager::SecretTargetAttachment", "AWS::Serverless::Application", "AWS::Lambda::Permission",
    "AWS::Lambda::EventSourceMapping", "AWS::Lambda::Version", "AWS::Lambda::Alias", "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolGroup", "AWS::Cognito::UserPoolDomain", "AWS::Cognito::ManagedLoginBranding",
    "AWS::ApiGateway::Account", "AWS::ApiGatewayV2::Authorizer", "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Stage", "AWS::ApiGatewayV2::Deployment",
    "AWS::Backup::BackupSelection", "AWS::WAFv2::WebACLAssociation", "AWS::WAFv2::LoggingConfiguration",
    "AWS::Logs::MetricFilter", "AWS::Logs::ResourcePolicy", "AWS::Logs::SubscriptionFilter",
    "AWS::Budgets::Budget", "AWS::SES::EmailIdentity", "AWS::SES::ConfigurationSet",
    "AWS::CertificateManager::Certificate", "Custom::S3AutoDeleteObjects", "Custom::VpcRestrictDefaultSG",
    "Custom::AWS", "AWS::CloudFormation::WaitConditionHandle",
    # The deploy-time schema migration: its waiter state machine runs only during a deploy (at most
    # MigrationOnDeploy.TOTAL_TIMEOUT / QUERY_INTERVAL transitions, well inside Step Functions' free tier).
    "Custom::SchemaMigration", "AWS::StepFunctions::StateMachine",
})

AwsRule = Callable[[CfnDeployment, CfnResource, LineMaker], None]
AWS_RULES: dict[str, AwsRule] = {}
_Rule = TypeVar("_Rule")


class RuleRegistrar(Generic[_Rule]):
    """`@registrar("Type", ...)` files the decorated pricing rule under each resource type it prices."""

    def __init__(self, rules: dict[str, _Rule]) -> None:
        self._rules = rules

    def __call__(self, *types: str) -> Callable[[_Rule], _Rule]:
        def register(rule: _Rule) -> _Rule:
            for resource_type in types:
                self._rules[resource_type] = rule
            return rule
        return register


aws_rule = RuleRegistrar[AwsRule](AWS_RULES)


@aws_rule("AWS::ElasticLoadBalancingV2::LoadBalancer")
def _load_balancer(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.fixed("Application Load Balancer hours", "alb_hour", HOURS_PER_MONTH)
    if resource.properties.get("Scheme", "internet-facing") == "internet-facing":
        # An internet-facing ALB holds one public IPv4 address per subnet (AZ) it spans, at least.
        zones = len(resource.properties.get("Subnets", [])) or len(resource.properties.get("SubnetMappings", []))
        line.fixed("public IPv4 addresses", "public_ipv4_hour", zones * HOURS_PER_MONTH)
    line.usage("load balancer capacity units", "alb_lcu_hour", "alb_lcu_average", times=HOURS_PER_MONTH)


@aws_rule("AWS::Route53::HealthCheck")
def _health_check(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    # An endpoint in this account (the load balancer) is an "AWS endpoint"; each optional feature is billed on top.
    config = resource.properties.get("HealthCheckConfig", {})
    line.fixed("Route 53 health check (AWS endpoint)", "route53_health_check_month", 1)
    options = {"HTTPS": str(config.get("Type", "")).startswith("HTTPS"),
               "string matching": str(config.get("Type", "")).endswith("STR_MATCH"),
               "fast interval (10 s)": config.get("RequestInterval", 30) == 10,
               "latency measurement": config.get("MeasureLatency") is True}
    for option, used in options.items():
        if used:
            line.fixed(f"Route 53 health check option: {option}", "route53_health_check_option_month", 1)


@aws_rule("AWS::EC2::NatGateway")
def _nat_gateway(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.fixed("NAT gateway hours", "nat_gateway_hour", HOURS_PER_MONTH)
    line.usage("NAT gateway data processed", "nat_gateway_gb", "nat_gateway_gb")


@aws_rule("AWS::EC2::EIP")
def _elastic_ip(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.fixed("public IPv4 addresses", "public_ipv4_hour", HOURS_PER_MONTH)


@aws_rule("AWS::EC2::VPCEndpoint")
def _endpoint(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    if resource.properties.get("VpcEndpointType", "Gateway" if "RouteTableIds" in resource.properties
                               else "Interface") != "Interface":
        return  # gateway endpoints (S3, DynamoDB) are free
    line.fixed("interface endpoint hours (per AZ)", "interface_endpoint_az_hour",
               len(resource.properties.get("SubnetIds", [])) * HOURS_PER_MONTH)
    line.usage("interface endpoint data processed", "interface_endpoint_gb", "interface_endpoint_gb")


@aws_rule("AWS::EC2::FlowLog")
def _flow_log(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.usage("flow log ingestion", "logs_vended_ingest_gb", "flow_log_gb")


@aws_rule("AWS::ECS::Service")
def _fargate_service(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    task = deployment.find(resource.part, resource.properties.get("TaskDefinition"))
    if task is None:
        return
    tasks = _minimum_tasks(deployment, resource)
    cpu_units, memory_mib = int(task.properties["Cpu"]), int(task.properties["Memory"])
    arch = "arm" if task.properties.get("RuntimePlatform", {}).get("CpuArchitecture") == "ARM64" else "x86"
    line.fixed(f"Fargate vCPU ({arch.upper()}, {tasks} task(s) always running)", f"fargate_{arch}_vcpu_hour",
               tasks * cpu_units / 1024 * HOURS_PER_MONTH)
    line.fixed(f"Fargate memory ({arch.upper()})", f"fargate_{arch}_gb_hour",
               tasks * memory_mib / 1024 * HOURS_PER_MONTH)
    network = resource.properties.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {})
    if network.get("AssignPublicIp") == "ENABLED":
        line.fixed("public IPv4 addresses", "public_ipv4_hour", tasks * HOURS_PER_MONTH)


def _minimum_tasks(deployment: CfnDeployment, service: CfnResource) -> int:
    """Auto scaling's floor when the service scales, else its desired count: what runs when nobody uses it."""
    for target in deployment.resources("AWS::ApplicationAutoScaling::ScalableTarget"):
        resource_id = str(target.properties.get("ResourceId", ""))
        if (target.part == service.part and service.logical_id in resource_id) or _refers_to(
                target.properties.get("ResourceId"), service.logical_id):
            return int(target.properties["MinCapacity"])
    return int(service.properties.get("DesiredCount", 1))


def _refers_to(value: Any, logical_id: str) -> bool:
    if isinstance(value, dict):
        return bool(value.get("Ref") == logical_id) or any(_refers_to(item, logical_id) for item in value.values())
    if isinstance(value, list):
        return any(_refers_to(item, logical_id) for item in value)
    return bool(value == logical_id)


@aws_rule("AWS::RDS::DBInstance")
def _database(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    properties = resource.properties
    instances = 2 if properties.get("MultiAZ") in (True, "true") else 1
    shape = str(properties["DBInstanceClass"])
    role = "read replica" if "SourceDBInstanceIdentifier" in properties else "instance"
    line.fixed(f"RDS PostgreSQL {shape} {role}{' (Multi-AZ: primary + standby)' if instances == 2 else ''}",
               f"rds_postgres_{shape}_hour", instances * HOURS_PER_MONTH)
    if properties.get("ManageMasterUserPassword") in (True, "true"):
        # RDS keeps the master password in a secret of its own: billed as any secret, though not in the template.
        line.fixed("Secrets Manager secrets", "secret_month", 1)
    storage = properties.get("AllocatedStorage")
    if storage is None:  # a read replica gets its source's allocation
        storage = max((int(other.properties["AllocatedStorage"]) for other in deployment.resources(resource.type)
                       if "AllocatedStorage" in other.properties), default=0)
    storage_type = str(properties.get("StorageType", "gp2")).lower()
    line.fixed(f"RDS {storage_type} storage", f"rds_{storage_type}_gb_month", instances * int(storage))
    if role == "read replica":
        line.usage("cross-region replication transfer", "rds_replication_gb", "replicated_gb")


@aws_rule("AWS::KMS::Key")
def _kms_key(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.fixed("KMS customer managed keys", "kms_key_month", 1)
    line.usage("KMS requests", "kms_requests_10k", "kms_requests", per_unit=10_000)


@aws_rule("AWS::SecretsManager::Secret")
def _secret(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.fixed("Secrets Manager secrets", "secret_month", 1)


@aws_rule("AWS::CloudWatch::Alarm")
def _alarm(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.fixed("CloudWatch alarms", "cloudwatch_alarm_month", 1)


@aws_rule("AWS::CloudWatch::CompositeAlarm")
def _composite_alarm(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.fixed("CloudWatch composite alarms", "cloudwatch_composite_alarm_month", 1)


@aws_rule("AWS::CloudWatch::Dashboard")
def _dashboard(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.fixed("CloudWatch dashboards", "cloudwatch_dashboard_month", 1)


@aws_rule("AWS::Logs::LogGroup")
def _log_group(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    if "FlowLog" in resource.path:
        return  # billed as vended logs on the flow log itself
    line.usage("CloudWatch Logs ingestion", "logs_ingest_gb", "log_group_gb")


@aws_rule("AWS::WAFv2::WebACL")
def _web_acl(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.fixed("WAF web ACLs", "waf_web_acl_month", 1)
    line.fixed("WAF rules and managed rule groups", "waf_rule_month", len(resource.properties.get("Rules", [])))
    line.usage("WAF requests inspected", "waf_requests_million", "waf_requests_million")


@aws_rule("AWS::Cognito::UserPool")
def _user_pool(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    tier = str(resource.properties.get("UserPoolTier", "ESSENTIALS")).upper()
    if tier == "PLUS":
        line.usage("Cognito Plus monthly active users", "cognito_plus_mau", "cognito_mau")
    else:
        # Essentials bills only past 10,000 MAU; the assumed learner volume stays inside it.
        line.usage("Cognito Essentials monthly active users beyond 10,000", "cognito_essentials_mau", "cognito_mau",
                   times=0)


@aws_rule("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
def _table(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    properties = resource.properties
    replicas = properties.get("Replicas") or [{"Region": resource.region}]
    other_regions = sum(1 for replica in replicas if replica.get("Region") != resource.region)
    copies = 1 + other_regions
    if properties.get("BillingMode", "PROVISIONED") == "PROVISIONED":
        throughput = properties.get("ProvisionedThroughput") or {}
        write = properties.get("WriteProvisionedThroughputSettings", {})
        reads = int(throughput.get("ReadCapacityUnits", 0)) or _replica_read_floor(replicas)
        writes = int(throughput.get("WriteCapacityUnits", 0)) or int(
            write.get("WriteCapacityAutoScalingSettings", {}).get("MinCapacity", 0))
        line.fixed("DynamoDB provisioned read capacity", "dynamodb_rcu_hour", reads * copies * HOURS_PER_MONTH)
        line.fixed("DynamoDB provisioned write capacity", "dynamodb_wcu_hour", writes * copies * HOURS_PER_MONTH)
    else:
        line.usage("DynamoDB on-demand writes", "dynamodb_ondemand_write_million", "dynamodb_writes",
                   per_unit=1_000_000)
        line.usage("DynamoDB on-demand reads", "dynamodb_ondemand_read_million", "dynamodb_reads",
                   per_unit=1_000_000)
        if other_regions:
            line.usage("DynamoDB replicated writes", "dynamodb_replicated_write_million", "dynamodb_writes",
                       per_unit=1_000_000, times=other_regions)
    line.usage("DynamoDB storage", "dynamodb_storage_gb_month", "dynamodb_gb", times=copies)
    pitr = properties.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") or any(
        replica.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") for replica in replicas)
    if pitr:
        line.usage("DynamoDB point-in-time recovery", "dynamodb_pitr_gb_month", "dynamodb_gb", times=copies)


def _replica_read_floor(replicas: list[dict[str, Any]]) -> int:
    floors = [int(replica.get("ReadProvisionedThroughputSettings", {}).get("ReadCapacityAutoScalingSettings", {})
                  .get("MinCapacity", 0)) for replica in replicas]
    return max(floors, default=0)


@aws_rule("AWS::Lambda::Function")
def _function(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    if resource.is_cdk_helper:
        return
    memory_gb = int(resource.properties.get("MemorySize", 128)) / 1024
    arch = "arm" if resource.properties.get("Architectures") == ["arm64"] else "x86"
    line.usage("Lambda requests", "lambda_requests_million", "lambda_requests", per_unit=1_000_000)
    seconds = line.assumptions["lambda_seconds"].quantity
    line.usage(f"Lambda compute ({arch.upper()}, {memory_gb * 1024:g} MB, {seconds:g} s each)",
               f"lambda_{arch}_gb_second", "lambda_requests", times=seconds * memory_gb)


@aws_rule("AWS::ApiGatewayV2::Api")
def _websocket_api(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    if resource.properties.get("ProtocolType") != "WEBSOCKET":
        return
    line.usage("WebSocket messages", "apigw_websocket_messages_million", "websocket_messages", per_unit=1_000_000)
    line.usage("WebSocket connection minutes", "apigw_websocket_minutes_million", "websocket_minutes",
               per_unit=1_000_000)


@aws_rule("AWS::SNS::Topic")
def _topic(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.usage("SNS publishes", "sns_requests_million", "sns_publishes", per_unit=1_000_000)


@aws_rule("AWS::SQS::Queue")
def _queue(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    if "DeadLetter" in resource.path or "Dlq" in resource.logical_id or "DeadLetter" in resource.logical_id:
        return  # dead-letter queues see traffic only when something fails
    line.usage("SQS requests", "sqs_requests_million", "sqs_requests", per_unit=1_000_000)


@aws_rule("AWS::S3::Bucket")
def _bucket(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.usage("S3 Standard storage", "s3_standard_gb_month", "s3_gb")
    if resource.properties.get("ReplicationConfiguration"):
        line.usage("S3 cross-region replication transfer", "s3_replication_gb", "replicated_gb")


@aws_rule("AWS::Backup::BackupVault")
def _vault(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    line.usage("AWS Backup warm storage", "backup_warm_gb_month", "backup_gb")


@aws_rule("AWS::Backup::BackupPlan")
def _backup_plan(deployment: CfnDeployment, resource: CfnResource, line: LineMaker) -> None:
    rules = resource.properties.get("BackupPlan", {}).get("BackupPlanRule", [])
    if any(rule.get("CopyActions") for rule in rules):
        line.usage("AWS Backup cross-region copies", "backup_copy_gb", "replicated_gb")


def aws_bill(deployment: CfnDeployment, pricing_dir: Path = PRICING_DIR) -> Bill:
    assumptions = load_assumptions("aws", pricing_dir)
    sheets: dict[str, PriceSheet] = {}
    lines: list[Line] = []
    unpriced: set[str] = set()
    for resource in deployment.resources():
        rule = AWS_RULES.get(resource.type)
        if rule is None:
            if resource.type not in NO_CHARGE_AWS:
                unpriced.add(resource.type)
            continue
        if resource.region not in sheets:
            sheets[resource.region] = load_sheet("aws", resource.region, pricing_dir)
        maker = LineMaker(sheets[resource.region], assumptions, f"{resource.part}/{_readable(resource)}")
        rule(deployment, resource, maker)
        lines.extend(maker.lines)
    return Bill(deployment.name, list(sheets.values()), lines, sorted(unpriced))


def _readable(resource: CfnResource) -> str:
    """The construct path without the environment and stack prefix: `Service/Service` reads better than an id."""
    parts = resource.path.split("/")[2:] if resource.path else [resource.logical_id]
    while len(parts) > 1 and parts[-1] in ("Resource", "Default"):
        parts.pop()
    return "/".join(parts) or resource.logical_id


# -------------------------------------------------------------------------------------------------------------- Azure

AzureRule = Callable[[PulumiDeployment, PlannedResource, LineMaker], None]
# As NO_CHARGE_AWS: billed nothing by themselves (containers and role assignments ride on their accounts).
NO_CHARGE_AZURE = frozenset({
    "azure-native:resources:ResourceGroup", "azure-native:authorization:RoleAssignment",
    "azure-native:cosmosdb:SqlResourceSqlRoleAssignment", "azure-native:applicationinsights:Component",
    "azure-native:network:VirtualNetwork", "azure-native:network:Subnet", "azure-native:network:PrivateDnsZoneGroup",
    "azure-native:privatedns:VirtualNetworkLink", "azure-native:storage:Blob", "azure-native:storage:BlobContainer",
    "azure-native:web:AppServicePlan", "azure-native:web:WebAppAuthSettingsV2", "azure-native:web:WebAppFtpAllowed",
    "azure-native:web:WebAppScmAllowed",
    # A budget costs nothing; an action group's first 1,000 emails a month are free (azure.microsoft.com/pricing/
    # details/monitor/), and ours mail only when an alert fires.
    "azure-native:consumption:Budget", "azure-native:monitor:ActionGroup",
})
AZURE_RULES: dict[str, AzureRule] = {}
azure_rule = RuleRegistrar[AzureRule](AZURE_RULES)


@azure_rule("azure-native:cosmosdb:DatabaseAccount")
def _cosmos_account(deployment: PulumiDeployment, resource: PlannedResource, line: LineMaker) -> None:
    serverless = any(capability.get("name") == "EnableServerless"
                     for capability in resource.inputs.get("capabilities", []))
    if serverless:
        line.usage("Cosmos DB serverless request units", "cosmos_serverless_million_ru", "cosmos_million_ru")
    line.usage("Cosmos DB storage", "cosmos_storage_gb_month", "cosmos_gb")
    tier = resource.inputs.get("backupPolicy", {}).get("continuousModeProperties", {}).get("tier")
    if tier == "Continuous30Days":
        line.usage("Cosmos DB continuous backup (30 days)", "cosmos_continuous_30d_gb_month", "cosmos_gb")


@azure_rule("azure-native:cosmosdb:SqlResourceSqlDatabase", "azure-native:cosmosdb:SqlResourceSqlContainer")
def _cosmos_throughput(deployment: PulumiDeployment, resource: PlannedResource, line: LineMaker) -> None:
    options = resource.inputs.get("options") or {}
    autoscale_max = (options.get("autoscaleSettings") or {}).get("maxThroughput")
    if not autoscale_max:
        return
    accounts = deployment.of_type("azure-native:cosmosdb:DatabaseAccount")
    zone_redundant = any(location.get("isZoneRedundant") for account in accounts
                         for location in account.inputs.get("locations", []))
    factor = line.sheet["cosmos_zone_redundancy_factor"].amount if zone_redundant else 1.0
    # Autoscale bills each hour for the highest RU/s reached, never less than 10% of the maximum: the idle floor.
    floor_hundreds = math.ceil(int(autoscale_max) / 10 / 100)
    line.fixed(f"Cosmos DB autoscale throughput floor ({int(autoscale_max) // 10} of {autoscale_max} RU/s"
               f"{', zone-redundant x' + format(factor, 'g') if zone_redundant else ''})",
               "cosmos_autoscale_100rus_hour", floor_hundreds * factor * HOURS_PER_MONTH)


@azure_rule("azure-native:network:PrivateEndpoint")
def _private_endpoint(deployment: PulumiDeployment, resource: PlannedResource, line: LineMaker) -> None:
    line.fixed("private endpoint hours", "private_endpoint_hour", HOURS_PER_MONTH)
    line.usage("private endpoint data processed", "private_endpoint_gb", "private_endpoint_gb")


@azure_rule("azure-native:monitor:MetricAlert")
def _metric_alert(deployment: PulumiDeployment, resource: PlannedResource, line: LineMaker) -> None:
    # Billed per metric time series monitored: each of our rules watches one metric of one resource.
    line.fixed("Azure Monitor metric alert rules", "metric_alert_time_series_month", 1)


@azure_rule("azure-native:privatedns:PrivateZone")
def _private_zone(deployment: PulumiDeployment, resource: PlannedResource, line: LineMaker) -> None:
    line.fixed("private DNS zones", "private_dns_zone_month", 1)


@azure_rule("azure-native:web:WebApp")
def _function_app(deployment: PulumiDeployment, resource: PlannedResource, line: LineMaker) -> None:
    scale = (resource.inputs.get("functionAppConfig") or {}).get("scaleAndConcurrency") or {}
    memory_gb = int(scale.get("instanceMemoryMB", 2048)) / 1024
    always_ready = sum(int(entry.get("instanceCount", 0)) for entry in scale.get("alwaysReady", []) or [])
    if always_ready:
        raise PricingError("pricing: Flex Consumption always-ready instances are not priced yet (add a baseline "
                           "price to the sheet and a line here)")
    line.usage("Functions Flex Consumption executions", "flex_on_demand_executions_million", "function_executions",
               per_unit=1_000_000)
    seconds = line.assumptions["function_seconds"].quantity
    line.usage(f"Functions Flex Consumption compute ({memory_gb:g} GB instances, {seconds:g} s each)",
               "flex_on_demand_gb_second", "function_executions", times=seconds * memory_gb)


@azure_rule("azure-native:operationalinsights:Workspace")
def _workspace(deployment: PulumiDeployment, resource: PlannedResource, line: LineMaker) -> None:
    line.usage("Log Analytics ingestion", "log_analytics_ingest_gb", "log_gb")


@azure_rule("azure-native:storage:StorageAccount")
def _storage(deployment: PulumiDeployment, resource: PlannedResource, line: LineMaker) -> None:
    redundancy = "zrs" if "ZRS" in str((resource.inputs.get("sku") or {}).get("name", "")) else "lrs"
    line.usage(f"Blob storage (hot, {redundancy.upper()})", f"storage_{redundancy}_hot_gb_month", "storage_gb")


@azure_rule("azure-native:storage:Queue")
def _storage_queue(deployment: PulumiDeployment, resource: PlannedResource, line: LineMaker) -> None:
    line.usage("Storage queue operations", "queue_operations_10k", "queue_operations", per_unit=10_000)


@azure_rule("azure-native:keyvault:Vault")
def _vault_operations(deployment: PulumiDeployment, resource: PlannedResource, line: LineMaker) -> None:
    line.usage("Key Vault operations", "key_vault_operations_10k", "key_vault_operations", per_unit=10_000)


def azure_bill(deployment: PulumiDeployment, pricing_dir: Path = PRICING_DIR) -> Bill:
    assumptions = load_assumptions("azure", pricing_dir)
    sheets: dict[str, PriceSheet] = {}
    lines: list[Line] = []
    unpriced: set[str] = set()
    for resource in deployment.resources:
        rule = AZURE_RULES.get(resource.type)
        if rule is None:
            if resource.type.startswith("azure-native:") and resource.type not in NO_CHARGE_AZURE:
                unpriced.add(resource.type)
            continue
        location = str(resource.inputs.get("location") or "")
        region = location if location not in ("", "global") else deployment.region  # DNS zones are "global"
        if region not in sheets:
            sheets[region] = load_sheet("azure", region, pricing_dir)
        maker = LineMaker(sheets[region], assumptions, resource.name)
        rule(deployment, resource, maker)
        lines.extend(maker.lines)
    return Bill(deployment.name, list(sheets.values()), lines, sorted(unpriced))


# ----------------------------------------------------------------------------------------------------------- output

def number(value: float) -> str:
    """1000000 -> 1,000,000; 0.2 -> 0.2; 0.0000133334 -> 0.0000133334 (no exponents in a bill)."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.10f}".rstrip("0")


def money(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


def render(bill: Bill) -> str:
    header = ("resource", "item", "unit", "quantity", "unit price", "monthly")
    rows = [(line.resource, line.item + (" *" if not line.always_on else ""), line.unit,
             number(round(line.quantity, 6)), f"${number(line.unit_price)}", money(line.monthly))
            for line in bill.lines]
    widths = [max(len(str(row[column])) for row in [header, *rows]) for column in range(len(header))]
    numeric = {3, 4, 5}

    def fmt(row: Iterable[str]) -> str:
        return "  ".join(cell.rjust(widths[index]) if index in numeric else cell.ljust(widths[index])
                         for index, cell in enumerate(row)).rstrip()

    out = [f"{bill.deployment}: monthly cost, line by line "
           f"(price sheets: {', '.join(f'{_shown(sheet.path)} as of {sheet.as_of}' for sheet in bill.sheets)})",
           fmt(header), fmt("-" * width for width in widths)]
    out += [fmt(row) for row in rows]
    out.append("")
    out.append(f"always on (billed even when idle): {money(bill.always_on_monthly)}/month = "
               f"{money(bill.idle_per_day)}/day")
    out.append(f"* usage at assumed volumes (pricing/assumptions.yaml): {money(bill.usage_monthly)}/month")
    for assumption in sorted({line.assumption for line in bill.lines if line.assumption}):
        out.append(f"    assumed: {assumption}")
    out.append(f"total at those volumes: {money(bill.monthly)}/month")
    if bill.unpriced:
        out.append(f"NOT PRICED (add a rule in tools/cost.py, or list the type as no-charge there): "
                   f"{', '.join(bill.unpriced)}")
    out.append("List prices, on demand, USD, no free tier; each price's source page is in its sheet (--json shows it).")
    return "\n".join(out)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(PRICING_DIR.parent))
    except ValueError:
        return str(path)
