"""BabyBloom's guardrails as pure functions over (resource type, inputs): the CrossGuard pack and the tests share them.

Inputs are the provider's property names (camelCase), exactly what CrossGuard passes as `args.props` and what the
offline plan records. A check returns a violation message, or None when the resource complies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

COSMOS_ACCOUNT = "azure-native:cosmosdb:DatabaseAccount"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
WEB_APP = "azure-native:web:WebApp"
KEY_VAULT = "azure-native:keyvault:Vault"
APP_AUTHENTICATION = "azure-native:web:WebAppAuthSettingsV2"
FTP_PUBLISHING = "azure-native:web:WebAppFtpAllowed"
SCM_PUBLISHING = "azure-native:web:WebAppScmAllowed"

# Environments (the `environment` tag every BabyBloom resource carries) whose data services must be private.
PRIVATE_ENVIRONMENTS = frozenset({"prod"})
# The one storage account that keeps a public endpoint in prod: it holds only the function app's code package, so
# that `pulumi up` can upload it from outside the VNet (writing still needs Entra ID and a role only the deployer has).
PURPOSE_TAG = "purpose"
DEPLOYMENT_PACKAGE = "deployment-package"
# Fragments that only appear in shared-key credentials (connection strings, SAS tokens, Cosmos keys).
CREDENTIAL_MARKERS = ("AccountKey=", "SharedAccessKey=", "SharedAccessSignature=", "sig=", "AccountEndpoint=")

# The site-config properties a Flex Consumption app may carry. Flex answers 400 "The following site configuration
# property (Site.SiteConfig.X) for Flex Consumption sites is invalid" to others: netFrameworkVersion (which the SDK's
# SiteConfigArgs adds by default), ftpsState, linuxFxVersion, alwaysOn... (Microsoft's "Flex Consumption plan
# deprecations"; pulumi-azure-native issue 4168). An allowlist, so a new SDK default is caught before Azure sees it.
FLEX_SITE_CONFIG = frozenset({
    "appSettings", "minTlsVersion", "scmMinTlsVersion", "minTlsCipherSuite", "http20Enabled", "cors",
    "ipSecurityRestrictions", "ipSecurityRestrictionsDefaultAction", "scmIpSecurityRestrictions",
    "scmIpSecurityRestrictionsDefaultAction", "scmIpSecurityRestrictionsUseMain",
})

Props = Mapping[str, Any]
Check = Callable[[Props], "str | None"]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    resource_types: frozenset[str]
    check: Check

    def applies_to(self, resource_type: str) -> bool:
        return resource_type in self.resource_types


def get_path(props: Props, path: str) -> Any:
    """The value at a dotted path such as "siteConfig.minTlsVersion", or None where any part is missing."""
    value: Any = props
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _require(path: str, expected: Any, why: str) -> Check:
    """A check that `path` is set to `expected` explicitly; an absent value means Azure's (weaker) default."""

    def check(props: Props) -> str | None:
        actual = get_path(props, path)
        return None if actual == expected else f"{path} must be {expected!r} ({why}); got {actual!r}"

    return check


def _require_one_of(path: str, allowed: tuple[str, ...], why: str) -> Check:
    def check(props: Props) -> str | None:
        actual = get_path(props, path)
        return None if actual in allowed else f"{path} must be one of {', '.join(allowed)} ({why}); got {actual!r}"

    return check


def _private_in_prod(props: Props) -> str | None:
    environment = get_path(props, "tags.environment")
    if environment is None:
        return "tags.environment is missing, so it cannot be told whether public network access must be off"
    if environment not in PRIVATE_ENVIRONMENTS:
        return None
    if get_path(props, f"tags.{PURPOSE_TAG}") == DEPLOYMENT_PACKAGE:
        return None  # the code package's account (see PURPOSE_TAG)
    # Key Vault nests the setting under properties and spells it in lower case.
    path = "properties.publicNetworkAccess" if get_path(props, "properties") is not None else "publicNetworkAccess"
    access = get_path(props, path)
    if str(access).lower() != "disabled":
        return f"{path} must be Disabled in {environment} (private endpoints only); got {access!r}"
    return None


def _managed_identity(props: Props) -> str | None:
    kind = str(get_path(props, "identity.type") or "")
    if "SystemAssigned" in kind or "UserAssigned" in kind:
        return None
    return f"identity.type must include SystemAssigned or UserAssigned (no secrets to reach data); got {kind or None!r}"


def _no_credentials_in_settings(props: Props) -> str | None:
    settings = get_path(props, "siteConfig.appSettings") or []
    connection_strings = get_path(props, "siteConfig.connectionStrings") or []
    if connection_strings:
        return "siteConfig.connectionStrings must be empty (use identity-based connections)"
    for setting in settings:
        value = str(setting.get("value", ""))
        if any(marker in value for marker in CREDENTIAL_MARKERS):
            return f"app setting {setting.get('name')} holds a key or SAS; use `<name>__accountName`-style identity"
    return None


def _requires_sign_in(props: Props) -> str | None:
    if get_path(props, "platform.enabled") is not True:
        return "platform.enabled must be true (otherwise any caller can forge X-MS-CLIENT-PRINCIPAL)"
    if get_path(props, "globalValidation.requireAuthentication") is not True:
        return "globalValidation.requireAuthentication must be true (anonymous requests would reach the functions)"
    action = get_path(props, "globalValidation.unauthenticatedClientAction")
    if action not in ("Return401", "Return403"):
        return f"globalValidation.unauthenticatedClientAction must be Return401 or Return403 for an API; got {action!r}"
    return None


