"""Which config changes a deployed Selfnest environment can take as an in-place CloudFormation update.

Variants are every supported combination of environment x DR tier x one lab's config knob (read from the lab's
reference solution, so a new lab is covered without editing a list). Replacement rules come from the CloudFormation
resource schemas that cfn-lint ships (`createOnlyProperties`, `conditionalCreateOnlyProperties`), not from a list of
ours.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER  # type: ignore[import-untyped]
from refarch.labs.catalog import LABS
from refarch.stacks.selfnest.config import (
    CONFIG_DIR,
    DR_TIERS,
    ConfigError,
    SelfnestSettings,
    available_environments,
    load_settings,
)

Template = dict[str, Any]
# Deletion policies that keep a resource's data when CloudFormation lets go of it.
KEEPING_POLICIES = {"Retain", "RetainExceptOnCreate", "Snapshot"}
_REMOVED = object()   # a knob that deletes a config key


@dataclass(frozen=True)
class Variant:
    environment: str
    tier: str
    knob: str | None          # the lab whose config change is applied, or None for the file as shipped

    @property
    def name(self) -> str:
        return f"{self.environment}:{self.tier}" + (f"+lab{self.knob}" if self.knob else "")


def _leaves(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*prefix, str(key)))
    else:
        yield prefix, node


def _config_change(before: dict[str, Any], after: dict[str, Any]) -> dict[tuple[str, ...], Any]:
    old, new = dict(_leaves(before)), dict(_leaves(after))
    return {**{path: value for path, value in new.items() if old.get(path, _REMOVED) != value},
            **{path: _REMOVED for path in old if path not in new}}


@cache
def lab_knobs() -> dict[str, dict[tuple[str, ...], Any]]:
    """Lab number -> the config change its reference solution makes (key path -> new value), for labs that change
    config. The solution's config hunks are applied to a copy of config/ with `git apply`."""
    knobs: dict[str, dict[tuple[str, ...], Any]] = {}
    for number, lab in LABS.items():
        with tempfile.TemporaryDirectory(prefix="refarch-knob-") as scratch:
            shutil.copytree(CONFIG_DIR, Path(scratch) / "config")
            subprocess.run(["git", "apply", "--include=config/*", str(lab.solution)], cwd=scratch, check=True,
                           capture_output=True)
            change: dict[tuple[str, ...], Any] = {}
            for path in sorted(CONFIG_DIR.glob("*.yaml")):
                change.update(_config_change(yaml.safe_load(path.read_text(encoding="utf-8")),
                                             yaml.safe_load((Path(scratch) / "config" / path.name).read_text(
                                                 encoding="utf-8"))))
        if change:
            knobs[number] = change
    return knobs


def _with_change(raw: dict[str, Any], change: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(raw))   # a deep copy
    for path, value in change.items():
        node = config
        for part in path[:-1]:
            node = node.setdefault(part, {})
        if value is _REMOVED:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return config


def variant_settings(variant: Variant, config_dir: Path) -> SelfnestSettings:
    """The variant's settings, validated like config/<env>.yaml; its config file is written under `config_dir`."""
    raw = yaml.safe_load((CONFIG_DIR / f"{variant.environment}.yaml").read_text(encoding="utf-8"))
    if variant.knob is not None:
        raw = _with_change(raw, lab_knobs()[variant.knob])
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / f"{variant.environment}.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return load_settings(variant.environment, config_dir=config_dir, dr_tier=variant.tier)


@cache
def supported_variants() -> tuple[Variant, ...]:
    """Every environment x DR tier x (no knob | one lab's knob) that config accepts, without duplicates."""
    found: dict[str, Variant] = {}
    with tempfile.TemporaryDirectory(prefix="refarch-variants-") as scratch:
        for environment in available_environments():
            for tier in DR_TIERS:
                for knob in (None, *lab_knobs()):
                    variant = Variant(environment, tier, knob)
                    try:
                        settings = variant_settings(variant, Path(scratch) / variant.name)
                    except ConfigError:
                        continue   # a combination config refuses (dev has no DR region for pilot light)
                    found.setdefault(settings.model_dump_json(), variant)
    return tuple(found.values())


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
