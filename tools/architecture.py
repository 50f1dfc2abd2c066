"""`make diagrams`: architecture diagrams drawn from what deploys (synthesized templates, offline plan).

Two steps. `model_*` reads a deployment into a small graph — nodes placed in nested groups (account → region → VPC →
subnet tier; subscription → resource group → VNet → subnet) and edges that carry meaning (security-group rules,
subscriptions with their filters, event source mappings, triggers, routes, replication, role assignments). Resources
with no architectural meaning (policies, roles, log groups, keys, CDK helpers) fold into their owners. The model is
deterministic JSON, committed beside the pictures so a test can tell when they are stale. `render` draws it with the
`diagrams` library (official AWS and Azure icons, Graphviz layout) as SVG and PNG.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .deployment import ROOT, CfnDeployment, CfnResource, PulumiDeployment

DIAGRAM_DIR = ROOT / "docs" / "diagrams"
COMMAND = "make diagrams"
INTERNET = "internet"
DEPLOYER = "deployer"


@dataclass
class Model:
    title: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {label, icon, group: [..]}
    edges: set[tuple[str, str, str]] = field(default_factory=set)  # (from, to, label)

    def node(self, node_id: str, label: str, icon: str, group: Iterable[str]) -> None:
        self.nodes[node_id] = {"label": label, "icon": icon, "group": list(group)}

    def edge(self, source: str | None, target: str | None, label: str = "") -> None:
        if source and target and source != target and source in self.nodes and target in self.nodes:
            self.edges.add((source, target, label))

    def merged_edges(self) -> list[tuple[str, str, str]]:
        """One arrow per pair of nodes, its labels joined (tcp/80, tcp/443)."""
        labels: dict[tuple[str, str], set[str]] = {}
        for source, target, label in self.edges:
            labels.setdefault((source, target), set()).add(label)
        return [(source, target, ", ".join(sorted(label for label in found if label)))
                for (source, target), found in sorted(labels.items())]

    def as_json(self) -> str:
        """Sorted, so the same deployment always gives the same text (the freshness test compares it)."""
        return json.dumps({
            "title": self.title,
            "regenerate_with": COMMAND,
            "nodes": {node_id: self.nodes[node_id] for node_id in sorted(self.nodes)},
            "edges": [{"from": source, "to": target, "label": label}
                      for source, target, label in self.merged_edges()],
        }, indent=2) + "\n"


# ---------------------------------------------------------------------------------------------------------------- AWS

AWS_ICONS = {
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "aws.network.ElbApplicationLoadBalancer",
    "AWS::ECS::Service": "aws.compute.Fargate",
    "AWS::RDS::DBInstance": "aws.database.RDSPostgresqlInstance",
    "AWS::EC2::NatGateway": "aws.network.NATGateway",
    "AWS::EC2::InternetGateway": "aws.network.InternetGateway",
    "AWS::EC2::VPCEndpoint": "aws.network.Endpoint",
    "AWS::Lambda::Function": "aws.compute.Lambda",
    "AWS::SNS::Topic": "aws.integration.SimpleNotificationServiceSns",
    "AWS::SQS::Queue": "aws.integration.SimpleQueueServiceSqs",
    "AWS::DynamoDB::Table": "aws.database.Dynamodb",
    "AWS::DynamoDB::GlobalTable": "aws.database.Dynamodb",
    "AWS::ApiGatewayV2::Api": "aws.network.APIGateway",
    "AWS::Cognito::UserPool": "aws.security.Cognito",
    "AWS::S3::Bucket": "aws.storage.SimpleStorageServiceS3Bucket",
    "AWS::Backup::BackupVault": "aws.storage.Backup",
    "AWS::Backup::BackupPlan": "aws.storage.Backup",
    "AWS::WAFv2::WebACL": "aws.security.WAF",
    "AWS::SecretsManager::Secret": "aws.security.SecretsManager",
    "AWS::CloudWatch::Dashboard": "aws.management.Cloudwatch",
    "AWS::EC2::FlowLog": "aws.network.VPCFlowLogs",
}
# Resources that hold data or take traffic; everything else folds into them (keys, roles, policies, log groups...).
AWS_SHOWN = set(AWS_ICONS)


def _subnet_tier(subnet: CfnResource) -> str:
    tags = {tag["Key"]: tag["Value"] for tag in subnet.properties.get("Tags", [])}
    return str(tags.get("aws-cdk:subnet-name") or subnet.logical_id)


def _short(resource: CfnResource) -> str:
    parts = [part for part in resource.path.split("/")[2:] if part not in ("Resource", "Default")] or [
        resource.logical_id]
    # "Chat/Authorizer/Function" -> "Chat Authorizer": the construct names are what the code calls the thing.
    kept = [part for part in parts if part not in ("Function", "Table", "Bucket", "Queue", "Topic", "Service",
                                                    "Instance", "LoadBalancer", "Vault", "Plan", "Api", "WebAcl")]
    return " ".join(kept or parts[:1])


def _node_id(resource: CfnResource) -> str:
    return f"{resource.region}/{resource.part}/{resource.logical_id}"


def _is_dead_letter(resource: CfnResource) -> bool:
    return "DeadLetter" in resource.path or "Dlq" in resource.path


def model_aws(deployment: CfnDeployment, title: str) -> Model:
    model = Model(title)
    account = "AWS account"

    def region(name: str) -> str:
        return f"{name} ({'primary' if name == deployment.region else 'DR'} region)"
    subnets = {(resource.part, resource.logical_id): resource for resource in deployment.resources("AWS::EC2::Subnet")}
    vpcs = {(resource.part, resource.logical_id): resource for resource in deployment.resources("AWS::EC2::VPC")}

    def vpc_label(part: str, value: Any) -> str:
        found = deployment.find(part, value)
        vpc = vpcs.get((found.part, found.logical_id)) if found else None
        return f"VPC {vpc.properties.get('CidrBlock', '')}".strip() if vpc else "VPC"

    def placement(resource: CfnResource, subnet_refs: list[Any]) -> list[str]:
        """account → region → VPC → tier, from the subnets the resource is attached to."""
        tiers = set()
        vpc = "VPC"
        for ref in subnet_refs:
            found = deployment.find(resource.part, ref)
            subnet = subnets.get((found.part, found.logical_id)) if found else None
            if subnet is not None:
                tiers.add(_subnet_tier(subnet))
                vpc = vpc_label(subnet.part, subnet.properties.get("VpcId"))
        group = [account, region(resource.region)]
        if tiers:
            group += [vpc, " + ".join(f"{tier} subnets" for tier in sorted(tiers))]
        return group

    # Groups of folded duplicates (NAT per AZ, DLQs) would clutter; count them into one node instead.
    for resource in deployment.resources():
        if resource.type not in AWS_SHOWN or resource.is_cdk_helper:
            continue
        properties = resource.properties
        group = [account, region(resource.region)]
        if resource.type == "AWS::ElasticLoadBalancingV2::LoadBalancer":
            group = placement(resource, properties.get("Subnets", []))
        elif resource.type == "AWS::ECS::Service":
            group = placement(resource, properties.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {})
                              .get("Subnets", []))
        elif resource.type == "AWS::RDS::DBInstance":
            subnet_group = deployment.find(resource.part, properties.get("DBSubnetGroupName"))
            group = placement(resource, subnet_group.properties.get("SubnetIds", []) if subnet_group else [])
        elif resource.type == "AWS::EC2::VPCEndpoint":
            if "SubnetIds" in properties:
                group = placement(resource, properties["SubnetIds"])
            else:
                group = [account, region(resource.region), vpc_label(resource.part, properties.get("VpcId"))]
        elif resource.type == "AWS::EC2::NatGateway":
            group = placement(resource, [properties.get("SubnetId")])
        elif resource.type in ("AWS::EC2::InternetGateway", "AWS::EC2::FlowLog"):
            attachment = next((other for other in deployment.resources("AWS::EC2::VPCGatewayAttachment")
                               if other.part == resource.part), None)
            vpc_ref = attachment.properties.get("VpcId") if attachment else properties.get("ResourceId")
            group = [account, region(resource.region), vpc_label(resource.part, vpc_ref)]
        elif resource.type == "AWS::Lambda::Function" and properties.get("VpcConfig"):
            group = placement(resource, properties["VpcConfig"].get("SubnetIds", []))
        elif resource.type == "AWS::SQS::Queue" and _is_dead_letter(resource):
            continue  # each queue's dead-letter queue folds into it (label says so)
        label = _label(resource)
        model.node(_node_id(resource), label, AWS_ICONS[resource.type], group)
    _fold_same(model)
    model.node(INTERNET, "Internet (clients)", "aws.general.Users", [])
    _aws_edges(deployment, model, region)
    return model


# How each kind reads on the picture, before the construct's own name.
AWS_KINDS = {
    "AWS::Lambda::Function": "Lambda", "AWS::SNS::Topic": "SNS topic", "AWS::DynamoDB::Table": "DynamoDB",
    "AWS::DynamoDB::GlobalTable": "DynamoDB", "AWS::Cognito::UserPool": "Cognito user pool", "AWS::S3::Bucket": "S3",
    "AWS::Backup::BackupVault": "Backup vault", "AWS::Backup::BackupPlan": "AWS Backup plan",
    "AWS::WAFv2::WebACL": "WAF web ACL", "AWS::SecretsManager::Secret": "Secrets Manager",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "Application Load Balancer", "AWS::CloudWatch::Dashboard":
    "CloudWatch dashboard",
}
AWS_FIXED_LABELS = {"AWS::EC2::InternetGateway": "Internet gateway", "AWS::EC2::FlowLog": "VPC flow logs"}


def _label(resource: CfnResource) -> str:
    properties = resource.properties
    name = _short(resource)
    if resource.type in AWS_FIXED_LABELS:
        return AWS_FIXED_LABELS[resource.type]
    if resource.type == "AWS::RDS::DBInstance":
        role = "read replica" if "SourceDBInstanceIdentifier" in properties else (
            "Multi-AZ" if properties.get("MultiAZ") in (True, "true") else "single-AZ")
        return f"RDS PostgreSQL\n{properties.get('DBInstanceClass', '')} {role}"
    if resource.type == "AWS::ECS::Service":
        return f"Fargate service\n{name}"
    if resource.type == "AWS::EC2::VPCEndpoint":
        service = properties.get("ServiceName")
        service_text = service if isinstance(service, str) else json.dumps(service)
        short = service_text.rsplit(".", 1)[-1].strip('"]}')
        kind = "interface" if "SubnetIds" in properties else "gateway"
        return f"{short} endpoint ({kind})"
    if resource.type == "AWS::DynamoDB::GlobalTable" and any(
            replica.get("Region") != resource.region for replica in properties.get("Replicas", [])):
        return f"DynamoDB {name}\n(global table)"
    if resource.type == "AWS::SQS::Queue":
        return f"{name} queue\n+ dead-letter queue"
    if resource.type == "AWS::ApiGatewayV2::Api":
        return f"API Gateway {properties.get('ProtocolType', '').title()} API\n{name}"
    service = AWS_KINDS.get(resource.type)
    return f"{service}\n{name}" if service else name


def _fold_same(model: Model) -> None:
    """NAT gateways, one per AZ, become one node 'NAT gateway x3' in their tier."""
    by_key: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for node_id, node in model.nodes.items():
        if node["icon"] == "aws.network.NATGateway":
            by_key.setdefault((node["icon"], "NAT gateway", tuple(node["group"])), []).append(node_id)
    for (icon, label, group), ids in by_key.items():
        for node_id in ids:
            del model.nodes[node_id]
        model.node(ids[0], f"{label} x{len(ids)}" if len(ids) > 1 else label, icon, group)


def _targets(deployment: CfnDeployment, model: Model, part: str, value: Any) -> list[str]:
    """Node ids of every shown resource `value` refers to (Ref, GetAtt, Sub, Join, cross-stack outputs)."""
    found: list[str] = []

    def walk(item: Any, where: str) -> None:
        if isinstance(item, dict):
            if "Ref" in item or "Fn::GetAtt" in item or "Fn::GetStackOutput" in item or "Fn::ImportValue" in item:
                resource = deployment.find(where, item)
                if resource is not None and _node_id(resource) in model.nodes:
                    found.append(_node_id(resource))
                    return
                resolved = deployment.resolve(where, item)
                if resolved is not item and isinstance(resolved, dict) and "__part__" in resolved:
                    walk(resolved["value"], resolved["__part__"])
                    return
            for child in item.values():
                walk(child, where)
        elif isinstance(item, list):
            for child in item:
                walk(child, where)
    walk(value, part)
    return found


def _security_groups(resource: CfnResource) -> list[Any]:
    properties = resource.properties
    return (properties.get("SecurityGroups") or properties.get("VPCSecurityGroups")
            or properties.get("SecurityGroupIds")
            or properties.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {}).get("SecurityGroups")
            or properties.get("VpcConfig", {}).get("SecurityGroupIds") or [])


def _aws_edges(deployment: CfnDeployment, model: Model, region: Callable[[str], str]) -> None:
    shown = [resource for resource in deployment.resources() if _node_id(resource) in model.nodes]
    # Security groups: which shown resources sit in each group (by the group's logical id).
    members: dict[tuple[str, str], list[str]] = {}
    for resource in shown:
        for reference in _security_groups(resource):
            group = deployment.find(resource.part, reference)
            if group is not None:
                members.setdefault((group.part, group.logical_id), []).append(_node_id(resource))
    for group in deployment.resources("AWS::EC2::SecurityGroup"):
        for rule in group.properties.get("SecurityGroupIngress", []):
            _ingress_edges(deployment, model, group.part, rule, members.get((group.part, group.logical_id), []),
                           members)
    for rule_resource in deployment.resources("AWS::EC2::SecurityGroupIngress"):
        target_group = deployment.find(rule_resource.part, rule_resource.properties.get("GroupId"))
        if target_group is not None:
            _ingress_edges(deployment, model, rule_resource.part, rule_resource.properties,
                           members.get((target_group.part, target_group.logical_id), []), members)
    for resource in deployment.resources():
        properties = resource.properties
        if resource.type == "AWS::SNS::Subscription":
            topic = _targets(deployment, model, resource.part, properties.get("TopicArn"))
            endpoint = _targets(deployment, model, resource.part, properties.get("Endpoint"))
            filters = properties.get("FilterPolicy")
            label = "filter " + json.dumps(filters, sort_keys=True, separators=(",", ":")) if filters else "all events"
            for source in topic:
                for target in endpoint:
                    model.edge(source, target, label)
        elif resource.type == "AWS::Lambda::EventSourceMapping":
            for source in _targets(deployment, model, resource.part, properties.get("EventSourceArn")):
                for target in _targets(deployment, model, resource.part, properties.get("FunctionName")):
                    model.edge(source, target, f"event source (batch {properties.get('BatchSize', 10)})")
        elif resource.type == "AWS::Cognito::UserPool":
            for trigger, function in sorted((properties.get("LambdaConfig") or {}).items()):
                for target in _targets(deployment, model, resource.part, function):
                    model.edge(_node_id(resource), target, f"{trigger} trigger")
        elif resource.type == "AWS::ApiGatewayV2::Route":
            integration = properties.get("Target")
            api = _targets(deployment, model, resource.part, properties.get("ApiId"))
            integration_resource = _integration(deployment, resource.part, integration)
            if integration_resource is not None:
                for target in _targets(deployment, model, resource.part,
                                       integration_resource.properties.get("IntegrationUri")):
                    for source in api:
                        model.edge(source, target, f"route {properties.get('RouteKey')}")
        elif resource.type == "AWS::ApiGatewayV2::Authorizer":
            for source in _targets(deployment, model, resource.part, properties.get("ApiId")):
                for target in _targets(deployment, model, resource.part, properties.get("AuthorizerUri")):
                    model.edge(source, target, "authorizer ($connect)")
        elif resource.type == "AWS::WAFv2::WebACLAssociation":
            for source in _targets(deployment, model, resource.part, properties.get("WebACLArn")):
                for target in _targets(deployment, model, resource.part, properties.get("ResourceArn")):
                    model.edge(source, target, "filters requests")
        elif resource.type == "AWS::Backup::BackupSelection":
            selection = properties.get("BackupSelection", {})
            wanted = [(condition["ConditionKey"].removeprefix("aws:ResourceTag/"), condition["ConditionValue"])
                      for condition in selection.get("Conditions", {}).get("StringEquals", [])
                      if condition.get("ConditionKey", "").startswith("aws:ResourceTag/")]
            wanted += [(tag["ConditionKey"], tag["ConditionValue"]) for tag in selection.get("ListOfTags", [])]
            for source in _targets(deployment, model, resource.part, properties.get("BackupPlanId")):
                for tagged in shown:
                    if wanted and all(pair in _tags(tagged) for pair in wanted):
                        model.edge(source, _node_id(tagged), "backs up (tag " + ", ".join(
                            f"{key}={value}" for key, value in wanted) + ")")
        elif resource.type == "AWS::Backup::BackupPlan":
            for rule in properties.get("BackupPlan", {}).get("BackupPlanRule", []):
                for target in _targets(deployment, model, resource.part, rule.get("TargetBackupVault")):
                    model.edge(_node_id(resource), target, "recovery points")
                for copy in rule.get("CopyActions", []):
                    for target in _vaults_named(deployment, model, copy.get("DestinationBackupVaultArn")):
                        model.edge(_node_id(resource), target, "cross-region copy")
        elif resource.type == "AWS::S3::Bucket":
            for rule in (properties.get("ReplicationConfiguration") or {}).get("Rules", []):
                for target in _buckets_named(deployment, model, rule.get("Destination", {}).get("Bucket")):
                    model.edge(_node_id(resource), target, "cross-region replication")
        elif resource.type == "AWS::RDS::DBInstance" and "SourceDBInstanceIdentifier" in properties:
            for primary in deployment.resources("AWS::RDS::DBInstance"):
                identifier = primary.properties.get("DBInstanceIdentifier")
                if identifier and identifier in json.dumps(properties["SourceDBInstanceIdentifier"]):
                    model.edge(_node_id(primary), _node_id(resource), "cross-region read replica")
        elif resource.type == "AWS::DynamoDB::GlobalTable":
            for replica in properties.get("Replicas", []):
                if replica.get("Region") != resource.region:
                    replica_id = f"{replica['Region']}/{resource.part}/{resource.logical_id}-replica"
                    model.node(replica_id, f"{_short(resource)}\n(replica)", "aws.database.Dynamodb",
                               ["AWS account", region(replica["Region"])])
                    model.edge(_node_id(resource), replica_id, "global table replication")
        elif resource.type == "AWS::ECS::TaskDefinition":
            _uses_edges(deployment, model, resource, [container.get("Environment", []) + container.get("Secrets", [])
                                                      for container in properties.get("ContainerDefinitions", [])])
        elif resource.type == "AWS::Lambda::Function" and _node_id(resource) in model.nodes:
            _uses_edges(deployment, model, resource, [properties.get("Environment", {}).get("Variables", {})],
                        source=_node_id(resource))


def _tags(resource: CfnResource) -> set[tuple[str, str]]:
    properties = resource.properties
    tag_lists = [properties.get("Tags") or []]
    tag_lists += [replica.get("Tags") or [] for replica in properties.get("Replicas", [])]
    found = {(str(tag.get("Key")), str(tag.get("Value"))) for tags in tag_lists if isinstance(tags, list)
             for tag in tags if isinstance(tag, dict)}
    if isinstance(properties.get("Tags"), dict):  # some types (backup vaults) take a plain map
        found |= {(str(key), str(value)) for key, value in properties["Tags"].items()}
    return found


def _ingress_edges(deployment: CfnDeployment, model: Model, part: str, rule: dict[str, Any], target_members: list[str],
                   members: dict[tuple[str, str], list[str]]) -> None:
    port = rule.get("FromPort")
    label = f"{rule.get('IpProtocol', 'tcp')}/{port}" if port == rule.get("ToPort") else (
        f"{rule.get('IpProtocol')}/{port}-{rule.get('ToPort')}")
    if rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0":
        for target in target_members:
            model.edge(INTERNET, target, label)
        return
    source_group = deployment.find(part, rule.get("SourceSecurityGroupId"))
    if source_group is None:
        return
    for source in members.get((source_group.part, source_group.logical_id), []):
        for target in target_members:
            model.edge(source, target, label)


def _integration(deployment: CfnDeployment, part: str, target: Any) -> CfnResource | None:
    """A route's Target is `integrations/<IntegrationId>` built with Fn::Join around a Ref."""
    text = json.dumps(target)
    for integration in deployment.resources("AWS::ApiGatewayV2::Integration"):
        if integration.part == part and f'"Ref": "{integration.logical_id}"' in text:
            return integration
    return None


