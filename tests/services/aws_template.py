"""Create a synthesized CloudFormation template's resources in moto, so service tests run against what deploys.

moto's CloudFormation creates the types in CLOUDFORMATION_TYPES. What it skips — Cognito, SNS subscriptions, queue
and topic policies — and table settings it drops (TTL, point-in-time recovery) are created here from the
template's own properties, resolved against the deployed resources. Nothing is retyped: change the template and
these resources change with it. Lambda functions are not created (moto cannot run them); tests read their handler,
environment and event source mappings from the template instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

CLOUDFORMATION_TYPES = {"AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::DynamoDB::Table", "AWS::KMS::Key"}
# Either kind of table the templates hold; moto's CloudFormation has no global tables (created here, below).
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
ACCOUNT_ID = "123456789012"   # moto's default account

Template = dict[str, Any]


@dataclass
class MotoStack:
    """One template's resources in moto: physical ids by logical id, and a resolver for template expressions."""

    name: str
    template: Template
    region: str
    endpoint: str
    physical_ids: dict[str, str] = field(default_factory=dict)
    imports: Callable[[dict[str, Any]], Any] | None = None   # resolves Fn::GetStackOutput to another MotoStack

    # -- reading the template -------------------------------------------------------------------------------------
    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {logical_id: resource for logical_id, resource in self.template["Resources"].items()
                if resource["Type"] == resource_type}

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(resource_type)
        assert len(found) == 1, f"{self.name}: expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    # -- resolving expressions ------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), = value.items()
            resolver = self._functions().get(function)
            if resolver is not None:
                return resolver(argument)
        return {key: self.resolve(item) for key, item in value.items()}

    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self.ref,
            "Fn::GetAtt": lambda argument: self.attribute(*argument),
            "Fn::Join": lambda argument: argument[0].join(str(self.resolve(part)) for part in argument[1]),
            "Fn::Select": lambda argument: self.resolve(argument[1])[int(argument[0])],
            "Fn::Split": lambda argument: str(self.resolve(argument[1])).split(argument[0]),
            "Fn::GetStackOutput": self._import,
        }

    def ref(self, name: str) -> str:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": ACCOUNT_ID, "AWS::Partition": "aws",
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": self.name}
        if name in pseudo:
            return pseudo[name]
        if name not in self.physical_ids:
            raise LookupError(f"{self.name}: {name} ({self.template['Resources'][name]['Type']}) was not created")
        return self.physical_ids[name]

    def attribute(self, logical_id: str, attribute: str) -> str:
        resource_type = self.template["Resources"][logical_id]["Type"]
        physical = self.ref(logical_id)
        if (resource_type, attribute) == ("AWS::SQS::Queue", "Arn"):
            return str(self.client("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])
                       ["Attributes"]["QueueArn"])
        if (resource_type, attribute) == ("AWS::SQS::Queue", "QueueName"):
            return physical.rsplit("/", 1)[-1]
        if (resource_type, attribute) == ("AWS::SNS::Topic", "TopicArn"):
            return physical
        if resource_type in TABLE_TYPES and attribute == "Arn":
            return str(self.client("dynamodb").describe_table(TableName=physical)["Table"]["TableArn"])
        if (resource_type, attribute) == ("AWS::KMS::Key", "Arn"):
            # Built, not described: moto's DescribeKey fails on keys its CloudFormation made (policy kept as a dict).
            return f"arn:aws:kms:{self.region}:{ACCOUNT_ID}:key/{physical}"
        if (resource_type, attribute) == ("AWS::Cognito::UserPool", "Arn"):
            return f"arn:aws:cognito-idp:{self.region}:{ACCOUNT_ID}:userpool/{physical}"
        raise LookupError(f"{self.name}: no resolver for {resource_type}.{attribute}")

    def _import(self, argument: dict[str, Any]) -> Any:
        if self.imports is None:
            raise LookupError(f"{self.name}: {argument} reads another stack; pass `imports`")
        return self.imports(argument)

    # -- what Lambda would run ------------------------------------------------------------------------------------
    def function_environment(self, function_id: str) -> dict[str, str]:
        function = self.template["Resources"][function_id]["Properties"]
        return {name: str(self.resolve(value))
                for name, value in function.get("Environment", {}).get("Variables", {}).items()}


def deploy(*, name: str, template: Template, region: str, endpoint: str,
           imports: Callable[[dict[str, Any]], Any] | None = None) -> MotoStack:
    stack = MotoStack(name=name, template=template, region=region, endpoint=endpoint, imports=imports)
    _create_supported(stack)
    for logical_id, resource in template["Resources"].items():
        creator = _CREATORS.get(resource["Type"])
        if creator is not None:
            physical = creator(stack, resource.get("Properties", {}))
            if physical is not None:
                stack.physical_ids[logical_id] = physical
    for logical_id, resource in stack.resources("AWS::DynamoDB::Table").items():
        _complete_table(stack, stack.ref(logical_id), resource["Properties"])
    return stack


def _create_supported(stack: MotoStack) -> None:
    resources = stack.template["Resources"]
    kept = {logical_id: resource for logical_id, resource in resources.items()
            if resource["Type"] in CLOUDFORMATION_TYPES}
    for resource in kept.values():
        if resource["Type"] == "AWS::KMS::Key":
            # moto's KMS reads CloudFormation tags with the API's key names (TagKey) and fails; tags change nothing.
            resource["Properties"].pop("Tags", None)
        depends_on = resource.get("DependsOn")
        if depends_on is not None:
            names = [depends_on] if isinstance(depends_on, str) else depends_on
            resource["DependsOn"] = [dependency for dependency in names if dependency in kept]
    body = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": kept}
    cloudformation = stack.client("cloudformation")
    cloudformation.create_stack(StackName=stack.name, TemplateBody=json.dumps(body))
    for summary in cloudformation.describe_stack_resources(StackName=stack.name)["StackResources"]:
        stack.physical_ids[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]


def _complete_table(stack: MotoStack, table_name: str, properties: dict[str, Any]) -> None:
    """Apply the table settings moto's CloudFormation drops."""
    dynamodb = stack.client("dynamodb")
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=stack.resolve(ttl))
    recovery = properties.get("PointInTimeRecoverySpecification")
    if recovery:
        dynamodb.update_continuous_backups(TableName=table_name,
                                           PointInTimeRecoverySpecification=stack.resolve(recovery))


