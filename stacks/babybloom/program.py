"""The BabyBloom program: validate the stack config once, then wire the components of constructs/azure."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from babybloom_app import settings as app_settings
from pulumi_azure_native import authorization, resources
from refarch.constructs.azure.access import AzureRoleGrant, IdentityAccess, IdentityAccessArgs
from refarch.constructs.azure.common import (
    KEY_VAULT_SECRETS_USER,
    MONITORING_METRICS_PUBLISHER,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_OWNER,
    STORAGE_QUEUE_DATA_CONTRIBUTOR,
    Placement,
)
from refarch.constructs.azure.cosmos import ContainerSpec, CosmosStore, CosmosStoreArgs
from refarch.constructs.azure.functions import FlexFunctionApp, FlexFunctionAppArgs, SignInProvider
from refarch.constructs.azure.keyvault import SecretVault, SecretVaultArgs
from refarch.constructs.azure.monitoring import Observability, ObservabilityArgs
from refarch.constructs.azure.network import PrivateLink, PrivateLinkArgs, PrivateNetwork, PrivateNetworkArgs
from refarch.constructs.azure.package import (
    FunctionPackage,
    FunctionPackageArgs,
    build_function_package,
    install_dependencies,
)
from refarch.constructs.azure.storage import FunctionStorage, FunctionStorageArgs, StorageFirewall
from refarch.policies import rules

from .config import PROJECT_DIR, ConfigError, StackSettings, settings_from_config

DATABASE = "babybloom"
# Profiles and journal entries are always read and written per user, so the user id spreads load and keeps each
# user's items in one logical partition; weekly content is read by pregnancy week by everyone.
CONTAINERS = (
    ContainerSpec(name="profiles", partition_key="/userId"),
    ContainerSpec(name="journal", partition_key="/userId"),
    ContainerSpec(name="weekly_content", partition_key="/week"),
)
DEPLOYMENT_CONTAINER = "app-package"
# The tag that marks the account holding only the code package (CrossGuard lets it keep a public endpoint in prod).
PURPOSE_TAG = rules.PURPOSE_TAG
DEPLOYMENT_PURPOSE = rules.DEPLOYMENT_PACKAGE
REMINDER_QUEUE = "reminders"
APP_SOURCE = PROJECT_DIR / "services" / "babybloom_functions"
BUILD_DIR = PROJECT_DIR / ".build" / "babybloom_functions"
# Not read by the app: a new package hash changes the site config, which restarts the app onto the new package.
PACKAGE_HASH_SETTING = "BABYBLOOM_PACKAGE_SHA256"


@dataclass(frozen=True)
class BabyBloom:
    """The built stack, for exports and tests."""

    resource_group: resources.ResourceGroup
    observability: Observability
    storage: FunctionStorage
    deployment_storage: FunctionStorage
    package: FunctionPackage
    cosmos: CosmosStore
    vault: SecretVault
    functions: FlexFunctionApp
    access: IdentityAccess
    network: PrivateNetwork | None
    private_links: dict[str, PrivateLink]


def run() -> None:
    """Entry point under the Pulumi engine and under the offline plan (mocks): the same config path for both."""
    try:
        settings = settings_from_config(pulumi.get_stack(), current_config())
    except ConfigError as error:
        # RunError makes the engine print just the message: one line, no program traceback.
        raise pulumi.RunError(str(error)) from None
    stack = build(settings)
    pulumi.export("resourceGroup", stack.resource_group.name)
    pulumi.export("functionHost", stack.functions.default_host_name)
    pulumi.export("cosmosEndpoint", stack.cosmos.endpoint)
    pulumi.export("keyVaultUri", stack.vault.vault_uri)


def current_config() -> dict[str, str]:
    """Every config value the runtime holds (engine-provided or set offline), keyed `namespace:key`."""
    merged = {str(key): str(value) for key, value in pulumi.runtime.get_config_env().items()}
    merged.update({str(key): str(value) for key, value in pulumi.runtime.config.CONFIG.get().items()})
    return merged


def build(settings: StackSettings) -> BabyBloom:
    app = settings.app
    private = app.network.private
    client = authorization.get_client_config_output()
    group = resources.ResourceGroup(
        "resource-group", resource_group_name=settings.name("rg"), location=settings.location, tags=settings.tags
    )
    place = Placement(resource_group_name=group.name, location=settings.location, tags=settings.tags)
    # Storage and vault names: globally unique, alphanumeric, at most 24 characters with the provider's random suffix.
    short = f"bloom{settings.stack}"

    observability = Observability(
        "observability",
        ObservabilityArgs(
            placement=place,
            workspace_name=settings.name("log"),
            insights_name=settings.name("appi"),
            retention_days=app.monitoring.retention_days,
            daily_cap_gb=app.monitoring.daily_cap_gb,
        ),
    )
    storage = FunctionStorage(
        "storage",
        FunctionStorageArgs(
            placement=place,
            account_name_prefix=f"st{short}",
            sku=app.storage.sku,
            queues=(REMINDER_QUEUE,),
            private=private,
        ),
    )
    cosmos = CosmosStore(
        "cosmos",
        CosmosStoreArgs(
            placement=place,
            account_name_prefix=settings.name("cosmos"),
            database=DATABASE,
            containers=CONTAINERS,
            capacity_mode=app.cosmos.capacity_mode,
            autoscale_max_throughput=app.cosmos.autoscale_max_throughput,
            backup_tier=app.cosmos.backup_tier,
            zone_redundant=app.cosmos.zone_redundant,
            private=private,
        ),
    )
    vault = SecretVault(
        "vault",
        SecretVaultArgs(
            placement=place,
            vault_name_prefix=f"kv{short}",
            tenant_id=client.tenant_id,
            soft_delete_retention_days=app.key_vault.soft_delete_retention_days,
            private=private,
            secret_officers=tuple(app.key_vault.secret_officers),
            subscription_id=client.subscription_id,
        ),
    )
    network = (
        PrivateNetwork(
            "network",
            PrivateNetworkArgs(
                placement=place,
                vnet_name=settings.name("vnet"),
                address_space=app.network.address_space,
                function_subnet=app.network.function_subnet,
                private_endpoint_subnet=app.network.private_endpoint_subnet,
            ),
        )
        if private
        else None
    )
    # The code package lives in an account of its own that `pulumi up` can reach from outside the VNet on the first
    # run and every later one (the host account is private in prod). It holds code only; writing needs Entra ID and
    # a role only the deployer has; in a private stack it can be firewalled to the deployer's IPs and the app subnet.
    deployment_storage = FunctionStorage(
        "deployment-storage",
        FunctionStorageArgs(
            placement=Placement(resource_group_name=group.name, location=settings.location,
                                tags={**settings.tags, PURPOSE_TAG: DEPLOYMENT_PURPOSE}),
            # "pkg" instead of "bloom": with the provider's 8-character suffix it stays within 24 for any stack name.
            account_name_prefix=f"stpkg{settings.stack}",
            sku=app.storage.sku,
            containers=(DEPLOYMENT_CONTAINER,),
            private=False,
            firewall=(
                StorageFirewall(allowed_ip_ranges=tuple(app.network.deployer_ip_ranges),
                                allowed_subnet_ids=(network.function_subnet.id,))
                if network is not None and app.network.deployer_ip_ranges else None
            ),
        ),
    )
    deployment_container = deployment_storage.containers[DEPLOYMENT_CONTAINER]
    package = FunctionPackage(
        "function-package",
        FunctionPackageArgs(
            package=build_function_package(
                source=APP_SOURCE,
                output_dir=BUILD_DIR,
                dependencies=install_dependencies(APP_SOURCE / "requirements.txt", cache=BUILD_DIR),
            ),
            container_url=deployment_storage.container_url(DEPLOYMENT_CONTAINER),
            container_id=deployment_container.id,
            deployer_principal_id=client.object_id,
            subscription_id=client.subscription_id,
        ),
    )
    functions = FlexFunctionApp(
        "functions",
        FlexFunctionAppArgs(
            placement=place,
            plan_name=settings.name("asp"),
            app_name_prefix=settings.name("func"),
            python_version=app.functions.python_version,
            instance_memory_mb=app.functions.instance_memory_mb,
            maximum_instance_count=app.functions.maximum_instance_count,
            storage_account_name=storage.account.name,
            deployment_container_url=deployment_storage.container_url(DEPLOYMENT_CONTAINER),
            insights_connection_string=observability.connection_string,
            # The names come from the app itself (babybloom_app.settings), so what is set is what it reads.
            app_settings={
                # `<prefix>__accountEndpoint` is the identity-based connection form the Cosmos DB bindings read;
                # the app's own SDK client uses the same value with its managed identity.
                app_settings.COSMOS_ENDPOINT: cosmos.endpoint,
                app_settings.COSMOS_DATABASE: DATABASE,
                app_settings.REMINDER_QUEUE: REMINDER_QUEUE,
                # Identity-based connection for the queue trigger and the app's reminder sender.
                app_settings.REMINDERS_QUEUE_SERVICE_URI: storage.queue_endpoint,
                app_settings.REMINDERS_CREDENTIAL: "managedidentity",
                "KEY_VAULT_URI": vault.vault_uri,
                # The app verifies every caller's access token against this tenant and audience itself.
                app_settings.AUTH_ISSUER: app.authentication.issuer,
                app_settings.AUTH_CLIENT_ID: app.authentication.client_id,
                # The uploaded blob's hash (an output of the upload), so the app also waits for the upload itself.
                PACKAGE_HASH_SETTING: package.blob.sha256,
            },
            subnet_id=network.function_subnet.id if network is not None else None,
            sign_in=SignInProvider(issuer=app.authentication.issuer, client_id=app.authentication.client_id),
        ),
        # The app starts from the package, so the package is in place first. (A component's depends_on does not reach
        # its children; the hash setting above carries the dependency to the site itself.)
        opts=pulumi.ResourceOptions(depends_on=[package]),
    )
    account_id = storage.account.id
    access = IdentityAccess(
        "function-access",
        IdentityAccessArgs(
            principal_id=functions.principal_id,
            subscription_id=client.subscription_id,
            grants=(
                # The Functions host keeps its leases and state in blobs of its own account.
                AzureRoleGrant(name="storage-blob-data-owner", role=STORAGE_BLOB_DATA_OWNER, scope=account_id),
                # Flex Consumption reads the package with the app's identity (and `func publish` would write it).
                AzureRoleGrant(name="package-blob-data-contributor", role=STORAGE_BLOB_DATA_CONTRIBUTOR,
                               scope=deployment_container.id),
                AzureRoleGrant(
                    name="storage-queue-data-contributor", role=STORAGE_QUEUE_DATA_CONTRIBUTOR, scope=account_id
                ),
                AzureRoleGrant(name="key-vault-secrets-user", role=KEY_VAULT_SECRETS_USER, scope=vault.vault.id),
                AzureRoleGrant(
                    name="monitoring-metrics-publisher",
                    role=MONITORING_METRICS_PUBLISHER,
                    scope=observability.insights.id,
                ),
            ),
            cosmos_account_id=cosmos.account.id,
            cosmos_account_name=cosmos.account.name,
            resource_group_name=group.name,
        ),
    )
    private_links: dict[str, PrivateLink] = {}
    if network is not None:
        targets = (
            ("cosmos", cosmos.account.id, "Sql", "privatelink.documents.azure.com"),
            ("blob", account_id, "blob", "privatelink.blob.core.windows.net"),
            ("queue", account_id, "queue", "privatelink.queue.core.windows.net"),
            ("vault", vault.vault.id, "vault", "privatelink.vaultcore.azure.net"),
        )
        for name, target_id, group_id, zone in targets:
            private_links[name] = PrivateLink(
                f"private-{name}",
                PrivateLinkArgs(
                    placement=place,
                    target_id=target_id,
                    group_id=group_id,
                    dns_zone=zone,
                    subnet_id=network.private_endpoint_subnet.id,
                    vnet_id=network.vnet.id,
                ),
            )
    return BabyBloom(
        resource_group=group,
        observability=observability,
        storage=storage,
        deployment_storage=deployment_storage,
        package=package,
        cosmos=cosmos,
        vault=vault,
        functions=functions,
        access=access,
        network=network,
        private_links=private_links,
    )