def _uses_edges(deployment: CfnDeployment, model: Model, resource: CfnResource, settings: list[Any],
                source: str | None = None) -> None:
    """A task or function that is handed a resource's name or ARN in its settings uses it."""
    if source is None:  # a task definition: the edge starts at the service that runs it
        source = next((_node_id(service) for service in deployment.resources("AWS::ECS::Service")
                       if _targets_logical(service.properties.get("TaskDefinition"), resource.logical_id)
                       and service.part == resource.part), None)
    if source is None:
        return
    for target in _targets(deployment, model, resource.part, settings):
        model.edge(source, target, "uses")


def _targets_logical(value: Any, logical_id: str) -> bool:
    return isinstance(value, dict) and value.get("Ref") == logical_id


def _vaults_named(deployment: CfnDeployment, model: Model, arn: Any) -> list[str]:
    wanted = _flat(arn)
    return [_node_id(vault) for vault in deployment.resources("AWS::Backup::BackupVault")
            if vault.properties.get("BackupVaultName") and _node_id(vault) in model.nodes
            and wanted.endswith(f":backup-vault:{_flat(vault.properties['BackupVaultName'])}")]


def _buckets_named(deployment: CfnDeployment, model: Model, arn: Any) -> list[str]:
    wanted = _flat(arn)
    return [_node_id(bucket) for bucket in deployment.resources("AWS::S3::Bucket")
            if bucket.properties.get("BucketName") and _node_id(bucket) in model.nodes
            and wanted == f"arn:aws:s3:::{_flat(bucket.properties['BucketName'])}"]


