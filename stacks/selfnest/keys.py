"""selfnest-<env>-keys (config `encryption.keys: per_environment`): the one customer-managed key every tier uses.

With `per_purpose` (the default) each tier's stack makes its own key and there is no keys stack. Either way a tier
asks `tier_key` for its key, so the choice is config, not code.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from refarch.constructs.aws.encryption import CustomerManagedKey

from constructs import Construct

from .config import SelfnestSettings

KEYS_STACK_ID = "keys"


class KeysStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, settings: SelfnestSettings, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.key = CustomerManagedKey(
            self, "Key", alias=f"alias/{settings.name('key')}", retain_data=settings.retain_data,
            purpose=f"Selfnest {settings.environment}: every tier's data, secrets, topics, queues and logs",
            for_cloudwatch_logs=True).key
        # The tiers use the key by ARN, so statements their constructs would add to a key of their own (which
        # would name their topics and make this stack depend on theirs) are written here, by name, once.
        this_account = {"StringEquals": {"aws:SourceAccount": self.account}}
        environment_topics = self.format_arn(service="sns", resource=f"{settings.name('')}*",
                                             arn_format=cdk.ArnFormat.NO_RESOURCE_NAME)
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="SnsDeliversThisEnvironmentsTopicsToItsQueues",
            principals=[iam.ServicePrincipal("sns.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],  # in a key policy "*" means this key
            conditions={**this_account, "ArnLike": {"aws:SourceArn": environment_topics}},
        ))
        this_accounts_alarms = self.format_arn(service="cloudwatch", resource="alarm", resource_name="*",
                                               arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublishToEncryptedTopics",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={**this_account, "ArnLike": {"aws:SourceArn": this_accounts_alarms}},
        ))


def tier_key(stack: cdk.Stack, id: str, *, settings: SelfnestSettings, alias: str, purpose: str,
             for_cloudwatch_logs: bool = False) -> kms.IKey:
    """The key `stack` encrypts with: its own (per_purpose), or the environment's keys stack's key by ARN.

    An imported key takes no key-policy statements (CDK drops them): KeysStack already holds the ones the tiers
    need (CloudWatch Logs, SNS into queues, CloudWatch alarms into topics); grants go to the callers' own policies,
    which the key policy delegates to IAM in this account.
    """
    if settings.encryption.keys == "per_purpose":
        return CustomerManagedKey(stack, id, alias=alias, purpose=purpose, retain_data=settings.retain_data,
                                  for_cloudwatch_logs=for_cloudwatch_logs).key
    environment = stack.node.scope
    keys = environment.node.try_find_child(KEYS_STACK_ID) if environment is not None else None
    if not isinstance(keys, KeysStack):
        raise ValueError(f"{stack.node.path}: encryption.keys is per_environment but the environment has no "
                         f"'{KEYS_STACK_ID}' stack (SelfnestEnvironment builds it before the tiers)")
    return kms.Key.from_key_arn(stack, id, keys.key.key_arn)
