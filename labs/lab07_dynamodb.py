"""Lab 07 — DynamoDB capacity: provisioned read/write units for the chat history, sized by the calculator.

Capacity is read wherever a correct answer may put it: an AWS::DynamoDB::Table's ProvisionedThroughput with its
Application Auto Scaling targets, or an AWS::DynamoDB::GlobalTable's (TableV2) auto-scaling settings. Units are
thresholds — at least the steady load — because more is not wrong, only dearer (the found line shows the cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refarch.stacks.selfnest.config import load_settings
from refarch.tools.calculators import dynamodb_capacity

from .grading import Check, Template, check, resources, synth_parts

# The chat history's measured steady load at peak: 100 live sessions, one message every 2 s each (50 writes/s of
# ~1.5 KB items), and participants joining read history strongly consistent (25 reads/s of ~6 KB), so a message
# sent a moment ago is never missing from what they see.
READ_UNITS = dynamodb_capacity(item_kb="6", reads_per_second=25, consistency="strong").rcu
WRITE_UNITS = dynamodb_capacity(item_kb="1.5", writes_per_second=50).wcu
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")


@dataclass(frozen=True, kw_only=True)
class Capacity:
    billing: str
    read_units: int | None
    write_units: int | None
    read_floor: int | None      # auto scaling's minimum (None: not auto scaled)
    write_floor: int | None

    def describe(self) -> str:
        if self.billing != "PROVISIONED":
            return "on demand (PAY_PER_REQUEST)"
        return (f"{self.read_units} RCU (auto scaling floor {self.read_floor}), {self.write_units} WCU (auto scaling "
                f"floor {self.write_floor})")


def _table(template: Template, suffix: str) -> tuple[str, dict[str, Any]]:
    for resource_type in TABLE_TYPES:
        for logical_id, table in resources(template, resource_type).items():
            if str(table["Properties"].get("TableName", "")).endswith(f"-{suffix}"):
                return logical_id, table
    return "", {"Type": "", "Properties": {}}


def capacity(template: Template, suffix: str, region: str) -> Capacity:
    """A global table's auto scaling is part of the table: reads per replica (this region's), writes for all."""
    logical_id, table = _table(template, suffix)
    properties = table["Properties"]
    billing = properties.get("BillingMode", "PROVISIONED")
    if table["Type"] == "AWS::DynamoDB::GlobalTable":
        writes = properties.get("WriteProvisionedThroughputSettings", {}).get("WriteCapacityAutoScalingSettings", {})
        replicas: list[dict[str, Any]] = properties.get("Replicas", [])
        replica = next((item for item in replicas if item.get("Region") == region), {})
        reads = replica.get("ReadProvisionedThroughputSettings", {})
        read_scaling = reads.get("ReadCapacityAutoScalingSettings", {})
        return Capacity(billing=billing, read_units=reads.get("ReadCapacityUnits", read_scaling.get("MinCapacity")),
                        write_units=writes.get("MinCapacity"), read_floor=read_scaling.get("MinCapacity"),
                        write_floor=writes.get("MinCapacity"))
    floors = {target["Properties"]["ScalableDimension"].rsplit(":", 1)[-1]: target["Properties"]["MinCapacity"]
              for target in resources(template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
              if logical_id and f"'Ref': '{logical_id}'" in str(target["Properties"]["ResourceId"])}
    throughput = properties.get("ProvisionedThroughput", {})
    return Capacity(billing="PROVISIONED" if throughput and billing == "PROVISIONED" else "PAY_PER_REQUEST",
                    read_units=throughput.get("ReadCapacityUnits"), write_units=throughput.get("WriteCapacityUnits"),
                    read_floor=floors.get("ReadCapacityUnits"), write_floor=floors.get("WriteCapacityUnits"))


def grade(root: Path) -> list[Check]:
    settings = load_settings("dev", root / "config")

    template = synth_parts(settings, ["chat"])["chat"]
    messages = capacity(template, "messages", settings.region)
    connections = capacity(template, "connections", settings.region)
    provisioned = messages.billing == "PROVISIONED"
    return [
        check("the chat messages table uses provisioned capacity", provisioned,
              "a steady, predictable load is cheaper provisioned (and can use reserved capacity): "
              "chat.provisioned_tables in config/dev.yaml.", found=messages.describe()),
        check("reads: enough read capacity for 25 strongly consistent reads/s of 6 KB",
              provisioned and (messages.read_units or 0) >= READ_UNITS,
              "each read rounds up to 4 KB: 6 KB = 2 units; strong consistency costs the full 2 (eventual would "
              "halve it). `refarch calc dynamodb --item-kb 6 --reads 25 --consistency strong`.",
              found=f"{messages.read_units} RCU; needed {READ_UNITS}" if provisioned else "on demand"),
        check("writes: enough write capacity for 50 writes/s of 1.5 KB",
              provisioned and (messages.write_units or 0) >= WRITE_UNITS,
              "each write rounds up to 1 KB: 1.5 KB = 2 units. `refarch calc dynamodb --item-kb 1.5 --writes 50`.",
              found=f"{messages.write_units} WCU; needed {WRITE_UNITS}" if provisioned else "on demand"),
        check("auto scaling never goes below the steady load",
              provisioned and (messages.read_floor or 0) >= READ_UNITS and (messages.write_floor or 0) >= WRITE_UNITS,
              "without auto scaling a burst above the provisioned units is throttled "
              "(ProvisionedThroughputExceededException); a floor below the steady load lets it scale in and "
              "throttle at the next peak. HIPAA's cdk-nag pack requires auto scaling too.",
              found=f"auto scaling floors: reads {messages.read_floor}, writes {messages.write_floor}"),
        check("the connections table stays on demand", connections.billing == "PAY_PER_REQUEST",
              "spiky or unknown traffic fits on-demand: no capacity planning, twice the previous peak absorbed "
              "instantly; it is DynamoDB's default and recommended mode.", found=connections.describe()),
    ]