def _flat(value: Any) -> str:
    """A name built with Fn::Join, as text with its references left symbolic (the same in every stack)."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_flat(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    return str(value)


# -------------------------------------------------------------------------------------------------------------- Azure

AZURE_ICONS = {
    "azure-native:web:WebApp": "azure.compute.FunctionApps",
    "azure-native:cosmosdb:DatabaseAccount": "azure.database.CosmosDb",
    "azure-native:storage:StorageAccount": "azure.storage.StorageAccounts",
    "azure-native:keyvault:Vault": "azure.security.KeyVaults",
    "azure-native:applicationinsights:Component": "azure.devops.ApplicationInsights",
    "azure-native:operationalinsights:Workspace": "azure.analytics.LogAnalyticsWorkspaces",
    "azure-native:network:PrivateEndpoint": "azure.network.PrivateEndpoint",
}
# What folds into what: child type -> the input that names its owner, and how it reads on the owner's label.
AZURE_FOLDED = {
    "azure-native:cosmosdb:SqlResourceSqlContainer": ("containerName", "container"),
    "azure-native:storage:BlobContainer": ("containerName", "blob container"),
    "azure-native:storage:Queue": ("queueName", "queue"),
}


def _azure_name(resource: Any) -> str:
    from refarch.stacks.babybloom.offline import NAME_INPUTS, _digest

    return str(resource.inputs.get(NAME_INPUTS.get(resource.type, ""), f"{resource.name}"
                                   f"{_digest(resource.type, resource.name)[:8]}"))


def model_azure(deployment: PulumiDeployment, title: str) -> Model:
    model = Model(title)
    by_physical = {}
    for resource in deployment.resources:
        if resource.type.startswith("azure-native:"):
            by_physical[_azure_name(resource)] = resource
    group_name = next((str(resource.inputs.get("resourceGroupName")) for resource in
                       deployment.of_type("azure-native:resources:ResourceGroup")), "resource group")
    base = ["Azure subscription", f"{deployment.region}: resource group {group_name}"]
    vnets = deployment.of_type("azure-native:network:VirtualNetwork")
    vnet_label = (f"VNet {', '.join(vnets[0].inputs.get('addressSpace', {}).get('addressPrefixes', []))}"
                  if vnets else None)
    subnets = {_azure_name(subnet): subnet for subnet in deployment.of_type("azure-native:network:Subnet")}

    def subnet_group(subnet_id: Any) -> list[str]:
        name = str(subnet_id or "").rsplit("/", 1)[-1]
        subnet = subnets.get(name)
        if subnet is None or vnet_label is None:
            return base
        return [*base, vnet_label, f"subnet {subnet.inputs.get('addressPrefix', name)} ({subnet.name})"]

    def owner_of(value: Any) -> str | None:
        """The shown resource an ID points at, or contains (a role scoped to a container lands on its account)."""
        for name in reversed(str(value or "").rstrip("/").split("/")):
            resource = by_physical.get(name)
            if resource is not None and resource.type in AZURE_FOLDED:  # a container: its account
                resource = by_physical.get(str(resource.inputs.get("accountName", "")).rsplit("/", 1)[-1])
            if resource is not None and resource.name in model.nodes:
                return resource.name
        return None

    for resource in deployment.resources:
        icon = AZURE_ICONS.get(resource.type)
        if icon is None:
            continue
        group = base
        label = resource.name
        if resource.type == "azure-native:web:WebApp":
            group = subnet_group(resource.inputs.get("virtualNetworkSubnetId"))
            runtime = (resource.inputs.get("functionAppConfig") or {}).get("runtime") or {}
            label = f"Function app (Flex Consumption)\n{runtime.get('name', '')} {runtime.get('version', '')}".strip()
        elif resource.type == "azure-native:network:PrivateEndpoint":
            group = subnet_group((resource.inputs.get("subnet") or {}).get("id"))
            groups = [group_id for connection in resource.inputs.get("privateLinkServiceConnections", [])
                      for group_id in connection.get("groupIds", [])]
            label = f"private endpoint\n{', '.join(groups)}"
        elif resource.type == "azure-native:cosmosdb:DatabaseAccount":
            serverless = any(capability.get("name") == "EnableServerless"
                             for capability in resource.inputs.get("capabilities", []))
            label = f"Cosmos DB for NoSQL\n{'serverless' if serverless else 'autoscale'}"
        elif resource.type == "azure-native:storage:StorageAccount":
            label = f"Storage account\n{(resource.inputs.get('sku') or {}).get('name', '')}"
        elif resource.type == "azure-native:keyvault:Vault":
            label = "Key Vault (RBAC)"
        elif resource.type == "azure-native:applicationinsights:Component":
            label = "Application Insights"
        elif resource.type == "azure-native:operationalinsights:Workspace":
            label = "Log Analytics workspace"
        model.node(resource.name, label, icon, group)
    model.node(INTERNET, "Internet (signed-in users)", "azure.identity.Users", [])

    for resource in deployment.resources:
        inputs = resource.inputs
        if resource.type in AZURE_FOLDED:
            name_input, kind = AZURE_FOLDED[resource.type]
            owner = owner_of(inputs.get("accountName"))
            if owner is not None:
                model.nodes[owner]["label"] += f"\n{kind} {inputs.get(name_input)}"
        elif resource.type == "azure-native:web:WebApp":
            if inputs.get("httpsOnly"):
                model.edge(INTERNET, resource.name, "HTTPS (Entra ID sign-in)")
            settings = (inputs.get("siteConfig") or {}).get("appSettings") or []
            for setting in settings:
                for target in _azure_mentions(model, by_physical, setting.get("value")):
                    model.edge(resource.name, target, "")
        elif resource.type == "azure-native:applicationinsights:Component":
            model.edge(resource.name, owner_of(inputs.get("workspaceResourceId")), "telemetry")
        elif resource.type == "azure-native:network:PrivateEndpoint":
            for connection in inputs.get("privateLinkServiceConnections", []):
                model.edge(resource.name, owner_of(connection.get("privateLinkServiceId")), "private link")
        elif resource.type in ("azure-native:authorization:RoleAssignment",
                               "azure-native:cosmosdb:SqlResourceSqlRoleAssignment"):
            principal = _principal_owner(deployment, inputs.get("principalId"))
            if principal is None:  # not a managed identity of this program: the identity running `pulumi up`
                principal = DEPLOYER
                model.node(DEPLOYER, "Deployer\n(the identity running pulumi up)", "azure.identity.Users", [])
            scope = owner_of(inputs.get("scope")) or owner_of(inputs.get("accountName"))
            role = resource.name.removeprefix(f"{resource.parent}-") if resource.parent else resource.name
            model.edge(principal, scope, f"role: {role}")
    # Edges from app settings are labelled by what they are for, when a role assignment does not already say so.
    unlabelled = {(source, target) for source, target, label in model.edges if not label}
    labelled = {(source, target) for source, target, label in model.edges if label}
    for source, target in unlabelled:
        model.edges.discard((source, target, ""))
        if (source, target) not in labelled:
            model.edges.add((source, target, "app setting"))
    return model


def _azure_mentions(model: Model, by_physical: dict[str, Any], value: Any) -> list[str]:
    text = json.dumps(value)
    return sorted({resource.name for physical, resource in by_physical.items()
                   if physical and physical in text and resource.name in model.nodes})


def _principal_owner(deployment: PulumiDeployment, principal: Any) -> str | None:
    """Role assignments name the function app's managed identity, a GUID the mocks derive from the app."""
    from refarch.stacks.babybloom.offline import _guid

    for app in deployment.of_type("azure-native:web:WebApp"):
        if principal == _guid(app.type, _azure_name(app), "principal"):
            return app.name
    return None


