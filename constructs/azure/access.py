"""Role assignments that let one identity (the function app's) reach the data plane it needs, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, cosmosdb

from .common import COSMOS_DATA_CONTRIBUTOR, role_definition_id


@dataclass(frozen=True, kw_only=True)
class AzureRoleGrant:
    """An Azure RBAC role on one scope, e.g. Storage Blob Data Owner on the storage account."""

    name: str
    role: str
    scope: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class IdentityAccessArgs:
    principal_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    grants: tuple[AzureRoleGrant, ...]
    cosmos_account_id: pulumi.Input[str]
    cosmos_account_name: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]


class IdentityAccess(pulumi.ComponentResource):
    def __init__(self, name: str, args: IdentityAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("refarch:azure:IdentityAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role_assignments = [
            authorization.RoleAssignment(
                f"{name}-{grant.name}",
                principal_id=args.principal_id,
                # Declaring the type skips the directory lookup that fails while a new identity replicates.
                principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
                role_definition_id=role_definition_id(args.subscription_id, grant.role),
                scope=grant.scope,
                opts=child,
            )
            for grant in args.grants
        ]
        self.cosmos_role_assignment = cosmosdb.SqlResourceSqlRoleAssignment(
            f"{name}-cosmos-data-contributor",
            account_name=args.cosmos_account_name,
            resource_group_name=args.resource_group_name,
            principal_id=args.principal_id,
            role_definition_id=pulumi.Output.concat(
                args.cosmos_account_id, "/sqlRoleDefinitions/", COSMOS_DATA_CONTRIBUTOR
            ),
            scope=args.cosmos_account_id,
            opts=child,
        )
        self.register_outputs({"cosmos_role_assignment_id": self.cosmos_role_assignment.id})
