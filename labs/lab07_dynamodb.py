"""Lab 07 — DynamoDB capacity: provisioned read/write units for the chat history, sized by the calculator."""

from __future__ import annotations

from typing import Any

from refarch.stacks.selfnest.config import load_settings
from refarch.tools.calculators import dynamodb_capacity

from .grading import Check, Lab, at_path, check, synth_environment

# The chat history's measured steady load at peak: 100 live sessions, one message every 2 s each (50 writes/s of
# ~1.5 KB items), and participants joining read history strongly consistent (25 reads/s of ~6 KB), so a message
# sent a moment ago is never missing from what they see.
READ_UNITS = dynamodb_capacity(item_kb="6", reads_per_second=25, writes_per_second=0, consistency="strong").rcu
WRITE_UNITS = dynamodb_capacity(item_kb="1.5", reads_per_second=0, writes_per_second=50).wcu


def _table(template: dict[str, Any], name: str) -> dict[str, Any]:
    [(_, table)] = list(at_path(template, f"{name}/Table/Resource"))
    properties: dict[str, Any] = table["Properties"]
    return properties


def _scaling(messages: dict[str, Any], region: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The history is a global table (a DR tier may replicate it): auto scaling is part of the table, reads per
    replica (this region's), writes for all replicas."""
    replica: dict[str, Any] = next((r for r in messages.get("Replicas", []) if r.get("Region") == region), {})
    reads = replica.get("ReadProvisionedThroughputSettings", {}).get("ReadCapacityAutoScalingSettings", {})
    writes = messages.get("WriteProvisionedThroughputSettings", {}).get("WriteCapacityAutoScalingSettings", {})
    return reads, writes


def grade() -> list[Check]:
    settings = load_settings("dev")
    template = synth_environment(settings)["chat"]
    messages, connections = _table(template, "Tables/Messages"), _table(template, "Tables/Connections")
    reads, writes = _scaling(messages, settings.region)
    return [
        check("the chat messages table uses provisioned capacity",
              messages.get("BillingMode") == "PROVISIONED" and bool(reads) and bool(writes),
              "add chat.provisioned_tables.messages in config/dev.yaml: a steady, predictable load is cheaper "
              "provisioned (and can use reserved capacity)."),
        check(f"read units = {READ_UNITS} (25 strongly consistent reads/s of 6 KB)",
              reads.get("MinCapacity") == READ_UNITS,
              "each read rounds up to 4 KB: 6 KB = 2 units; strong consistency costs the full 2 (eventual would "
              "halve it). `refarch calc dynamodb --item-kb 6 --reads 25 --writes 0 --consistency strong`."),
        check(f"write units = {WRITE_UNITS} (50 writes/s of 1.5 KB)",
              writes.get("MinCapacity") == WRITE_UNITS,
              "each write rounds up to 1 KB: 1.5 KB = 2 units. `refarch calc dynamodb --item-kb 1.5 --reads 0 "
              "--writes 50`."),
        check("auto scaling keeps the provisioned units as its floor and can go above them",
              all(scaling.get("MaxCapacity", 0) > scaling.get("MinCapacity", 0) > 0
                  and "TargetTrackingScalingPolicyConfiguration" in scaling for scaling in (reads, writes)),
              "without auto scaling a burst above the provisioned units is throttled "
              "(ProvisionedThroughputExceededException); HIPAA's cdk-nag pack requires it too."),
        check("the connections table stays on demand", connections.get("BillingMode") == "PAY_PER_REQUEST",
              "spiky or unknown traffic fits on-demand: no capacity planning, twice the previous peak absorbed "
              "instantly; it is DynamoDB's default and recommended mode."),
    ]


LAB = Lab(number="07", slug="dynamodb-capacity", title="DynamoDB capacity: on-demand vs provisioned (RCU/WCU)",
          exam="DVA-C02 Domain 4: Troubleshooting and Optimization; SAA-C03 Domain 3: Design High-Performing "
               "Architectures", grade=grade)
