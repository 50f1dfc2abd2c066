"""What every BabyBloom component shares: where resources go, and how built-in roles are named."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

# Azure built-in role definition GUIDs (the same in every tenant).
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
# Cosmos DB data-plane roles live on the account, not in Azure RBAC; this is "Cosmos DB Built-in Data Contributor".
COSMOS_DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Resource group, region and tags that a component's resources all share."""

    resource_group_name: pulumi.Input[str]
    location: str
    tags: Mapping[str, str]


def role_definition_id(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "/subscriptions/", subscription_id, "/providers/Microsoft.Authorization/roleDefinitions/", role
    )
