"""BabyBloom's offline plan: `python -m refarch.tools.plan_azure --stack dev`.

Runs the Pulumi program under mocks (no CLI, no Azure account), prints every resource that `pulumi up` would create
as a tree like `pulumi preview` with its key settings, and writes the plan to .plan/babybloom-<stack>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refarch.policies.rules import get_path

if TYPE_CHECKING:
    from refarch.stacks.babybloom.offline import PlannedResource

PLAN_DIR = Path(__file__).resolve().parents[1] / ".plan"

# What a reviewer wants to see per resource type without opening the JSON (dotted input paths).
KEY_SETTINGS: dict[str, tuple[str, ...]] = {
    "azure-native:resources:ResourceGroup": ("resourceGroupName", "location"),
    "azure-native:operationalinsights:Workspace": ("sku.name", "retentionInDays", "workspaceCapping.dailyQuotaGb"),
    "azure-native:applicationinsights:Component": ("ingestionMode", "disableLocalAuth"),
    "azure-native:storage:StorageAccount": (
        "sku.name", "allowSharedKeyAccess", "allowBlobPublicAccess", "minimumTlsVersion", "enableHttpsTrafficOnly",
        "publicNetworkAccess", "networkRuleSet.defaultAction", "networkRuleSet.ipRules",
    ),
    "azure-native:storage:BlobContainer": ("containerName", "publicAccess"),
    "azure-native:storage:Queue": ("queueName",),
    # The code package, uploaded with Entra ID by a dynamic provider (constructs/azure/blob_upload.py).
    "pulumi-python:dynamic:Resource": ("blob_name", "sha256"),
    "azure-native:cosmosdb:DatabaseAccount": (
        "capabilities", "consistencyPolicy.defaultConsistencyLevel", "disableLocalAuth", "minimalTlsVersion",
        "backupPolicy.continuousModeProperties.tier", "publicNetworkAccess", "locations",
    ),
    "azure-native:cosmosdb:SqlResourceSqlDatabase": ("databaseName", "options.autoscaleSettings.maxThroughput"),
    "azure-native:cosmosdb:SqlResourceSqlContainer": ("containerName", "resource.partitionKey.paths"),
    "azure-native:cosmosdb:SqlResourceSqlRoleAssignment": ("roleDefinitionId", "principalId", "scope"),
    "azure-native:keyvault:Vault": (
        "properties.enableRbacAuthorization", "properties.enableSoftDelete", "properties.softDeleteRetentionInDays",
        "properties.enablePurgeProtection", "properties.publicNetworkAccess",
    ),
    "azure-native:web:AppServicePlan": ("sku.name", "sku.tier"),
    "azure-native:web:WebApp": (
        "kind", "httpsOnly", "identity.type", "siteConfig.minTlsVersion",
        "functionAppConfig.runtime", "functionAppConfig.scaleAndConcurrency", "virtualNetworkSubnetId",
        "siteConfig.appSettings",
    ),
    "azure-native:web:WebAppFtpAllowed": ("allow",),
    "azure-native:web:WebAppScmAllowed": ("allow",),
    "azure-native:authorization:RoleAssignment": ("roleDefinitionId", "principalId", "scope"),
    "azure-native:network:VirtualNetwork": ("addressSpace.addressPrefixes",),
    "azure-native:network:Subnet": ("addressPrefix", "delegations"),
    "azure-native:network:PrivateEndpoint": ("privateLinkServiceConnections",),
    "azure-native:privatedns:PrivateZone": ("privateZoneName",),
}


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(prog="plan-azure", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default: dev)")
    parser.add_argument("--out", type=Path, default=PLAN_DIR, help="folder for babybloom-<stack>.json")
    parser.add_argument("--project-dir", type=Path, default=None, help="folder with the Pulumi.<stack>.yaml files")
    args = parser.parse_args(argv)

    # Imported here so the reported time covers loading Pulumi and the provider SDK, as a user waits for it.
    import pulumi
    from refarch.stacks.babybloom import offline
    from refarch.stacks.babybloom.config import PROJECT_DIR, ConfigError

    try:
        planned = offline.plan(args.stack, args.project_dir or PROJECT_DIR)
    except (ConfigError, pulumi.RunError) as error:
        print(f"plan-azure: {error}", file=sys.stderr)
        return 2
    ordered = tree_order(planned)
    print(f"Previewing update (babybloom-{args.stack}) offline: Pulumi mocks, nothing is sent to Azure\n")
    print(render(ordered))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"babybloom-{args.stack}.json"
    out.write_text(json.dumps([resource.as_json() for resource in ordered], indent=2, default=str) + "\n", "utf-8")
    azure = sum(1 for resource in ordered if resource.type.startswith("azure-native:"))
    others = len(ordered) - azure
    print(f"\nResources:\n    + {len(ordered)} to create ({azure} Azure resources, {others} components and the stack)")
    print(f"plan written to {_shown(out)} in {time.perf_counter() - started:.2f} s")
    return 0


def tree_order(planned: Sequence[PlannedResource]) -> list[PlannedResource]:
    """Parents before children, siblings by (type, name): stable output whatever order registrations finished in."""
    children: dict[str | None, list[PlannedResource]] = {}
    for resource in planned:
        children.setdefault(resource.parent, []).append(resource)
    ordered: list[PlannedResource] = []

    def visit(parent: str | None) -> None:
        for resource in sorted(children.get(parent, []), key=lambda found: (found.type, found.name)):
            ordered.append(resource)
            visit(resource.name)

    visit(None)
    return ordered


def render(ordered: Sequence[PlannedResource]) -> str:
    """The tree `pulumi preview` draws: ├─ / └─ per child, │ under ancestors that have later siblings."""
    last_child: dict[str | None, str] = {resource.parent: resource.name for resource in ordered}
    rails: dict[str, str] = {}  # what a resource's children draw for the levels above them
    lines = [f"     {'Type':<64} {'Name':<46} {'Parent':<16} Plan"]
    for resource in ordered:
        if resource.parent is None:
            label, rails[resource.name] = resource.type, ""
        else:
            above = rails.get(resource.parent, "")
            last = last_child[resource.parent] == resource.name
            label = f"{above}{'└─' if last else '├─'} {resource.type}"
            rails[resource.name] = above + ("   " if last else "│  ")
        lines.append(f" +   {label:<64} {resource.name:<46} {resource.parent or '':<16} create")
        settings = key_settings(resource)
        if settings:
            lines.append(f"     {rails[resource.name]}    {settings}")
    return "\n".join(lines)


def key_settings(resource: PlannedResource) -> str:
    shown = []
    for path in KEY_SETTINGS.get(resource.type, ()):
        value = get_path(resource.inputs, path)
        if value is not None:
            shown.append(f"{path.rsplit('.', 1)[-1]}={_compact(value)}")
    return " ".join(shown)


def _compact(value: Any) -> str:
    if isinstance(value, list) and value and all(_is_name_value(item) for item in value):
        return "[" + ", ".join(str(item["name"]) for item in value) + "]"  # app settings: the names say enough
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def _is_name_value(item: Any) -> bool:
    return isinstance(item, dict) and set(item) == {"name", "value"}


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