# ------------------------------------------------------------------------------------------------------------ render

def render(model: Model, out_base: Path) -> list[Path]:
    """SVG and PNG with the diagrams library; the SVG's icons are inlined so it renders anywhere (docs site too)."""
    import importlib

    from diagrams import Cluster, Diagram, Edge  # type: ignore[import-untyped]

    def icon_class(dotted: str) -> Any:
        module, name = dotted.rsplit(".", 1)
        return getattr(importlib.import_module(f"diagrams.{module}"), name)

    out_base.parent.mkdir(parents=True, exist_ok=True)
    graph = {"rankdir": "LR", "splines": "spline", "fontsize": "20", "nodesep": "0.5", "ranksep": "1.1",
             "fontname": "DejaVu Sans"}
    written = []
    for fmt in ("svg", "png"):
        with Diagram(model.title, filename=str(out_base), outformat=fmt, show=False, graph_attr=graph,
                     node_attr={"fontname": "DejaVu Sans", "fontsize": "12"},
                     edge_attr={"fontname": "DejaVu Sans", "fontsize": "10"}):
            tree: dict[str, Any] = {}
            for node_id in sorted(model.nodes):
                cursor = tree
                for name in model.nodes[node_id]["group"]:
                    cursor = cursor.setdefault(name, {})
                cursor.setdefault("__nodes__", []).append(node_id)
            drawn = _draw_groups(tree, model, icon_class, Cluster)
            for source, target, label in model.merged_edges():
                drawn[source] >> Edge(label=label) >> drawn[target]
        path = out_base.with_suffix(f".{fmt}")
        if fmt == "svg":
            _inline_images(path)
        written.append(path)
    return written


