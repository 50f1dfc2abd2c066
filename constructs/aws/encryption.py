"""Customer-managed KMS keys and the log groups they protect."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct

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
