"""Lab 10 — Functions identity-based connections: a blob connection for journal exports, with no key."""

from __future__ import annotations

from typing import Any

from refarch.policies.rules import CREDENTIAL_MARKERS, DEPLOYMENT_PACKAGE, PURPOSE_TAG, violations
from refarch.stacks.babybloom import offline

from .grading import Check, Lab, check

WEB_APP = "azure-native:web:WebApp"
STORAGE = "azure-native:storage:StorageAccount"
ROLE = "azure-native:authorization:RoleAssignment"
CONNECTION = "EXPORTS"
BLOB_ROLES = {"b7e6dc6d-f1e8-4753-8033-0f276bb0955b",   # Storage Blob Data Owner
              "ba92f5b4-2d11-453d-a403-e96b0029c9fe"}   # Storage Blob Data Contributor


def grade() -> list[Check]:
    resources = offline.plan("dev")
    [app] = [item for item in resources if item.type == WEB_APP]
    # The Functions host's account (the other one holds only the deployment package).
    [storage] = [item for item in resources if item.type == STORAGE
                 and item.inputs.get("tags", {}).get(PURPOSE_TAG) != DEPLOYMENT_PACKAGE]
    settings: dict[str, Any] = {item["name"]: item["value"] for item in app.inputs["siteConfig"]["appSettings"]}
    principal = app.outputs["identity"]["principalId"]
    blob_grants = [item.inputs for item in resources if item.type == ROLE
                   and item.inputs["principalId"] == principal
                   and str(item.inputs["roleDefinitionId"]).rsplit("/", 1)[-1] in BLOB_ROLES
                   and item.inputs["scope"] == storage.outputs["id"]]
    found = [(item.name, message) for item in resources for _, message in violations(item.type, item.inputs)]
    return [
        check(f"{CONNECTION}__blobServiceUri names the storage account's blob endpoint",
              settings.get(f"{CONNECTION}__blobServiceUri") == storage.outputs["primaryEndpoints"]["blob"],
              f"an identity-based connection is a setting prefix plus `__blobServiceUri` (blob triggers and "
              f"bindings) — the app setting {CONNECTION} with a connection string is the key-based form."),
        check(f"{CONNECTION}__credential is managedidentity",
              settings.get(f"{CONNECTION}__credential") == "managedidentity",
              "tells the Functions host to authenticate with the app's managed identity."),
        check("no key-based form of the connection, no key or SAS in any setting",
              CONNECTION not in settings and not any(
                  marker in str(value) for value in settings.values() for marker in CREDENTIAL_MARKERS),
              "with shared-key access disabled on the account a key would not work anyway: that is the point."),
        check("shared-key access stays disabled on the storage account",
              storage.inputs.get("allowSharedKeyAccess") is False,
              "disabling keys turns 'no keys' from a convention into something Azure enforces."),
        check("the app's identity holds a Storage Blob Data role on the account", bool(blob_grants),
              "identity-based connections need an RBAC data role; management roles (Contributor) do not read blobs."),
        check("every CrossGuard policy passes on the plan", not found,
              f"policy findings: {found[:3]}"),
    ]


LAB = Lab(number="10", slug="functions-identity-connections", title="Functions identity-based connections (no keys)",
          exam="AZ-204: Implement Azure security; Connect to and consume Azure services", grade=grade)