def _draw_groups(level: dict[str, Any], model: Model, icon_class: Any, cluster: Any) -> dict[str, Any]:
    """Nodes of this level, then each nested group as a diagrams Cluster (a Graphviz subgraph) around its own."""
    drawn = {node_id: icon_class(model.nodes[node_id]["icon"])(model.nodes[node_id]["label"])
             for node_id in level.get("__nodes__", [])}
    for name in sorted(key for key in level if key != "__nodes__"):
        with cluster(name):
            drawn.update(_draw_groups(level[name], model, icon_class, cluster))
    return drawn


def _inline_images(svg: Path) -> None:
    """Graphviz writes icon paths of this machine's site-packages into the SVG; embed the PNGs instead."""
    text = svg.read_text(encoding="utf-8")

    def embed(match: re.Match[str]) -> str:
        data = base64.b64encode(Path(match.group(2)).read_bytes()).decode()
        return f'{match.group(1)}="data:image/png;base64,{data}"'
    svg.write_text(re.sub(r'(xlink:href|href)="(/[^"]+\.png)"', embed, text), encoding="utf-8")


# ------------------------------------------------------------------------------------------------------------ command

SELFNEST_VARIANTS: tuple[tuple[str, str, str | None], ...] = (
    ("selfnest-dev", "dev", None), ("selfnest-prod", "prod", "backup_restore"),
    ("selfnest-prod-pilot-light", "prod", "pilot_light"))