def _global_table(stack: MotoStack, properties: dict[str, Any]) -> str:
    """This region's replica of a global table, as a table with the template's settings for it."""
    [replica] = [replica for replica in properties["Replicas"] if replica["Region"] == stack.region]
    request: dict[str, Any] = {name: properties[name] for name in ("TableName", "KeySchema", "AttributeDefinitions")}
    request["BillingMode"] = properties.get("BillingMode", "PROVISIONED")
    if request["BillingMode"] == "PROVISIONED":
        reads = replica["ReadProvisionedThroughputSettings"]
        writes = properties["WriteProvisionedThroughputSettings"]["WriteCapacityAutoScalingSettings"]
        read_units = reads.get("ReadCapacityUnits") or reads["ReadCapacityAutoScalingSettings"]["MinCapacity"]
        request["ProvisionedThroughput"] = {"ReadCapacityUnits": read_units,
                                            "WriteCapacityUnits": writes["MinCapacity"]}
    if "StreamSpecification" in properties:
        request["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    key = replica.get("SSESpecification", {}).get("KMSMasterKeyId")
    if key is not None:
        request["SSESpecification"] = {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": stack.resolve(key)}
    stack.client("dynamodb").create_table(**request)
    _complete_table(stack, properties["TableName"], {
        "TimeToLiveSpecification": properties.get("TimeToLiveSpecification"),
        "PointInTimeRecoverySpecification": replica.get("PointInTimeRecoverySpecification")})
    return str(properties["TableName"])


def _queue_policy(stack: MotoStack, properties: dict[str, Any]) -> None:
    policy = json.dumps(stack.resolve(properties["PolicyDocument"]))
    for queue_url in stack.resolve(properties["Queues"]):
        stack.client("sqs").set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})


def _topic_policy(stack: MotoStack, properties: dict[str, Any]) -> None:
    policy = json.dumps(stack.resolve(properties["PolicyDocument"]))
    for topic_arn in stack.resolve(properties["Topics"]):
        stack.client("sns").set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=policy)


SUBSCRIPTION_ATTRIBUTES = ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy",
                           "DeliveryPolicy")


