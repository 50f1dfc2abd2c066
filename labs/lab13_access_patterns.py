"""Lab 13 — DynamoDB access patterns: a global secondary index so the chat can close every live connection of a user
whose access was revoked (a therapist removed from the group), without a Scan — and what the index costs.

The index may have any name and any projection that answers the query (KEYS_ONLY is enough: the connection ID is the
table's key); the table may be a Table or a GlobalTable (TableV2). What is checked is the access pattern: partition
key user_id, a string, and — when the table is provisioned — index write capacity that keeps up with the table's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from refarch.stacks.selfnest.config import load_settings
from refarch.tools.calculators import dynamodb_capacity

from .grading import Check, check, resources, synth_parts

TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
USER_KEY = "user_id"
# Connections come and go: at peak 20 connects or disconnects per second, items well under 1 KB.
CONNECTION_WRITES = 20
INDEX_WRITE_UNITS = dynamodb_capacity(item_kb="1", writes_per_second=CONNECTION_WRITES).wcu


def _connections(template: dict[str, Any]) -> dict[str, Any]:
    for resource_type in TABLE_TYPES:
        for table in resources(template, resource_type).values():
            if str(table["Properties"].get("TableName", "")).endswith("-connections"):
                return dict(table["Properties"])
    return {}


def _key(index: dict[str, Any], key_type: str) -> str | None:
    return next((key["AttributeName"] for key in index["KeySchema"] if key["KeyType"] == key_type), None)


def grade(root: Path) -> list[Check]:
    settings = load_settings("dev", root / "config")
    table = _connections(synth_parts(settings, ["chat"])["chat"])
    indexes = table.get("GlobalSecondaryIndexes", [])
    by_user = [index for index in indexes if _key(index, "HASH") == USER_KEY]
    types = {attribute["AttributeName"]: attribute["AttributeType"] for attribute in table.get("AttributeDefinitions",
                                                                                               [])}
    provisioned = "ProvisionedThroughput" in table
    table_writes = table.get("ProvisionedThroughput", {}).get("WriteCapacityUnits", 0)
    shown = "; ".join(f"{index['IndexName']}: {_key(index, 'HASH')}"
                      f"{' + ' + str(_key(index, 'RANGE')) if _key(index, 'RANGE') else ''} "
                      f"({index['Projection']['ProjectionType']})" for index in indexes) or "no indexes"
    return [
        check(f"a global secondary index on the connections table is partitioned by {USER_KEY}", bool(by_user),
              "a Query needs the partition key: the table is keyed by connection_id and indexed by session, so "
              "finding a user's connections would be a Scan of every connection (read cost grows with the table). "
              "A GSI keyed by user_id makes it one Query.", found=shown),
        check(f"{USER_KEY} is declared as a string attribute", types.get(USER_KEY) == "S",
              "key attributes of tables and indexes are declared with their type; the handler stores user_id as the "
              "Cognito sub, a string.", found=f"{USER_KEY}: {types.get(USER_KEY, 'not declared')}"),
        check("the index projects only what the query needs",
              bool(by_user) and all(index["Projection"]["ProjectionType"] in {"KEYS_ONLY", "INCLUDE"}
                                    for index in by_user),
              "every write to the table is also written to each index that projects the item: ALL doubles the "
              "stored bytes; KEYS_ONLY already returns connection_id, the table's key, which is all a disconnect "
              "needs.", found=shown),
        check(f"a provisioned table's index gets write capacity of its own, enough for {CONNECTION_WRITES} "
              "connection writes/s",
              not provisioned or all(index.get("ProvisionedThroughput", {}).get("WriteCapacityUnits", 0)
                                     >= max(INDEX_WRITE_UNITS, table_writes) for index in by_user),
              f"an index that cannot keep up throttles writes to the table itself. {CONNECTION_WRITES} connection "
              f"writes/s of <= 1 KB need {INDEX_WRITE_UNITS} WCU on the index as on the table (`refarch calc dynamodb "
              f"--item-kb 1 --writes {CONNECTION_WRITES}`); on demand, each index write is one more write request.",
              found="on demand" if not provisioned else [index.get("ProvisionedThroughput") for index in by_user]),
        check("the existing by-session index stays", any(_key(index, "HASH") == "session_id" for index in indexes),
              "the send handler finds the other participant's connection through it.", found=shown),
    ]

