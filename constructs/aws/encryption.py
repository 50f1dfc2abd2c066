"""Customer-managed KMS keys and the log groups they protect."""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct, IConstruct

from .retention import LOG_RETENTION_DAYS

# aws_logs.RetentionDays lists the same periods in the same order, then INFINITE.
RETENTION_BY_DAYS: dict[int, logs.RetentionDays] = dict(zip(LOG_RETENTION_DAYS, list(logs.RetentionDays)[:-1],
                                                            strict=True))


def removal_policy(*, retain_data: bool) -> cdk.RemovalPolicy:
    """Prod keeps data when a stack is deleted; dev removes it so learners leave nothing behind."""
    return cdk.RemovalPolicy.RETAIN if retain_data else cdk.RemovalPolicy.DESTROY


class CustomerManagedKey(Construct):
    """A symmetric KMS key with yearly rotation, optionally usable by CloudWatch Logs in this region."""

    def __init__(self, scope: Construct, id: str, *, alias: str, purpose: str, retain_data: bool,
                 for_cloudwatch_logs: bool = False) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self, "Key",
            alias=alias,
            description=purpose,
            enable_key_rotation=True,
            # Shortest waiting period in dev so a torn-down environment stops costing sooner.
            pending_window=cdk.Duration.days(30 if retain_data else 7),
            removal_policy=removal_policy(retain_data=retain_data),
        )
        if for_cloudwatch_logs:
            stack = cdk.Stack.of(self)
            self.key.add_to_resource_policy(iam.PolicyStatement(
                sid="CloudWatchLogsInThisAccountAndRegion",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                        f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"}},
            ))


class EncryptedLogGroup(Construct):
    """A CloudWatch log group encrypted with a customer-managed key, with bounded retention."""

    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, retention_days: int, retain_data: bool,
                 name: str | None = None) -> None:
        super().__init__(scope, id)
        self.log_group = logs.LogGroup(
            self, "LogGroup",
            log_group_name=name,
            encryption_key=key,
            retention=RETENTION_BY_DAYS[retention_days],
            removal_policy=removal_policy(retain_data=retain_data),
        )


@jsii.implements(cdk.IAspect)
class _OwnFunctionLogs:
    def __init__(self, *, key: kms.IKey, retention_days: int, retain_data: bool) -> None:
        self._key, self._retention_days, self._retain_data = key, retention_days, retain_data
        self._done: set[str] = set()

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, cdk.CfnResource) or node.cfn_resource_type != "AWS::Lambda::Function" \
                or node.node.path in self._done:
            return
        self._done.add(node.node.path)
        if isinstance(node, lambda_.CfnFunction):
            if node.logging_config is not None:
                return   # our own functions (BundledPythonFunction) bring their log group
            node.logging_config = lambda_.CfnFunction.LoggingConfigProperty(log_group=self._group(node))
        else:   # CDK's singleton providers (custom resources, bucket notifications) are plain CfnResources
            node.add_property_override("LoggingConfig.LogGroup", self._group(node))

    def _group(self, function: cdk.CfnResource) -> str:
        scope = function.node.scope
        assert isinstance(scope, Construct)   # a resource always has a parent construct
        group = EncryptedLogGroup(scope, f"{function.node.id}Logs", key=self._key,
                                  retention_days=self._retention_days, retain_data=self._retain_data)
        # A Ref, so CloudFormation creates the group first and deletes it last: a helper that runs during
        # `cdk destroy` (emptying a bucket, restoring a default security group) still logs into it.
        return group.log_group.log_group_name


def own_function_logs(stack: cdk.Stack, *, key: kms.IKey, retention_days: int, retain_data: bool) -> None:
    """Give every Lambda function in `stack` that has no log group of its own — CDK's helper functions for custom
    resources, bucket notifications, log retention — an encrypted, expiring group the stack creates and deletes.

    Otherwise Lambda creates /aws/lambda/<name> on the first run: unencrypted, never expiring, and left behind by
    `cdk destroy`. `key` must let CloudWatch Logs use it (CustomerManagedKey(for_cloudwatch_logs=True)).
    """
    cdk.Aspects.of(stack).add(_OwnFunctionLogs(key=key, retention_days=retention_days, retain_data=retain_data))
