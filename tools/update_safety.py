"""Which template changes a deployed stack takes as an in-place CloudFormation update, for stateful resources.

A change set replaces a resource whose logical ID moves (CDK derives it from the construct path), whose type changes,
or whose create-only property changes; which properties are create-only is read from the CloudFormation resource
schemas that cfn-lint ships (`createOnlyProperties`, `conditionalCreateOnlyProperties`), not from a list of ours.
tests/infra/aws/test_updates.py compares config variants with it; lab 14 compares a learner's change with what is
deployed.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER  # type: ignore[import-untyped]

Template = dict[str, Any]
# Deletion policies that keep a resource's data when CloudFormation lets go of it.
KEEPING_POLICIES = {"Retain", "RetainExceptOnCreate", "Snapshot"}


# What holds data that an update must not lose: the database, tables, buckets, keys (data encrypted under a deleted
# key is gone), the user pool, backup vaults, log groups, secrets and queues. Which change replaces one of them is
# read from its schema, below.
STATEFUL_TYPES = frozenset({
    "AWS::RDS::DBInstance", "AWS::RDS::DBCluster", "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable",
    "AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Cognito::UserPool", "AWS::Backup::BackupVault", "AWS::Logs::LogGroup",
    "AWS::SecretsManager::Secret", "AWS::SQS::Queue", "AWS::EFS::FileSystem",
})


def kept_types(templates: list[Template]) -> set[str]:
    """Resource types the constructs keep on deletion (DeletionPolicy Retain/Snapshot) somewhere."""
    return {resource["Type"] for template in templates for resource in template["Resources"].values()
            if resource.get("DeletionPolicy") in KEEPING_POLICIES}


@cache
def replacing_properties(region: str, resource_type: str) -> tuple[str, ...]:
    """JSON pointers of the properties whose change replaces (or may replace) the resource, from the schema."""
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    return tuple(schema.get("createOnlyProperties", [])) + tuple(schema.get("conditionalCreateOnlyProperties", []))


def _at_pointer(properties: dict[str, Any], pointer: str) -> Any:
    """The value at `/properties/A/B` (`*` spans a list), or None where it is absent."""
    parts = pointer.split("/")[2:]

    def walk(node: Any, rest: list[str]) -> Any:
        if not rest:
            return node
        head, *tail = rest
        if head == "*":
            return [walk(item, tail) for item in node] if isinstance(node, list) else None
        return walk(node.get(head), tail) if isinstance(node, dict) else None

    return walk(properties, parts)


def physical_names(resource: dict[str, Any]) -> set[str]:
    """Physical names the resource is created with (TableName, BucketName, DBInstanceIdentifier, AliasName...), as
    JSON so names built with Fn::Join compare too; a reference to another resource of the template is not one."""
    return {json.dumps(value, sort_keys=True) for key, value in resource.get("Properties", {}).items()
            if (key.endswith("Name") or key.endswith("Identifier"))
            and (isinstance(value, str) or (isinstance(value, dict) and "Fn::Join" in value))}


def update_problems(before: dict[str, Template], after: dict[str, Template], *, regions: dict[str, str],
                    retain_data: bool, stateful: frozenset[str] = STATEFUL_TYPES) -> list[str]:
    """What deploying `after` over a deployed `before` would do to stateful resources that an update must not:
    change a resource's type, move it to another logical ID, change a property that replaces it, or delete a
    resource (with its data) that the environment keeps."""
    problems: list[str] = []
    for part in sorted(before.keys() & after.keys()):
        old, new = before[part]["Resources"], after[part]["Resources"]
        for logical_id, resource in sorted(old.items()):
            resource_type = resource["Type"]
            if resource_type not in stateful:
                continue
            where = f"{part}/{logical_id} ({resource_type})"
            if logical_id in new:
                if new[logical_id]["Type"] != resource_type:
                    problems.append(f"{where} becomes {new[logical_id]['Type']}: CloudFormation refuses a type "
                                    "change in place")
                    continue
                for pointer in replacing_properties(regions[part], resource_type):
                    was, now = (_at_pointer(r.get("Properties", {}), pointer) for r in (resource, new[logical_id]))
                    if was != now:
                        problems.append(f"{where} changes {pointer.removeprefix('/properties/')} "
                                        f"({was!r} -> {now!r}), which replaces it")
                continue
            names = physical_names(resource)
            moved = [other_id for other_id, other in new.items() if names & physical_names(other)
                     and other["Type"] in stateful and other_id not in old]
            if moved:
                problems.append(f"{where} moves to {', '.join(moved)}: a new resource would replace it")
            elif retain_data and resource.get("DeletionPolicy") not in KEEPING_POLICIES:
                problems.append(f"{where} is removed and deleted with its data (DeletionPolicy "
                                f"{resource.get('DeletionPolicy', 'Delete')})")
    return problems
