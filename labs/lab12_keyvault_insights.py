"""Lab 12 — secrets and observability without keys: a Key Vault reference for a third-party API key, read with the
app's managed identity, and Application Insights telemetry sent with Entra ID authentication.

Both documented reference forms are accepted (`SecretUri=...` and `VaultName=...;SecretName=...`), and the role may
be granted on the vault or on the secret alone (narrower is better).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from refarch.policies.rules import CREDENTIAL_MARKERS, violations
from refarch.stacks.babybloom import offline

from .grading import Check, check

WEB_APP = "azure-native:web:WebApp"
VAULT = "azure-native:keyvault:Vault"
INSIGHTS = "azure-native:applicationinsights:Component"
ROLE = "azure-native:authorization:RoleAssignment"
SETTING = "PUSH_API_KEY"
SECRET = "push-api-key"  # noqa: S105 - the secret's name in the vault, not a value
SECRET_READERS = {"4633458b-17de-408a-b874-0445c86b69e6",   # Key Vault Secrets User
                  "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"}   # Key Vault Secrets Officer
METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"   # Monitoring Metrics Publisher
REFERENCE = re.compile(
    r"^@Microsoft\.KeyVault\((?:SecretUri=https://(?P<host>[^/]+)/secrets/(?P<secret>[^/;)]+)(?:/(?P<version>[^/;)]*))?"
    r"|VaultName=(?P<vault>[^;)]+);SecretName=(?P<name>[^;)]+)(?:;SecretVersion=(?P<pinned>[^;)]+))?)\)$")


def _role(item: Any) -> str:
    return str(item.inputs["roleDefinitionId"]).rsplit("/", 1)[-1]


def grade(root: Path) -> list[Check]:
    resources = offline.plan("dev", root)
    [app] = [item for item in resources if item.type == WEB_APP]
    [vault] = [item for item in resources if item.type == VAULT]
    [insights] = [item for item in resources if item.type == INSIGHTS]
    settings: dict[str, Any] = {item["name"]: item["value"] for item in app.inputs["siteConfig"]["appSettings"]}
    principal = app.outputs["identity"]["principalId"]
    grants = [item for item in resources if item.type == ROLE and item.inputs["principalId"] == principal]
    value = str(settings.get(SETTING, ""))
    reference = REFERENCE.match(value)
    parts = reference.groupdict() if reference else {}
    vault_host = str(vault.outputs["properties"]["vaultUri"]).removeprefix("https://").rstrip("/")
    names_this_vault = bool(reference) and (parts.get("host") == vault_host or parts.get("vault") == vault.outputs[
        "name"]) and SECRET in {parts.get("secret"), parts.get("name")}
    readers = [item for item in grants if _role(item) in SECRET_READERS
               and str(item.inputs["scope"]).startswith(str(vault.outputs["id"]))]
    publishers = [item for item in grants if _role(item) == METRICS_PUBLISHER
                  and item.inputs["scope"] == insights.outputs["id"]]
    found = [(item.name, message) for item in resources for _, message in violations(item.type, item.inputs)]
    return [
        check(f"{SETTING} is a Key Vault reference, not a value", bool(reference),
              "an app setting `@Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>/)` (or "
              "`VaultName=...;SecretName=...`) is resolved by the platform with the app's managed identity; the code "
              "reads an ordinary environment variable and the secret never sits in configuration.",
              found=f"{SETTING}={value!r}" if value else f"no {SETTING} setting"),
        check(f"the reference names the `{SECRET}` secret in this stack's vault", names_this_vault,
              "build it from the vault's own output (vault_uri or its name), not a hand-typed host: a reference to "
              "another vault fails at runtime.", found=parts or "no reference"),
        check("the reference follows rotation (no version pinned)",
              bool(reference) and not parts.get("version") and not parts.get("pinned"),
              "without a version the app picks up a rotated secret within a day; a pinned version stays old until "
              "someone edits the setting.", found=parts.get("version") or parts.get("pinned") or "no version"),
        check("the app's identity may read secrets (Key Vault Secrets User on the vault or the secret)",
              bool(readers) and vault.inputs["properties"].get("enableRbacAuthorization") is True,
              "an RBAC vault authorizes data-plane reads by role: Key Vault Secrets User, scoped to the vault or "
              "one secret. Access policies are the legacy model.", found=f"{len(readers)} grants"),
        check("telemetry uses Entra ID: local auth off, AAD authentication string, Metrics Publisher role",
              insights.inputs.get("disableLocalAuth") is True
              and str(settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "")).startswith("Authorization=AAD")
              and bool(publishers),
              "with disableLocalAuth the instrumentation key alone is refused: the app authenticates with "
              "APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD and needs Monitoring Metrics Publisher "
              "on the Application Insights resource.",
              found=f"disableLocalAuth {insights.inputs.get('disableLocalAuth')}, "
                    f"{settings.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING')!r}, "
                    f"{len(publishers)} publisher grants"),
        check("no key or secret value in any setting, every CrossGuard policy passes",
              not found and not any(marker in str(item) for item in settings.values()
                                    for marker in CREDENTIAL_MARKERS),
              "keys in settings are what Key Vault references and managed identities replace.",
              found=found[:3] or "a credential marker in a setting"),
    ]

