"""What the BabyBloom program registers, per stack, read from the inputs the mocks recorded."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from refarch.constructs.azure import access, common
from refarch.policies.rules import CREDENTIAL_MARKERS, FLEX_SITE_CONFIG
from refarch.stacks.babybloom import offline, program
from refarch.stacks.babybloom.config import StackSettings
from refarch.tools import plan_azure

from .conftest import Plan, pulumi_test

COSMOS = "azure-native:cosmosdb:DatabaseAccount"
COSMOS_DATABASE = "azure-native:cosmosdb:SqlResourceSqlDatabase"
COSMOS_CONTAINER = "azure-native:cosmosdb:SqlResourceSqlContainer"
COSMOS_ROLE = "azure-native:cosmosdb:SqlResourceSqlRoleAssignment"
STORAGE = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
WEB_APP = "azure-native:web:WebApp"
PLAN = "azure-native:web:AppServicePlan"
ROLE = "azure-native:authorization:RoleAssignment"
CONTAINER = "azure-native:storage:BlobContainer"
INSIGHTS = "azure-native:applicationinsights:Component"
WORKSPACE = "azure-native:operationalinsights:Workspace"
ENDPOINT = "azure-native:network:PrivateEndpoint"
SUBNET = "azure-native:network:Subnet"
# Input names that would carry a credential if the program ever set one.
SECRET_FIELD = re.compile(r"(password|secret|accountkey|masterkey|primarykey|sastoken|connectionstrings?$)", re.I)


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def _app_settings(plan: Plan) -> dict[str, Any]:
    return {item["name"]: item["value"] for item in plan.one(WEB_APP).inputs["siteConfig"]["appSettings"]}


def _principal(plan: Plan) -> str:
    principal = plan.one(WEB_APP).outputs["identity"]["principalId"]
    assert isinstance(principal, str)
    return principal


@pulumi_test
def test_no_key_or_credential_in_any_input(plan: Plan) -> None:
    for resource in plan.resources:
        for path, value in _leaves(resource.inputs):
            assert not SECRET_FIELD.search(path.rsplit(".", 1)[-1]), f"{resource.name}: {path} looks like a secret"
            text = str(value)
            assert not any(marker in text for marker in CREDENTIAL_MARKERS), f"{resource.name}: {path} holds a key"


@pulumi_test
def test_function_settings_are_identity_based(plan: Plan) -> None:
    settings = _app_settings(plan)
    storage = plan.host_storage().outputs
    assert settings["AzureWebJobsStorage__accountName"] == storage["name"]
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert "AzureWebJobsStorage" not in settings  # the plain form is a connection string with the account key
    assert settings["COSMOS__accountEndpoint"] == plan.one(COSMOS).outputs["documentEndpoint"]
    # The only connection string is App Insights', which carries no credential once local auth is off.
    named_like_connection_strings = {name for name in settings if "connection" in name.lower()}
    assert named_like_connection_strings == {"APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert plan.one(INSIGHTS).inputs["disableLocalAuth"] is True
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"
    assert "connectionStrings" not in plan.one(WEB_APP).inputs["siteConfig"]
    deployment = plan.one(WEB_APP).inputs["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"] == {"type": "SystemAssignedIdentity"}
    assert deployment["value"].startswith(plan.deployment_storage().outputs["primaryEndpoints"]["blob"])


@pulumi_test
def test_basic_auth_publishing_is_off(plan: Plan) -> None:
    app_name = plan.one(WEB_APP).outputs["name"]
    for policy_type in ("azure-native:web:WebAppFtpAllowed", "azure-native:web:WebAppScmAllowed"):
        assert plan.one(policy_type).inputs == {"name": app_name, "resourceGroupName": "rg-babybloom-" + plan.stack,
                                               "allow": False}


@pulumi_test
def test_cosmos_data_role_goes_to_the_function_identity_on_the_account(plan: Plan) -> None:
    assignment = plan.one(COSMOS_ROLE).inputs
    account_id = plan.id_of(COSMOS)
    assert assignment["principalId"] == _principal(plan)
    assert assignment["scope"] == account_id
    assert assignment["roleDefinitionId"] == f"{account_id}/sqlRoleDefinitions/{common.COSMOS_DATA_CONTRIBUTOR}"
    assert assignment["accountName"] == plan.one(COSMOS).outputs["name"]


@pulumi_test
def test_cosmos_role_assignment_id_is_a_deterministic_guid(plan: Plan) -> None:
    assignment = plan.one(COSMOS_ROLE).inputs
    given = assignment["roleAssignmentId"]
    assert str(uuid.UUID(given)) == given  # a canonical GUID, as Cosmos DB requires, not the logical name
    parts = (assignment["scope"], assignment["principalId"], assignment["roleDefinitionId"])
    expected = uuid.uuid5(access.COSMOS_ROLE_ASSIGNMENT_NAMESPACE, "\n".join(part.lower() for part in parts))
    assert given == str(expected)
    # Case does not make another assignment (ARM ids compare case-insensitively); another principal does.
    assert access.cosmos_role_assignment_id(*(part.upper() for part in parts)) == given
    assert access.cosmos_role_assignment_id(parts[0], str(uuid.uuid4()), parts[2]) != given


@pulumi_test
def test_cosmos_role_assignment_ids_differ_between_stacks(plans: dict[str, Plan]) -> None:
    ids = {stack: plan.one(COSMOS_ROLE).inputs["roleAssignmentId"] for stack, plan in plans.items()}
    assert len(set(ids.values())) == len(ids)


@pulumi_test
def test_azure_roles_go_to_the_function_identity_and_the_deployer_only_what_each_needs(plan: Plan) -> None:
    subscription = plan.host_storage().outputs["id"].split("/")[2]

    def role(guid: str) -> str:
        return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{guid}"

    host, package_container = plan.host_storage().outputs["id"], plan.one(CONTAINER).outputs["id"]
    granted = {(item.inputs["principalId"], item.inputs["roleDefinitionId"], item.inputs["scope"])
               for item in plan.all(ROLE)}
    app, deployer = _principal(plan), offline.CLIENT_CONFIG["objectId"]
    assert granted == {
        (app, role(common.STORAGE_BLOB_DATA_OWNER), host),
        (app, role(common.STORAGE_QUEUE_DATA_CONTRIBUTOR), host),
        (app, role(common.STORAGE_BLOB_DATA_CONTRIBUTOR), package_container),
        (app, role(common.KEY_VAULT_SECRETS_USER), plan.id_of(VAULT)),
        (app, role(common.MONITORING_METRICS_PUBLISHER), plan.id_of(INSIGHTS)),
        # Whoever runs `pulumi up` may write the package container, and nothing else.
        (deployer, role(common.STORAGE_BLOB_DATA_CONTRIBUTOR), package_container),
    }
    # The app's new identity is declared (no directory lookup while it replicates); the deployer may be a user or a
    # service principal, so ARM looks it up.
    assert {item.inputs.get("principalType") for item in plan.all(ROLE) if item.inputs["principalId"] == app} == {
        "ServicePrincipal"}


@pulumi_test
def test_identity_wiring_through_outputs(dev_mocks: StackSettings) -> pulumi.Output[None]:
    from refarch.stacks.babybloom.program import build

    stack = build(dev_mocks)

    def check(values: list[Any]) -> None:
        principal, app_principal, scope, account_id = values
        assert principal == app_principal
        assert scope == account_id

    assignment = stack.access.cosmos_role_assignment
    return pulumi.Output.all(
        assignment.principal_id, stack.functions.principal_id, assignment.scope, stack.cosmos.account.id
    ).apply(check)


@pulumi_test
def test_database_and_partition_keys(plan: Plan) -> None:
    database = plan.one(COSMOS_DATABASE)
    assert database.inputs["resource"] == {"id": "babybloom"}
    containers = plan.all(COSMOS_CONTAINER)
    keys = {item.inputs["containerName"]: item.inputs["resource"]["partitionKey"]["paths"] for item in containers}
    assert keys == {spec.name: [spec.partition_key] for spec in program.CONTAINERS}
    # The app's own containers keep their keys whatever a lab adds.
    assert {name: keys[name] for name in ("profiles", "journal", "weekly_content")} == {
        "profiles": ["/userId"], "journal": ["/userId"], "weekly_content": ["/week"]}
    assert {item.inputs["databaseName"] for item in plan.all(COSMOS_CONTAINER)} == {database.outputs["name"]}
    for container in plan.all(COSMOS_CONTAINER):
        assert "options" not in container.inputs  # throughput, when any, is shared at the database


@pulumi_test
def test_capacity_follows_the_stack(plan: Plan) -> None:
    account = plan.one(COSMOS).inputs
    database = plan.one(COSMOS_DATABASE).inputs
    capabilities = {item["name"] for item in account.get("capabilities", [])}
    cosmos = plan.settings.app.cosmos
    if cosmos.capacity_mode == "serverless":
        assert capabilities == {"EnableServerless"}
        assert "options" not in database
    else:
        assert "EnableServerless" not in capabilities
        assert database["options"] == {"autoscaleSettings": {"maxThroughput": cosmos.autoscale_max_throughput}}


@pulumi_test
def test_stacks_differ_as_designed(plans: dict[str, Plan]) -> None:
    assert plans["dev"].settings.app.cosmos.capacity_mode == "serverless"
    assert plans["prod"].settings.app.cosmos.capacity_mode == "autoscale"
    assert not plans["dev"].settings.app.network.private
    assert plans["prod"].settings.app.network.private


@pulumi_test
def test_cosmos_account_security_and_backup(plan: Plan) -> None:
    account = plan.one(COSMOS).inputs
    assert account["disableLocalAuth"] is True
    assert account["disableKeyBasedMetadataWriteAccess"] is True
    assert account["minimalTlsVersion"] == "Tls12"
    assert account["consistencyPolicy"] == {"defaultConsistencyLevel": "Session"}
    assert account["backupPolicy"] == {
        "type": "Continuous",
        "continuousModeProperties": {"tier": plan.settings.app.cosmos.backup_tier},
    }
    assert account["locations"] == [
        {
            "locationName": plan.settings.location,
            "failoverPriority": 0,
            "isZoneRedundant": plan.settings.app.cosmos.zone_redundant,
        }
    ]


@pulumi_test
def test_storage_is_keyless_private_to_readers_and_tls12(plan: Plan) -> None:
    for account in (plan.host_storage().inputs, plan.deployment_storage().inputs):
        assert account["kind"] == "StorageV2"
        assert account["allowSharedKeyAccess"] is False
        assert account["allowBlobPublicAccess"] is False
        assert account["enableHttpsTrafficOnly"] is True
        assert account["minimumTlsVersion"] == "TLS1_2"
    # The package has an account of its own; the host's account holds no package container.
    container = plan.one(CONTAINER).inputs
    assert container["publicAccess"] == "None"
    assert container["containerName"] == program.DEPLOYMENT_CONTAINER
    assert container["accountName"] == plan.deployment_storage().outputs["name"]


@pulumi_test
def test_function_app_is_flex_consumption_python_https_tls12_no_ftp(plan: Plan) -> None:
    hosting = plan.one(PLAN).inputs
    assert hosting["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert hosting["reserved"] is True
    app = plan.one(WEB_APP).inputs
    assert app["kind"] == "functionapp,linux"
    assert app["serverFarmId"] == plan.id_of(PLAN)
    assert app["httpsOnly"] is True
    assert app["identity"] == {"type": "SystemAssigned"}
    assert app["siteConfig"]["minTlsVersion"] == "1.2"
    assert app["siteConfig"]["scmMinTlsVersion"] == "1.2"
    # Flex answers 400 to ftpsState and netFrameworkVersion; FTP is off through the publishing policies instead.
    assert set(app["siteConfig"]) <= FLEX_SITE_CONFIG
    assert plan.one("azure-native:web:WebAppFtpAllowed").inputs["allow"] is False
    assert plan.one("azure-native:web:WebAppScmAllowed").inputs["allow"] is False
    functions = plan.settings.app.functions
    assert app["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    assert app["functionAppConfig"]["scaleAndConcurrency"] == {
        "instanceMemoryMB": functions.instance_memory_mb,
        "maximumInstanceCount": functions.maximum_instance_count,
    }
    # Flex Consumption rejects the settings it manages itself.
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & set(_app_settings(plan))


@pulumi_test
def test_every_request_is_signed_in_by_app_service_authentication_first(plan: Plan) -> None:
    authentication = plan.one("azure-native:web:WebAppAuthSettingsV2").inputs
    assert authentication["name"] == plan.one(WEB_APP).outputs["name"]
    assert authentication["platform"] == {"enabled": True}
    assert authentication["globalValidation"] == {"requireAuthentication": True,
                                                  "unauthenticatedClientAction": "Return401"}
    sign_in = plan.settings.app.authentication
    provider = authentication["identityProviders"]["azureActiveDirectory"]
    assert provider["enabled"] is True
    assert provider["registration"] == {"clientId": sign_in.client_id, "openIdIssuer": sign_in.issuer}
    assert provider["validation"]["allowedAudiences"] == [sign_in.client_id, f"api://{sign_in.client_id}"]
    assert authentication["httpSettings"] == {"requireHttps": True}
    assert authentication["login"]["tokenStore"] == {"enabled": False}


@pulumi_test
def test_monitoring_is_workspace_based_without_local_auth(plan: Plan) -> None:
    insights = plan.one(INSIGHTS).inputs
    assert insights["workspaceResourceId"] == plan.id_of(WORKSPACE)
    assert insights["ingestionMode"] == "LogAnalytics"
    assert insights["disableLocalAuth"] is True
    assert plan.one(WORKSPACE).inputs["retentionInDays"] == plan.settings.app.monitoring.retention_days


@pulumi_test
def test_key_vault_uses_rbac_with_purge_protection(plan: Plan) -> None:
    properties = plan.one(VAULT).inputs["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enableSoftDelete"] is True
    assert properties["enablePurgeProtection"] is True
    assert "accessPolicies" not in properties
    assert properties["softDeleteRetentionInDays"] == plan.settings.app.key_vault.soft_delete_retention_days
    assert properties["tenantId"] == plan.one(WEB_APP).outputs["identity"]["tenantId"]


@pulumi_test
def test_data_services_are_private_exactly_in_prod(plan: Plan) -> None:
    private = plan.settings.app.network.private
    expected = "disabled" if private else "enabled"
    assert plan.one(COSMOS).inputs["publicNetworkAccess"].lower() == expected
    assert plan.host_storage().inputs["publicNetworkAccess"].lower() == expected
    assert plan.one(VAULT).inputs["properties"]["publicNetworkAccess"].lower() == expected
    endpoints = {
        (connection["privateLinkServiceId"], group)
        for endpoint in plan.all(ENDPOINT)
        for connection in endpoint.inputs["privateLinkServiceConnections"]
        for group in connection["groupIds"]
    }
    if not private:
        assert endpoints == set()
        assert "virtualNetworkSubnetId" not in plan.one(WEB_APP).inputs
        return
    assert endpoints == {
        (plan.id_of(COSMOS), "Sql"),
        (plan.host_storage().outputs["id"], "blob"),
        (plan.host_storage().outputs["id"], "queue"),
        (plan.id_of(VAULT), "vault"),
    }
    subnets = {item.inputs["subnetName"]: item for item in plan.all(SUBNET)}
    assert {endpoint.inputs["subnet"]["id"] for endpoint in plan.all(ENDPOINT)} == {
        subnets["private-endpoints"].outputs["id"]
    }
    assert plan.one(WEB_APP).inputs["virtualNetworkSubnetId"] == subnets["functions"].outputs["id"]
    assert subnets["functions"].inputs["delegations"][0]["serviceName"] == "Microsoft.App/environments"


@pulumi_test
def test_private_endpoints_resolve_through_linked_dns_zones(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    zones = {
        item.outputs["id"]: item.inputs["privateZoneName"] for item in plan.all("azure-native:privatedns:PrivateZone")
    }
    vnet_id = plan.id_of("azure-native:network:VirtualNetwork")
    links = plan.all("azure-native:privatedns:VirtualNetworkLink")
    assert {link.inputs["privateZoneName"] for link in links} == set(zones.values())
    assert {link.inputs["virtualNetwork"]["id"] for link in links} == {vnet_id}
    groups = plan.all("azure-native:network:PrivateDnsZoneGroup")
    linked = {config["privateDnsZoneId"] for group in groups for config in group.inputs["privateDnsZoneConfigs"]}
    assert linked == set(zones)
    assert set(zones.values()) == {
        "privatelink.documents.azure.com",
        "privatelink.blob.core.windows.net",
        "privatelink.queue.core.windows.net",
        "privatelink.vaultcore.azure.net",
    }


def accepts_tags(resource_type: str) -> bool:
    """Whether the azure-native resource type takes `tags` (its SDK class's arguments say so); components do not."""
    provider, module_name, class_name = resource_type.split(":")
    if provider != "azure-native":
        return False
    resource_class = getattr(importlib.import_module(f"pulumi_azure_native.{module_name}"), class_name)
    return "tags" in inspect.signature(resource_class._internal_init).parameters


@pulumi_test
def test_every_taggable_resource_names_its_environment(plan: Plan) -> None:
    taggable = [resource for resource in plan.resources if accepts_tags(resource.type)]
    assert {resource.type for resource in taggable} >= {"azure-native:resources:ResourceGroup",
                                                        "azure-native:storage:StorageAccount"}
    untagged = [f"{resource.type} {resource.name}" for resource in taggable if "tags" not in resource.inputs]
    assert untagged == []
    for resource in taggable:
        # The stack's tags on every one (a resource may add its own, e.g. the package account's purpose).
        assert resource.inputs["tags"].items() >= plan.settings.tags.items(), f"{resource.type} {resource.name}"


@pulumi_test
def test_plan_tool_prints_and_writes_the_plan(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_azure.main(["--stack", "dev", "--out", str(tmp_path)]) == 0
    written = json.loads((tmp_path / "babybloom-dev.json").read_text(encoding="utf-8"))
    printed = capsys.readouterr().out
    assert all(set(entry) == {"type", "name", "parent", "inputs"} for entry in written)
    for entry in written:
        assert f"{entry['type']}" in printed
        assert entry["name"] in printed
    assert f"+ {len(written)} to create" in printed
    assert re.search(r"in \d+\.\d\d s$", printed.strip())
    children = [entry for entry in written if entry["parent"] is not None]
    names = {entry["name"] for entry in written}
    assert children and all(entry["parent"] in names for entry in children)


# Azure's limit for storage account and Key Vault names, and what azure-native's auto-naming appends.
GLOBAL_NAME_LIMIT, AUTONAME_SUFFIX = 24, 8
LONGEST_STACK_NAME = 8  # config.STACK_NAME_PATTERN


@pulumi_test
def test_global_names_fit_for_the_longest_stack_name(plan: Plan) -> None:
    for resource in plan.all(STORAGE) + plan.all(VAULT):
        longest = len(resource.name) - len(plan.stack) + LONGEST_STACK_NAME
        assert plan.stack in resource.name
        assert longest + AUTONAME_SUFFIX <= GLOBAL_NAME_LIMIT, resource.name
