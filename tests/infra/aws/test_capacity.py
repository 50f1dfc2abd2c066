"""Provisioned DynamoDB tables (config `messaging.provisioned_tables`, `chat.provisioned_tables`; lab 07): the
configured units, provisioned billing, and auto scaling from those units up to the construct's headroom."""

from __future__ import annotations

import pytest
from refarch.constructs.aws.tables import AUTO_SCALING_MAX_MULTIPLE, AUTO_SCALING_TARGET_UTILIZATION_PERCENT
from refarch.stacks.selfnest.config import ProvisionedCapacity

from . import test_messaging
from .assembly import Assembly, Resource, ref

PARTS = ("messaging", "chat")
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")   # tables a DR tier may replicate are global


def tables_of(assembly: Assembly, part: str) -> dict[str, Resource]:
    return {logical_id: table for table_type in TABLE_TYPES
            for logical_id, table in assembly.resources(part, table_type).items()}
DIMENSIONS = {"ReadCapacityUnits": ("read_units", "DynamoDBReadCapacityUtilization"),
              "WriteCapacityUnits": ("write_units", "DynamoDBWriteCapacityUtilization")}


def configured(assembly: Assembly, part: str) -> dict[str, ProvisionedCapacity]:
    """Provisioned capacity by physical table name, as config asks for it."""
    sections = {"messaging": assembly.settings.messaging.provisioned_tables.items(),
                "chat": assembly.settings.chat.provisioned_tables.items()}
    provisioned: dict[str, ProvisionedCapacity] = {str(table): capacity for table, capacity in sections[part]}
    tables = tables_of(assembly, part)
    by_suffix = {}
    for table, capacity in provisioned.items():
        [name] = [t["Properties"]["TableName"] for t in tables.values()
                  if t["Properties"]["TableName"].endswith(f"-{table}")]
        by_suffix[name] = capacity
    return by_suffix


def scaling_of(assembly: Assembly, part: str, table_id: str,
               index: str | None = None) -> dict[str, tuple[Resource, list[Resource]]]:
    """Each scalable dimension of a table (or of one of its indexes): its scalable target and the policies that
    track it."""
    found = {}
    policies = assembly.resources(part, "AWS::ApplicationAutoScaling::ScalingPolicy")
    resource_id = ["table/", ref(table_id)] + ([f"/index/{index}"] if index else [])
    for target_id, target in assembly.resources(part, "AWS::ApplicationAutoScaling::ScalableTarget").items():
        properties = target["Properties"]
        if properties["ResourceId"] != {"Fn::Join": ["", resource_id]}:
            continue
        assert properties["ServiceNamespace"] == "dynamodb"
        dimension = properties["ScalableDimension"].removeprefix(f"dynamodb:{'index' if index else 'table'}:")
        found[dimension] = (target, [p for p in policies.values()
                                     if p["Properties"]["ScalingTargetId"] == ref(target_id)])
    return found


@pytest.mark.parametrize("part", PARTS)
def test_provisioned_tables_bill_their_units_and_scale_from_them(provisioned: Assembly, part: str) -> None:
    wanted = configured(provisioned, part)
    assert wanted, f"the provisioned variant provisions {part} tables"
    tables = {t["Properties"]["TableName"]: (logical_id, t) for logical_id, t in tables_of(provisioned, part).items()}
    for name, capacity in wanted.items():
        table_id, table = tables[name]
        properties = table["Properties"]
        if table["Type"] == "AWS::DynamoDB::GlobalTable":
            assert_global_table_scales_from(capacity, properties, name)
            continue
        assert properties.get("BillingMode", "PROVISIONED") == "PROVISIONED", name
        assert properties["ProvisionedThroughput"] == {"ReadCapacityUnits": capacity.read_units,
                                                       "WriteCapacityUnits": capacity.write_units}, name
        assert_scales_from(capacity, scaling_of(provisioned, part, table_id), name)
        # Writes to the table also write its indexes: each index has the same units and scaling.
        for index in properties.get("GlobalSecondaryIndexes", []):
            where = f"{name} index {index['IndexName']}"
            assert index["ProvisionedThroughput"] == properties["ProvisionedThroughput"], where
            assert_scales_from(capacity, scaling_of(provisioned, part, table_id, index["IndexName"]), where)
    for name, (_, table) in tables.items():
        if name not in wanted:
            assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST", f"{name} was not asked to be provisioned"


def assert_global_table_scales_from(capacity: ProvisionedCapacity, properties: Resource, where: str) -> None:
    """A global table's own auto scaling: writes for the table, reads per replica, from the configured units."""
    assert properties["BillingMode"] == "PROVISIONED", where
    settings = [("write_units", properties["WriteProvisionedThroughputSettings"]["WriteCapacityAutoScalingSettings"])]
    settings += [("read_units", replica["ReadProvisionedThroughputSettings"]["ReadCapacityAutoScalingSettings"])
                 for replica in properties["Replicas"]]
    for index in properties.get("GlobalSecondaryIndexes", []):
        write = index["WriteProvisionedThroughputSettings"]
        settings.append(("write_units", write["WriteCapacityAutoScalingSettings"]))
    for field, scaling in settings:
        units = getattr(capacity, field)
        assert (scaling["MinCapacity"], scaling["MaxCapacity"]) == (units, units * AUTO_SCALING_MAX_MULTIPLE), where
        assert scaling["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == \
            AUTO_SCALING_TARGET_UTILIZATION_PERCENT, where


def assert_scales_from(capacity: ProvisionedCapacity, scaling: dict[str, tuple[Resource, list[Resource]]],
                       where: str) -> None:
    assert set(scaling) == set(DIMENSIONS), where
    for dimension, (target, policies) in scaling.items():
        field, metric = DIMENSIONS[dimension]
        units = getattr(capacity, field)
        assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (
            units, units * AUTO_SCALING_MAX_MULTIPLE), f"{where} {dimension}"
        [policy] = policies
        tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        assert policy["Properties"]["PolicyType"] == "TargetTrackingScaling"
        assert tracking["PredefinedMetricSpecification"] == {"PredefinedMetricType": metric}
        assert tracking["TargetValue"] == AUTO_SCALING_TARGET_UTILIZATION_PERCENT


@pytest.mark.parametrize("part", PARTS)
def test_on_demand_tables_have_no_scaling(dev: Assembly, part: str) -> None:
    assert configured(dev, part) == {}
    for logical_id, table in tables_of(dev, part).items():
        assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
        assert "WriteProvisionedThroughputSettings" not in table["Properties"]
        assert scaling_of(dev, part, logical_id) == {}
        for index in table["Properties"].get("GlobalSecondaryIndexes", []):
            assert "ProvisionedThroughput" not in index
            assert scaling_of(dev, part, logical_id, index["IndexName"]) == {}


def test_the_messaging_table_checks_hold_for_provisioned_tables(provisioned: Assembly) -> None:
    assert provisioned.settings.messaging.provisioned_tables   # so the provisioned branch of that test runs
    test_messaging.test_consumer_tables_are_encrypted_recoverable_and_expire_what_should(provisioned)
