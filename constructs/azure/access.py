"""Role assignments that let one identity (the function app's) reach the data plane it needs, and nothing else."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, cosmosdb

from .common import COSMOS_DATA_CONTRIBUTOR, role_definition_id

# Cosmos DB requires a GUID as a SQL role assignment's name; without one the provider sends the logical name and the
# create fails. uuid5 over what the assignment is makes the id the same on every run and every machine, and a new one
# exactly when the account, principal or role changes.
COSMOS_ROLE_ASSIGNMENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:refarch:babybloom:cosmos-sql-role-assignment")


def cosmos_role_assignment_id(account_id: str, principal_id: str, role_definition_id: str) -> str:
    """The deterministic GUID of one (account, principal, role) assignment; ARM ids compare case-insensitively."""
    key = "\n".join(part.lower() for part in (account_id, principal_id, role_definition_id))
    return str(uuid.uuid5(COSMOS_ROLE_ASSIGNMENT_NAMESPACE, key))


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
        cosmos_role = pulumi.Output.concat(args.cosmos_account_id, "/sqlRoleDefinitions/", COSMOS_DATA_CONTRIBUTOR)
        self.cosmos_role_assignment = cosmosdb.SqlResourceSqlRoleAssignment(
            f"{name}-cosmos-data-contributor",
            role_assignment_id=pulumi.Output.all(args.cosmos_account_id, args.principal_id, cosmos_role).apply(
                lambda parts: cosmos_role_assignment_id(*parts)),
            account_name=args.cosmos_account_name,
            resource_group_name=args.resource_group_name,
            principal_id=args.principal_id,
            role_definition_id=cosmos_role,
            scope=args.cosmos_account_id,
            # A new id means a new (account, principal, role): the old assignment goes first, so the two never
            # coexist (and a failed replacement leaves no orphan with rights).
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.register_outputs({"cosmos_role_assignment_id": self.cosmos_role_assignment.id})
