"""DynamoDB tables for application data: on-demand, customer-managed encryption, point-in-time recovery."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms

from constructs import Construct

from .encryption import removal_policy

# What a caller needs on a table's customer-managed key to read and write items (no wildcards).
DYNAMODB_CMK_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")


class EncryptedTable(Construct):
    """An on-demand table keyed by string attributes, encrypted with `key`, recoverable to any second of 35 days.

    `expiry_attribute` names the epoch-seconds attribute DynamoDB's TTL deletes items by; prod tables are
    retained and deletion-protected, dev tables are removed with their stack.

    `replicas` (region -> ARN or alias ARN of a customer-managed key there) makes it a global table with a live,
    equally protected replica in each region (the pilot-light DR tier); `table` is then a TableV2.
    """

    def __init__(self, scope: Construct, id: str, *, table_name: str, partition_key: str, sort_key: str | None,
                 key: kms.IKey, expiry_attribute: str | None, retain_data: bool,
                 replicas: Mapping[str, str] | None = None) -> None:
        super().__init__(scope, id)
        self.table: dynamodb.Table | dynamodb.TableV2
        if replicas:
            recovery = dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True)
            self.table = dynamodb.TableV2(
                self, "Table",
                table_name=table_name,
                partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING) if sort_key else None,
                billing=dynamodb.Billing.on_demand(),
                encryption=dynamodb.TableEncryptionV2.customer_managed_key(key, replica_key_arns=dict(replicas)),
                point_in_time_recovery_specification=recovery,
                time_to_live_attribute=expiry_attribute,
                deletion_protection=retain_data,
                replicas=[dynamodb.ReplicaTableProps(region=region, point_in_time_recovery_specification=recovery,
                                                     deletion_protection=retain_data) for region in replicas],
                removal_policy=removal_policy(retain_data=retain_data),
            )
            return
        self.table = dynamodb.Table(
            self, "Table",
            table_name=table_name,
            partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING) if sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            time_to_live_attribute=expiry_attribute,
            deletion_protection=retain_data,
            removal_policy=removal_policy(retain_data=retain_data),
        )
