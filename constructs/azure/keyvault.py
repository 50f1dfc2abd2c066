"""Key Vault for third-party secrets: Azure RBAC (no access policies), soft delete and purge protection."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, keyvault

from .common import KEY_VAULT_SECRETS_OFFICER, Placement, role_definition_id


@dataclass(frozen=True, kw_only=True)
class SecretVaultArgs:
    placement: Placement
    vault_name_prefix: str
    tenant_id: pulumi.Input[str]
    soft_delete_retention_days: int
    private: bool
    # Who may write secrets: Entra object ids granted Key Vault Secrets Officer on this vault.
    secret_officers: tuple[str, ...] = ()
    subscription_id: pulumi.Input[str]


class SecretVault(pulumi.ComponentResource):
    def __init__(self, name: str, args: SecretVaultArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("refarch:azure:SecretVault", name, None, opts)
        place = args.placement
        self.vault = keyvault.Vault(
            args.vault_name_prefix,
            resource_group_name=place.resource_group_name,
            location=place.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family=keyvault.SkuFamily.A, name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=args.soft_delete_retention_days,
                # Cannot be turned off again; a destroyed dev vault waits out its retention, unbilled, under its
                # random name, so it never blocks the next `pulumi up`.
                enable_purge_protection=True,
                public_network_access="disabled" if args.private else "enabled",
                network_acls=keyvault.NetworkRuleSetArgs(
                    default_action=(
                        keyvault.NetworkRuleAction.DENY if args.private else keyvault.NetworkRuleAction.ALLOW
                    ),
                    bypass=keyvault.NetworkRuleBypassOptions.AZURE_SERVICES,
                ),
            ),
            tags=dict(place.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.secret_officers = [
            authorization.RoleAssignment(
                f"{name}-secrets-officer-{officer}",
                principal_id=officer,
                role_definition_id=role_definition_id(args.subscription_id, KEY_VAULT_SECRETS_OFFICER),
                scope=self.vault.id,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for officer in args.secret_officers
        ]
        self.vault_uri = self.vault.properties.apply(lambda properties: properties.vault_uri)
        self.register_outputs({"vault_id": self.vault.id, "vault_uri": self.vault_uri})
