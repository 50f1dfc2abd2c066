"""Cosmos DB for NoSQL reachable only with Entra ID: Session consistency, continuous backup, one database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
from pulumi_azure_native import cosmosdb

from .common import Placement


@dataclass(frozen=True, kw_only=True)
class ContainerSpec:
    """A container and its partition key; `sub_keys` make it hierarchical (up to three levels: /userId, then /date)."""

    name: str
    partition_key: str
    sub_keys: tuple[str, ...] = ()

    @property
    def partition_paths(self) -> list[str]:
        return [self.partition_key, *self.sub_keys]


@dataclass(frozen=True, kw_only=True)
class CosmosStoreArgs:
    placement: Placement
    account_name_prefix: str
    database: str
    containers: tuple[ContainerSpec, ...]
    capacity_mode: Literal["serverless", "autoscale"]
    # Shared by all containers of the database: one autoscale budget is cheaper than one per container.
    autoscale_max_throughput: int | None
    backup_tier: str
    zone_redundant: bool
    private: bool


class CosmosStore(pulumi.ComponentResource):
    def __init__(self, name: str, args: CosmosStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("refarch:azure:CosmosStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        place = args.placement
        serverless = args.capacity_mode == "serverless"
        self.account = cosmosdb.DatabaseAccount(
            args.account_name_prefix,
            resource_group_name=place.resource_group_name,
            location=place.location,
            kind=cosmosdb.DatabaseAccountKind.GLOBAL_DOCUMENT_DB,
            database_account_offer_type=cosmosdb.DatabaseAccountOfferType.STANDARD,
            locations=[
                cosmosdb.LocationArgs(
                    location_name=place.location, failover_priority=0, is_zone_redundant=args.zone_redundant
                )
            ],
            consistency_policy=cosmosdb.ConsistencyPolicyArgs(
                default_consistency_level=cosmosdb.DefaultConsistencyLevel.SESSION
            ),
            capabilities=[cosmosdb.CapabilityArgs(name="EnableServerless")] if serverless else [],
            # Account keys are refused by the data plane, and management writes must go through ARM (RBAC too).
            disable_local_auth=True,
            disable_key_based_metadata_write_access=True,
            minimal_tls_version=cosmosdb.MinimalTlsVersion.TLS12,
            backup_policy=cosmosdb.ContinuousModeBackupPolicyArgs(
                type="Continuous",
                continuous_mode_properties=cosmosdb.ContinuousModePropertiesArgs(tier=args.backup_tier),
            ),
            public_network_access=(
                cosmosdb.PublicNetworkAccess.DISABLED if args.private else cosmosdb.PublicNetworkAccess.ENABLED
            ),
            tags=dict(place.tags),
            opts=child,
        )
        self.database = cosmosdb.SqlResourceSqlDatabase(
            f"{name}-{args.database}",
            account_name=self.account.name,
            resource_group_name=place.resource_group_name,
            database_name=args.database,
            resource=cosmosdb.SqlDatabaseResourceArgs(id=args.database),
            options=(
                None
                if args.autoscale_max_throughput is None
                else cosmosdb.CreateUpdateOptionsArgs(
                    autoscale_settings=cosmosdb.AutoscaleSettingsArgs(max_throughput=args.autoscale_max_throughput)
                )
            ),
            tags=dict(place.tags),   # ARM takes tags on SQL databases and containers too (at most 15)
            opts=child,
        )
        self.containers = {
            spec.name: cosmosdb.SqlResourceSqlContainer(
                f"{name}-{spec.name}",
                account_name=self.account.name,
                resource_group_name=place.resource_group_name,
                database_name=self.database.name,
                container_name=spec.name,
                resource=cosmosdb.SqlContainerResourceArgs(
                    id=spec.name,
                    partition_key=cosmosdb.ContainerPartitionKeyArgs(
                        paths=spec.partition_paths, version=2,
                        kind=cosmosdb.PartitionKind.HASH if len(spec.partition_paths) == 1
                        else cosmosdb.PartitionKind.MULTI_HASH
                    ),
                ),
                tags=dict(place.tags),
                opts=child,
            )
            for spec in args.containers
        }
        self.endpoint = self.account.document_endpoint
        self.register_outputs({"account_id": self.account.id, "endpoint": self.endpoint})
