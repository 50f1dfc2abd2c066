"""A storage account for the function app: identity-only (no shared keys), private blobs, TLS 1.2, HTTPS only.

BabyBloom has two: the Functions host's own (leases, the reminders queue; private endpoints only in prod), and the
deployment account that holds nothing but the code package, so that `pulumi up` from outside the VNet can write it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import storage

from .common import Placement


@dataclass(frozen=True, kw_only=True)
class StorageFirewall:
    """The public endpoint, for these callers only: IP rules (the deployer) and VNet subnets (service endpoint)."""

    allowed_ip_ranges: tuple[str, ...]
    allowed_subnet_ids: tuple[pulumi.Input[str], ...]


@dataclass(frozen=True, kw_only=True)
class FunctionStorageArgs:
    placement: Placement
    # Logical name; the provider appends a random suffix because account names are global.
    account_name_prefix: str
    sku: str
    containers: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    # Public network access off (private endpoints only) ...
    private: bool
    # ... or, for a public account, who may reach it; None lets any network in (Entra ID still required).
    firewall: StorageFirewall | None = None


class FunctionStorage(pulumi.ComponentResource):
    def __init__(self, name: str, args: FunctionStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("refarch:azure:FunctionStorage", name, None, opts)
        if args.private and args.firewall is not None:
            raise ValueError("a private account has no public endpoint to put a firewall on")
        child = pulumi.ResourceOptions(parent=self)
        place = args.placement
        firewall = args.firewall
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
                default_action=(storage.DefaultAction.DENY if args.private or firewall is not None
                                else storage.DefaultAction.ALLOW),
                bypass=storage.Bypass.AZURE_SERVICES,
                ip_rules=[storage.IPRuleArgs(i_p_address_or_range=address)
                          for address in (firewall.allowed_ip_ranges if firewall else ())],
                virtual_network_rules=[storage.VirtualNetworkRuleArgs(virtual_network_resource_id=subnet)
                                       for subnet in (firewall.allowed_subnet_ids if firewall else ())],
            ),
            tags=dict(place.tags),
            opts=child,
        )
        self.containers = {
            container: storage.BlobContainer(
                f"{name}-{container}",
                container_name=container,
                account_name=self.account.name,
                resource_group_name=place.resource_group_name,
                public_access=storage.PublicAccess.NONE,
                opts=child,
            )
            for container in args.containers
        }
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
        self.register_outputs({"account_id": self.account.id, "blob_endpoint": self.blob_endpoint})

    def container_url(self, container: str) -> pulumi.Output[str]:
        return pulumi.Output.concat(self.blob_endpoint, self.containers[container].name)