BABYBLOOM_STACKS = (("babybloom-dev", "dev"), ("babybloom-prod", "prod"))


def selfnest_title(env: str, tier: str | None) -> str:
    return f"Selfnest {env}" + (f" ({tier.replace('_', ' ')})" if tier not in (None, "backup_restore") else "")


def babybloom_title(stack: str) -> str:
    return f"BabyBloom {stack}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DIAGRAM_DIR)
    parser.add_argument("--only", help="one diagram by name, e.g. selfnest-dev or babybloom-prod")
    args = parser.parse_args(argv)
    from .deployment import babybloom_deployment, selfnest_deployment

    started = time.perf_counter()
    models: dict[str, Model] = {}
    for name, env, tier in SELFNEST_VARIANTS:
        if args.only in (None, name):
            with tempfile.TemporaryDirectory(prefix="refarch-diagram-") as scratch:
                models[name] = model_aws(selfnest_deployment(env, tier, Path(scratch)), selfnest_title(env, tier))
    for name, stack in BABYBLOOM_STACKS:
        if args.only in (None, name):
            models[name] = model_azure(babybloom_deployment(stack), babybloom_title(stack))
    if not models:
        print(f"diagrams: no diagram named {args.only!r}", file=sys.stderr)
        return 2
    for name, model in models.items():
        (args.out / f"{name}.json").parent.mkdir(parents=True, exist_ok=True)
        (args.out / f"{name}.json").write_text(model.as_json(), encoding="utf-8")
        paths = render(model, args.out / name)
        print(f"{name}: {len(model.nodes)} nodes, {len(model.edges)} edges -> "
              f"{', '.join(str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path) for path in paths)}")
    print(f"diagrams written in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
