"""Run the BabyBloom program without the Pulumi CLI or Azure: Pulumi mocks plus a record of every registration.

The plan tool and the tests both come through here, so what `make plan-azure` prints is what the tests assert on.
Outputs that Azure would compute (ids, endpoints, the function app's principal id...) are filled in
deterministically, each derived from the resource it belongs to, so wiring mistakes show up as mismatches.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from .config import PROJECT, PROJECT_DIR, read_stack_file

SUBSCRIPTION_ID = "00000000-0000-0000-0000-00000000aaaa"
TENANT_ID = "00000000-0000-0000-0000-00000000bbbb"
CLIENT_CONFIG_TOKEN = "azure-native:authorization:getClientConfig"  # noqa: S105 - a function token, not a secret
DYNAMIC_RESOURCE = "pulumi-python:dynamic:Resource"
# The pickled provider Pulumi sends with every dynamic resource: machinery, not a setting to review.
DYNAMIC_PROVIDER_INPUT = "__provider"

# The input that carries a resource's physical name; absent means the provider auto-names it (logical name + suffix).
NAME_INPUTS = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:operationalinsights:Workspace": "workspaceName",
    "azure-native:applicationinsights:Component": "resourceName",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:storage:Blob": "blobName",
    "azure-native:storage:Queue": "queueName",
    "azure-native:cosmosdb:DatabaseAccount": "accountName",
    "azure-native:cosmosdb:SqlResourceSqlDatabase": "databaseName",
    "azure-native:cosmosdb:SqlResourceSqlContainer": "containerName",
    "azure-native:cosmosdb:SqlResourceSqlRoleAssignment": "roleAssignmentId",
    "azure-native:keyvault:Vault": "vaultName",
    "azure-native:web:AppServicePlan": "name",
    "azure-native:web:WebApp": "name",
    "azure-native:network:VirtualNetwork": "virtualNetworkName",
    "azure-native:network:Subnet": "subnetName",
    "azure-native:network:PrivateEndpoint": "privateEndpointName",
    "azure-native:network:PrivateDnsZoneGroup": "privateDnsZoneGroupName",
    "azure-native:privatedns:PrivateZone": "privateZoneName",
    "azure-native:privatedns:VirtualNetworkLink": "virtualNetworkLinkName",
    "azure-native:authorization:RoleAssignment": "roleAssignmentName",
}


@dataclass(frozen=True)
class PlannedResource:
    """One registration: what `pulumi preview` would list, with the inputs the provider would receive."""

    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    # Names of the resources this one waits for (depends_on, and components' children through them).
    depends_on: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "parent": self.parent, "inputs": self.inputs}


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _guid(*parts: str) -> str:
    return str(uuid.UUID(_digest(*parts)[:32]))


# Who runs `pulumi up` (getClientConfig), offline.
CLIENT_CONFIG = {
    "clientId": _guid("client"),
    "objectId": _guid("deployer"),
    "subscriptionId": SUBSCRIPTION_ID,
    "tenantId": TENANT_ID,
}


class AzureMocks(pulumi.runtime.Mocks):
    """Answers like Azure would, from the inputs alone."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        inputs: dict[str, Any] = dict(args.inputs)
        if not args.custom:
            return None, {}
        physical = inputs.get(NAME_INPUTS.get(args.typ, ""), f"{args.name}{_digest(args.typ, args.name)[:8]}")
        group = inputs.get("resourceGroupName", physical)
        module, kind = args.typ.split(":")[1:]
        resource_id = (
            f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{physical}"
            if args.typ == "azure-native:resources:ResourceGroup"
            else f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}/providers/{module}/{kind}/{physical}"
        )
        state = {**inputs, "name": physical, "id": resource_id, **_computed(args.typ, physical, inputs)}
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        if args.token == CLIENT_CONFIG_TOKEN:
            return dict(CLIENT_CONFIG), []
        raise NotImplementedError(f"no offline answer for {args.token}: add one to {__name__}.AzureMocks.call")


def _computed(typ: str, physical: str, inputs: dict[str, Any]) -> dict[str, Any]:
    if typ == "azure-native:storage:StorageAccount":
        endpoints = {kind: f"https://{physical}.{kind}.core.windows.net/" for kind in ("blob", "queue")}
        return {"primaryEndpoints": endpoints}
    if typ == "azure-native:cosmosdb:DatabaseAccount":
        return {"documentEndpoint": f"https://{physical}.documents.azure.com:443/"}
    if typ == "azure-native:keyvault:Vault":
        return {"properties": {**inputs.get("properties", {}), "vaultUri": f"https://{physical}.vault.azure.net/"}}
    if typ == "azure-native:applicationinsights:Component":
        # Not a credential: with local auth disabled the key only names the component; ingestion needs a token.
        key = _guid(typ, physical)
        location = inputs.get("location", "")
        return {
            "instrumentationKey": key,
            "connectionString": f"InstrumentationKey={key};IngestionEndpoint=https://{location}.in.applicationinsights.azure.com/",
        }
    if typ == DYNAMIC_RESOURCE and "container_url" in inputs:
        return {"url": f"{inputs['container_url'].rstrip('/')}/{inputs['blob_name']}"}
    if typ == "azure-native:web:WebApp":
        principal = _guid(typ, physical, "principal")
        identity = {**inputs.get("identity", {}), "principalId": principal, "tenantId": TENANT_ID}
        return {"identity": identity, "defaultHostName": f"{physical}.azurewebsites.net"}
    return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock engine, keeping each registration's type, name, parent and inputs in order."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.records: list[PlannedResource] = []
        self._names: dict[str, str] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        self._names[response.urn] = request.name
        registered = self.resources.get(response.urn)
        self.records.append(
            PlannedResource(
                type=request.type,
                name=request.name,
                parent=self._names.get(request.parent) if request.parent else None,
                custom=bool(request.custom),
                inputs=_plain(_without_provider(dict(rpc.deserialize_properties(request.object))))
                if request.type != STACK_TYPE else {},
                outputs=_plain(dict(registered.state)) if registered is not None else {},
                depends_on=tuple(self._names.get(urn, urn) for urn in request.dependencies),
            )
        )
        return response


STACK_TYPE = "pulumi:pulumi:Stack"


def _without_provider(inputs: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in inputs.items() if key != DYNAMIC_PROVIDER_INPUT}


def _plain(value: Any) -> Any:
    """Numbers cross the Pulumi wire as floats; show 1000 as 1000, the way it was written and Azure reads it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, pulumi.FileAsset):
        # What a reviewer (and a test) needs: which file would be uploaded.
        return {"fileAsset": str(value.path)}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def use_stack(stack: str, project_dir: Path = PROJECT_DIR) -> RecordingMonitor:
    """Point the Pulumi runtime at mocks for `stack` with the config of Pulumi.<stack>.yaml (ConfigError if bad)."""
    config = read_stack_file(stack, project_dir)
    pulumi.runtime.set_all_config(config)
    mocks = AzureMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    return monitor


def plan(stack: str, project_dir: Path = PROJECT_DIR) -> list[PlannedResource]:
    """Run the program for `stack` under mocks; a bad config raises ConfigError or (from the program) RunError."""
    monitor = use_stack(stack, project_dir)
    from .program import run  # only after the mocks are in place, as Pulumi's testing guide requires

    # pulumi.runtime.test runs the program and waits until every registration (and apply) has finished.
    run_to_completion = cast(Callable[[Callable[[], None]], Callable[[], None]], pulumi.runtime.test)(run)
    run_to_completion()
    return list(monitor.records)
