"""Lab 10 — Functions identity-based connections: a blob connection for journal exports, with no key.

What the Functions docs require, and no more: the blob service URI under the connection's prefix (`__serviceUri` or
`__blobServiceUri`), `__credential` only if set at all (the system-assigned identity is the default; "managedidentity"
plus `__clientId` selects a user-assigned one), and a Storage Blob Data role for the app's identity on the account or,
narrower, on a container of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from refarch.policies.rules import CREDENTIAL_MARKERS, violations
from refarch.stacks.babybloom import offline

from .grading import Check, check

WEB_APP = "azure-native:web:WebApp"
STORAGE = "azure-native:storage:StorageAccount"
ROLE = "azure-native:authorization:RoleAssignment"
CONNECTION = "EXPORTS"
BLOB_ROLES = {"b7e6dc6d-f1e8-4753-8033-0f276bb0955b",   # Storage Blob Data Owner
              "ba92f5b4-2d11-453d-a403-e96b0029c9fe"}   # Storage Blob Data Contributor


URI_SUFFIXES = ("__blobServiceUri", "__serviceUri")


def grade(root: Path) -> list[Check]:
    resources = offline.plan("dev", root)
    [app] = [item for item in resources if item.type == WEB_APP]
    settings: dict[str, Any] = {item["name"]: item["value"] for item in app.inputs["siteConfig"]["appSettings"]}
    # The app's own storage account (its host storage), not the deployment account the package is uploaded to.
    [storage] = [item for item in resources if item.type == STORAGE
                 and item.outputs.get("name") == settings.get("AzureWebJobsStorage__accountName")]
    principal = app.outputs["identity"]["principalId"]
    blob_grants = [item.inputs for item in resources if item.type == ROLE
                   and item.inputs["principalId"] == principal
                   and str(item.inputs["roleDefinitionId"]).rsplit("/", 1)[-1] in BLOB_ROLES
                   and (item.inputs["scope"] == storage.outputs["id"]
                        or str(item.inputs["scope"]).startswith(f"{storage.outputs['id']}/blobServices/"))]
    uris = {suffix: settings[f"{CONNECTION}{suffix}"] for suffix in URI_SUFFIXES if f"{CONNECTION}{suffix}" in settings}
    credential = settings.get(f"{CONNECTION}__credential")
    exports = {name: value for name, value in settings.items() if name.split("__")[0] == CONNECTION}
    found = [(item.name, message) for item in resources for _, message in violations(item.type, item.inputs)]
    return [
        check(f"{CONNECTION}__serviceUri (or __blobServiceUri) names the storage account's blob endpoint",
              bool(uris) and all(uri == storage.outputs["primaryEndpoints"]["blob"] for uri in uris.values()),
              f"an identity-based connection is a setting prefix plus `__serviceUri` / `__blobServiceUri` (blob "
              f"bindings; a blob trigger also needs the queue service) — the app setting {CONNECTION} with a "
              f"connection string is the key-based form.", found=exports or "no EXPORTS settings"),
        check(f"{CONNECTION}__credential, if set, is managedidentity", credential in {None, "managedidentity"},
              "the host uses the app's system-assigned identity by default; `managedidentity` (with __clientId for "
              "a user-assigned identity) is the only other value.", found=f"__credential {credential!r}"),
        check("no key-based form of the connection, no key or SAS in any setting",
              CONNECTION not in settings and not any(
                  marker in str(value) for value in settings.values() for marker in CREDENTIAL_MARKERS),
              "with shared-key access disabled on the account a key would not work anyway: that is the point.",
              found=[name for name, value in settings.items() if name == CONNECTION or any(
                  marker in str(value) for marker in CREDENTIAL_MARKERS)]),
        check("shared-key access stays disabled on the storage account",
              storage.inputs.get("allowSharedKeyAccess") is False,
              "disabling keys turns 'no keys' from a convention into something Azure enforces.",
              found=f"allowSharedKeyAccess {storage.inputs.get('allowSharedKeyAccess')}"),
        check("the app's identity holds a Storage Blob Data role on the account (or a container)", bool(blob_grants),
              "identity-based connections need an RBAC data role (Storage Blob Data Contributor or Owner to write); "
              "management roles (Contributor) do not read blobs.",
              found=f"{len(blob_grants)} Storage Blob Data grants to the app's identity"),
        check("every CrossGuard policy passes on the plan", not found,
              f"policy findings: {found[:3]}"),
    ]

