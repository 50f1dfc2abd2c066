"""DynamoDB tables for application data: on demand by default, customer-managed encryption, point-in-time recovery."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from constructs import Construct

from .encryption import removal_policy
from .nag import acknowledge

# What a caller needs on a table's customer-managed key to read and write items (no wildcards).
DYNAMODB_CMK_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")

# Provisioned tables scale between their configured units and this multiple of them, tracking this utilisation: the
# configured units are the steady load, the headroom absorbs bursts without throttling (HTTP 400,
# ProvisionedThroughputExceededException).
AUTO_SCALING_MAX_MULTIPLE = 4
AUTO_SCALING_TARGET_UTILIZATION_PERCENT = 70


@dataclass(frozen=True, kw_only=True)
class Throughput:
    read_units: int
    write_units: int


class EncryptedTable(Construct):
    """A table keyed by string attributes, encrypted with `key`, recoverable to any second of 35 days.

    On demand unless `provisioned` is given: then that throughput, with auto scaling above it. `expiry_attribute`
    names the epoch-seconds attribute DynamoDB's TTL deletes items by; prod tables are retained and
    deletion-protected, dev tables are removed with their stack.

    `replicas` (region -> ARN or alias ARN of a customer-managed key there) makes it a global table (`table` is a
    TableV2, AWS::DynamoDB::GlobalTable) with a live, equally protected replica in each region. A table that a DR
    tier may replicate is given a mapping in every tier, empty when nothing is replicated: CloudFormation cannot turn
    an AWS::DynamoDB::Table into a GlobalTable in place, but adds and removes a GlobalTable's replicas as an update.
    `replicas=None` is a plain regional table (AWS::DynamoDB::Table).
    """

    def __init__(self, scope: Construct, id: str, *, table_name: str, partition_key: str, sort_key: str | None,
                 key: kms.IKey, expiry_attribute: str | None, retain_data: bool,
                 replicas: Mapping[str, str] | None = None, provisioned: Throughput | None = None) -> None:
        super().__init__(scope, id)
        self.table: dynamodb.Table | dynamodb.TableV2
        partition = dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING)
        sort = dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING) if sort_key else None
        recovery = dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True)
        if replicas is not None:
            self.table = dynamodb.TableV2(
                self, "Table",
                table_name=table_name, partition_key=partition, sort_key=sort,
                billing=_global_billing(provisioned),
                encryption=dynamodb.TableEncryptionV2.customer_managed_key(key, replica_key_arns=dict(replicas)),
                point_in_time_recovery_specification=recovery,
                time_to_live_attribute=expiry_attribute,
                # Replication needs this stream; it is on in every tier so that adding a replica changes only
                # `Replicas` (streams cost nothing without readers; replication's own reads are not billed).
                dynamo_stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
                deletion_protection=retain_data,
                replicas=[dynamodb.ReplicaTableProps(region=region, point_in_time_recovery_specification=recovery,
                                                     deletion_protection=retain_data) for region in replicas],
                removal_policy=removal_policy(retain_data=retain_data),
            )
            return
        self.table = dynamodb.Table(
            self, "Table",
            table_name=table_name, partition_key=partition, sort_key=sort,
            billing_mode=dynamodb.BillingMode.PROVISIONED if provisioned else dynamodb.BillingMode.PAY_PER_REQUEST,
            read_capacity=provisioned.read_units if provisioned else None,
            write_capacity=provisioned.write_units if provisioned else None,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=recovery,
            time_to_live_attribute=expiry_attribute,
            deletion_protection=retain_data,
            removal_policy=removal_policy(retain_data=retain_data),
        )
        self.provisioned = provisioned
        if provisioned is not None:
            _scale(self.table.auto_scale_read_capacity, self.table.auto_scale_write_capacity, provisioned)

    def add_index(self, *, index_name: str, partition_key: str, non_key_attributes: Sequence[str]) -> None:
        """A global secondary index keyed by a string attribute, projecting `non_key_attributes`.

        On a provisioned table the index gets the table's units and the same auto scaling: writes to the table
        also write the index, and an index that runs out of write capacity throttles the table's writes.
        """
        if not isinstance(self.table, dynamodb.Table):
            raise TypeError(f"{self.node.id}: indexes on replicated (global) tables are not supported here")
        table, capacity = self.table, self.provisioned
        table.add_global_secondary_index(
            index_name=index_name,
            partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.INCLUDE, non_key_attributes=list(non_key_attributes),
            read_capacity=capacity.read_units if capacity else None,
            write_capacity=capacity.write_units if capacity else None)
        if capacity is not None:
            _scale(functools.partial(table.auto_scale_global_secondary_index_read_capacity, index_name),
                   functools.partial(table.auto_scale_global_secondary_index_write_capacity, index_name), capacity)


ScalableAttribute = Callable[..., dynamodb.IScalableTableAttribute]


def _scale(read: ScalableAttribute, write: ScalableAttribute, provisioned: Throughput) -> None:
    """From the configured units up to AUTO_SCALING_MAX_MULTIPLE of them, tracking the target utilisation."""
    for scaling, units in ((read, provisioned.read_units), (write, provisioned.write_units)):
        scaling(min_capacity=units, max_capacity=units * AUTO_SCALING_MAX_MULTIPLE).scale_on_utilization(
            target_utilization_percent=AUTO_SCALING_TARGET_UTILIZATION_PERCENT)


def _global_billing(provisioned: Throughput | None) -> dynamodb.Billing:
    """A global table's capacity: on demand, or the configured units as the floor of built-in auto scaling.

    The seed is what DynamoDB applies when an existing table switches from on demand to provisioned, until the
    scaling policies exist (CloudFormation cannot know the capacity before the switch and requires it)."""
    if provisioned is None:
        return dynamodb.Billing.on_demand()

    def autoscaled(units: int) -> dynamodb.Capacity:
        return dynamodb.Capacity.autoscaled(
            min_capacity=units, max_capacity=units * AUTO_SCALING_MAX_MULTIPLE, seed_capacity=units,
            target_utilization_percent=AUTO_SCALING_TARGET_UTILIZATION_PERCENT)

    return dynamodb.Billing.provisioned(read_capacity=autoscaled(provisioned.read_units),
                                        write_capacity=autoscaled(provisioned.write_units))


class IdempotencyTable(EncryptedTable):
    """Where AWS Lambda Powertools idempotency records which event ids a consumer has applied (key `id`, TTL
    `expiration`, the names Powertools' DynamoDB persistence layer uses)."""

    def __init__(self, scope: Construct, id: str, *, table_name: str, key: kms.IKey, retain_data: bool) -> None:
        super().__init__(scope, id, table_name=table_name, partition_key="id", sort_key=None, key=key,
                         expiry_attribute="expiration", retain_data=retain_data)
        acknowledge(self.table, {
            "HIPAA.Security-DynamoDBInBackupPlan": "Holds only which event ids were applied, for days; restoring it "
                                                   "would change nothing because every consumer write is conditional.",
        })

    def grant_records(self, grantee: iam.IGrantable) -> None:
        """What the persistence layer does: read, claim, complete and (on failure) delete a record."""
        self.table.grant(grantee, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
