"""prod networking: a VNet for the function app's outbound traffic and private endpoints with their DNS zones."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network, privatedns

from .common import Placement


@dataclass(frozen=True, kw_only=True)
class PrivateNetworkArgs:
    placement: Placement
    vnet_name: str
    address_space: str
    function_subnet: str
    private_endpoint_subnet: str


class PrivateNetwork(pulumi.ComponentResource):
    def __init__(self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("refarch:azure:PrivateNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        place = args.placement
        self.vnet = network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=args.vnet_name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
            tags=dict(place.tags),
            opts=child,
        )
        self.function_subnet = network.Subnet(
            f"{name}-functions",
            subnet_name="functions",
            virtual_network_name=self.vnet.name,
            resource_group_name=place.resource_group_name,
            address_prefix=args.function_subnet,
            # Flex Consumption integrates through a subnet delegated to Container Apps environments.
            delegations=[network.DelegationArgs(name="flex-consumption", service_name="Microsoft.App/environments")],
            # The deployment account's firewall admits this subnet: the app reads its package over the Azure backbone
            # without needing internet egress from the VNet.
            service_endpoints=[network.ServiceEndpointPropertiesFormatArgs(service="Microsoft.Storage")],
            opts=child,
        )
        self.private_endpoint_subnet = network.Subnet(
            f"{name}-private-endpoints",
            subnet_name="private-endpoints",
            virtual_network_name=self.vnet.name,
            resource_group_name=place.resource_group_name,
            address_prefix=args.private_endpoint_subnet,
            private_endpoint_network_policies=network.VirtualNetworkPrivateEndpointNetworkPolicies.DISABLED,
            # Azure rejects concurrent changes to subnets of one VNet, so they are created one after the other.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.function_subnet]),
        )
        self.register_outputs({"vnet_id": self.vnet.id, "function_subnet_id": self.function_subnet.id})


@dataclass(frozen=True, kw_only=True)
class PrivateLinkArgs:
    placement: Placement
    target_id: pulumi.Input[str]
    group_id: str
    dns_zone: str
    subnet_id: pulumi.Input[str]
    vnet_id: pulumi.Input[str]


class PrivateLink(pulumi.ComponentResource):
    """A private endpoint for one sub-resource (e.g. blob) plus the private DNS zone that resolves its name to it."""

    def __init__(self, name: str, args: PrivateLinkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("refarch:azure:PrivateLink", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        place = args.placement
        self.zone = privatedns.PrivateZone(
            f"{name}-zone",
            private_zone_name=args.dns_zone,
            resource_group_name=place.resource_group_name,
            location="global",
            tags=dict(place.tags),
            opts=child,
        )
        self.zone_link = privatedns.VirtualNetworkLink(
            f"{name}-zone-link",
            private_zone_name=self.zone.name,
            resource_group_name=place.resource_group_name,
            location="global",
            virtual_network=privatedns.SubResourceArgs(id=args.vnet_id),
            registration_enabled=False,
            tags=dict(place.tags),
            opts=child,
        )
        self.endpoint = network.PrivateEndpoint(
            f"{name}-endpoint",
            resource_group_name=place.resource_group_name,
            location=place.location,
            subnet=network.SubnetArgs(id=args.subnet_id),
            private_link_service_connections=[
                network.PrivateLinkServiceConnectionArgs(
                    name=f"{name}-{args.group_id}", private_link_service_id=args.target_id, group_ids=[args.group_id]
                )
            ],
            tags=dict(place.tags),
            opts=child,
        )
        self.dns_zone_group = network.PrivateDnsZoneGroup(
            f"{name}-dns",
            private_endpoint_name=self.endpoint.name,
            resource_group_name=place.resource_group_name,
            private_dns_zone_group_name="default",
            private_dns_zone_configs=[
                network.PrivateDnsZoneConfigArgs(name=args.group_id, private_dns_zone_id=self.zone.id)
            ],
            opts=child,
        )
        self.register_outputs({"endpoint_id": self.endpoint.id})