def _flex_site_config(props: Props) -> str | None:
    if get_path(props, "functionAppConfig") is None:
        return None  # not a Flex Consumption app
    rejected = sorted(set(get_path(props, "siteConfig") or {}) - FLEX_SITE_CONFIG)
    if rejected:
        return (f"siteConfig.{', siteConfig.'.join(rejected)}: not accepted on Flex Consumption (Azure answers 400); "
                f"allowed: {', '.join(sorted(FLEX_SITE_CONFIG))}")
    return None


def _rbac_vault(props: Props) -> str | None:
    if get_path(props, "properties.enableRbacAuthorization") is not True:
        return "properties.enableRbacAuthorization must be True (Azure RBAC, not vault access policies)"
    if get_path(props, "properties.accessPolicies"):
        return "properties.accessPolicies must be empty when RBAC authorizes access"
    return None


def _purge_protected_vault(props: Props) -> str | None:
    if get_path(props, "properties.enableSoftDelete") is False:
        return "properties.enableSoftDelete must not be False (deleted secrets must be recoverable)"
    return _require("properties.enablePurgeProtection", True, "no one can purge a deleted vault early")(props)


RULES: tuple[Rule, ...] = (
    Rule(
        "cosmos-local-auth-disabled",
        "Cosmos DB accounts refuse account keys; callers use Entra ID and data-plane RBAC.",
        frozenset({COSMOS_ACCOUNT}),
        _require("disableLocalAuth", True, "keys would bypass RBAC"),
    ),
    Rule(
        "cosmos-continuous-backup",
        "Cosmos DB accounts use continuous backup (point-in-time restore).",
        frozenset({COSMOS_ACCOUNT}),
        _require("backupPolicy.type", "Continuous", "periodic backups lose hours of journal entries"),
    ),
    Rule(
        "cosmos-tls12",
        "Cosmos DB accounts accept TLS 1.2 or newer only.",
        frozenset({COSMOS_ACCOUNT}),
        _require_one_of("minimalTlsVersion", ("Tls12",), "older TLS versions are broken"),
    ),
    Rule(
        "public-network-access-off-in-prod",
        "In prod, Cosmos DB, Storage and Key Vault are reachable through private endpoints only (except the account "
        "tagged purpose=deployment-package, which holds only the code package the deployer uploads).",
        frozenset({COSMOS_ACCOUNT, STORAGE_ACCOUNT, KEY_VAULT}),
        _private_in_prod,
    ),
    Rule(
        "storage-no-shared-keys",
        "Storage accounts disable shared-key (and so key-signed SAS) access.",
        frozenset({STORAGE_ACCOUNT}),
        _require("allowSharedKeyAccess", False, "an account key grants everything and never expires"),
    ),
    Rule(
        "storage-no-public-blobs",
        "Storage accounts forbid anonymous blob access.",
        frozenset({STORAGE_ACCOUNT}),
        _require("allowBlobPublicAccess", False, "anonymous reads of function packages or user data"),
    ),
    Rule(
        "storage-tls12",
        "Storage accounts require TLS 1.2 or newer.",
        frozenset({STORAGE_ACCOUNT}),
        _require_one_of("minimumTlsVersion", ("TLS1_2", "TLS1_3"), "older TLS versions are broken"),
    ),
    Rule(
        "storage-https-only",
        "Storage accounts refuse plain HTTP.",
        frozenset({STORAGE_ACCOUNT}),
        _require("enableHttpsTrafficOnly", True, "requests and tokens would travel in clear text"),
    ),
    Rule(
        "function-app-https-only",
        "Function apps redirect HTTP to HTTPS.",
        frozenset({WEB_APP}),
        _require("httpsOnly", True, "tokens would travel in clear text"),
    ),
    Rule(
        "function-app-tls12",
        "Function apps accept TLS 1.2 or newer only.",
        frozenset({WEB_APP}),
        _require_one_of("siteConfig.minTlsVersion", ("1.2", "1.3"), "older TLS versions are broken"),
    ),
    Rule(
        "function-app-flex-site-config",
        "Flex Consumption apps carry only the site-config properties Flex accepts (others fail the deployment).",
        frozenset({WEB_APP}),
        _flex_site_config,
    ),
    Rule(
        "publishing-basic-auth-disabled",
        "FTP and SCM basic-auth publishing credentials are off: deployments authenticate with Entra ID.",
        frozenset({FTP_PUBLISHING, SCM_PUBLISHING}),
        _require("allow", False, "publishing credentials are shared secrets that bypass Entra ID"),
    ),
    Rule(
        "function-app-managed-identity",
        "Function apps have a managed identity to reach storage, Cosmos DB and Key Vault.",
        frozenset({WEB_APP}),
        _managed_identity,
    ),
    Rule(
        "function-app-no-keys-in-settings",
        "Function app settings hold no keys, SAS tokens or connection strings with credentials.",
        frozenset({WEB_APP}),
        _no_credentials_in_settings,
    ),
    Rule(
        "function-app-requires-sign-in",
        "App Service authentication is on and answers anonymous requests with 401: the app trusts its identity header.",
        frozenset({APP_AUTHENTICATION}),
        _requires_sign_in,
    ),
    Rule(
        "key-vault-purge-protection",
        "Key Vaults keep soft delete and purge protection on.",
        frozenset({KEY_VAULT}),
        _purge_protected_vault,
    ),
    Rule(
        "key-vault-rbac",
        "Key Vaults authorize with Azure RBAC, not access policies.",
        frozenset({KEY_VAULT}),
        _rbac_vault,
    ),
)


def violations(resource_type: str, props: Props) -> list[tuple[str, str]]:
    """(rule name, message) for every rule the resource breaks."""
    found = []
    for rule in RULES:
        if rule.applies_to(resource_type):
            message = rule.check(props)
            if message is not None:
                found.append((rule.name, message))
    return found