def _subscription(stack: MotoStack, properties: dict[str, Any]) -> str:
    resolved = stack.resolve(properties)
    attributes = {name: value if isinstance(value, str) else json.dumps(value)
                  for name, value in resolved.items() if name in SUBSCRIPTION_ATTRIBUTES}
    attributes = {name: value.lower() if value in ("True", "False") else value
                  for name, value in attributes.items()}
    if isinstance(resolved.get("RawMessageDelivery"), bool):
        attributes["RawMessageDelivery"] = str(resolved["RawMessageDelivery"]).lower()
    return str(stack.client("sns").subscribe(TopicArn=resolved["TopicArn"], Protocol=resolved["Protocol"],
                                             Endpoint=resolved["Endpoint"], Attributes=attributes,
                                             ReturnSubscriptionArn=True)["SubscriptionArn"])


# CloudFormation UserPool property -> CreateUserPool parameter, where they differ.
USER_POOL_RENAMES = {"UserPoolName": "PoolName"}
# Settings with no CreateUserPool parameter (or that moto rejects); applied separately or by the test harness.
USER_POOL_SEPARATE = {"LambdaConfig", "EnabledMfas", "UserPoolTier", "UserPoolAddOns", "UserPoolTags",
                      "UsernameConfiguration"}


def _user_pool(stack: MotoStack, properties: dict[str, Any]) -> str:
    resolved = stack.resolve({name: value for name, value in properties.items() if name != "LambdaConfig"})
    parameters = {USER_POOL_RENAMES.get(name, name): value for name, value in resolved.items()
                  if name not in USER_POOL_SEPARATE}
    parameters["Schema"] = [_schema_attribute(attribute) for attribute in parameters.get("Schema", [])]
    if "UsernameConfiguration" in resolved:
        parameters["UsernameConfiguration"] = {
            "CaseSensitive": bool(resolved["UsernameConfiguration"].get("CaseSensitive", True))}
    cognito = stack.client("cognito-idp")
    pool_id = str(cognito.create_user_pool(**parameters)["UserPool"]["Id"])
    if "EnabledMfas" in resolved:
        cognito.set_user_pool_mfa_config(
            UserPoolId=pool_id, MfaConfiguration=resolved.get("MfaConfiguration", "OFF"),
            SoftwareTokenMfaConfiguration={"Enabled": "SOFTWARE_TOKEN_MFA" in resolved["EnabledMfas"]})
    return pool_id


def _schema_attribute(attribute: dict[str, Any]) -> dict[str, Any]:
    # CloudFormation writes constraint bounds as strings or numbers; the API takes strings.
    constraints = attribute.get("StringAttributeConstraints")
    if constraints:
        attribute = {**attribute, "StringAttributeConstraints": {key: str(value) for key, value in
                                                                 constraints.items()}}
    return attribute


def _user_pool_group(stack: MotoStack, properties: dict[str, Any]) -> str:
    resolved = stack.resolve(properties)
    stack.client("cognito-idp").create_group(**resolved)
    return str(resolved["GroupName"])


def _user_pool_client(stack: MotoStack, properties: dict[str, Any]) -> str:
    # ClientName is optional in CloudFormation (it names the client after the resource) but required by the API.
    resolved = {"ClientName": "client", **stack.resolve(properties)}
    created = stack.client("cognito-idp").create_user_pool_client(**resolved)
    return str(created["UserPoolClient"]["ClientId"])


_CREATORS: dict[str, Callable[[MotoStack, dict[str, Any]], str | None]] = {
    "AWS::DynamoDB::GlobalTable": _global_table,
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::SNS::TopicPolicy": _topic_policy,
    "AWS::SNS::Subscription": _subscription,
    "AWS::Cognito::UserPool": _user_pool,
    "AWS::Cognito::UserPoolGroup": _user_pool_group,
    "AWS::Cognito::UserPoolClient": _user_pool_client,
}


def outputs_of(*producers: MotoStack) -> Callable[[dict[str, Any]], Any]:
    """Resolve a consumer template's Fn::GetStackOutput against the producing stacks already in moto."""
    by_name = {producer.name: producer for producer in producers}

    def read(argument: dict[str, Any]) -> Any:
        producer = by_name[argument["StackName"]]
        return producer.resolve(producer.template["Outputs"][argument["OutputName"]]["Value"])

    return read
