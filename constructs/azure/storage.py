"""The function app's own storage account: identity-only (no shared keys), private blobs, TLS 1.2, HTTPS only."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import storage

from .common import Placement


@dataclass(frozen=True, kw_only=True)
class FunctionStorageArgs:
    placement: Placement
    # Logical name; the provider appends a random suffix because account names are global.
    account_name_prefix: str
    sku: str
    deployment_container: str
    queues: tuple[str, ...]
    private: bool


class FunctionStorage(pulumi.ComponentResource):
    def __init__(self, name: str, args: FunctionStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("refarch:azure:FunctionStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        place = args.placement
        self.account = storage.StorageAccount(
            args.account_name_prefix,
            resource_group_name=place.resource_group_name,
            location=place.location,
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=args.sku),
            enable_https_traffic_only=True,
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            allow_blob_public_access=False,
            # Keys and SAS tokens signed with them stop working: every caller, the Functions host included, uses
            # Entra ID. The portal follows suit through default_to_o_auth_authentication.
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            public_network_access=(
                storage.PublicNetworkAccess.DISABLED if args.private else storage.PublicNetworkAccess.ENABLED
            ),
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action=storage.DefaultAction.DENY if args.private else storage.DefaultAction.ALLOW,
                bypass=storage.Bypass.AZURE_SERVICES,
            ),
            tags=dict(place.tags),
            opts=child,
        )
        self.deployment_container = storage.BlobContainer(
            f"{name}-{args.deployment_container}",
            container_name=args.deployment_container,
            account_name=self.account.name,
            resource_group_name=place.resource_group_name,
            public_access=storage.PublicAccess.NONE,
            opts=child,
        )
        self.queues = [
            storage.Queue(
                f"{name}-{queue}",
                queue_name=queue,
                account_name=self.account.name,
                resource_group_name=place.resource_group_name,
                opts=child,
            )
            for queue in args.queues
        ]
        endpoints = self.account.primary_endpoints
        self.blob_endpoint = endpoints.apply(lambda found: found.blob)
        self.queue_endpoint = endpoints.apply(lambda found: found.queue)
        self.deployment_container_url = pulumi.Output.concat(self.blob_endpoint, args.deployment_container)
        self.register_outputs({"account_id": self.account.id, "blob_endpoint": self.blob_endpoint})
