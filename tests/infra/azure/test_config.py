"""Each kind of stack-config mistake ends in one line naming the stack file, the key and what is allowed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from refarch.constructs.azure import common
from refarch.stacks.babybloom import offline
from refarch.stacks.babybloom.config import PROJECT_DIR, ConfigError, read_stack_file, settings_from_config

from .conftest import pulumi_test

Edit = Callable[[dict[str, Any]], None]


def _stack_with(tmp_path: Path, edit: Edit, stack: str = "dev") -> Path:
    document = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    edit(document["config"])
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return tmp_path


def _error(tmp_path: Path, edit: Edit, stack: str = "dev") -> str:
    project = _stack_with(tmp_path, edit, stack)
    with pytest.raises(ConfigError) as caught:
        settings_from_config(stack, read_stack_file(stack, project))
    return str(caught.value)


def _locate(config: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """`babybloom:cosmos.backupTier` -> (the cosmos mapping, "backupTier")."""
    key, *inner = path.split(".")
    target = config
    for part in inner:
        target, key = target[key], part
    return target, key


def _set(path: str, value: Any) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        target, key = _locate(config, path)
        target[key] = value

    return edit


def _drop(path: str) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        target, key = _locate(config, path)
        del target[key]

    return edit


@pulumi_test
def test_both_stack_files_are_valid() -> None:
    for stack in ("dev", "prod"):
        settings = settings_from_config(stack, read_stack_file(stack))
        assert settings.stack == stack


@pulumi_test
def test_unknown_stack_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        read_stack_file("staging")
    assert str(caught.value) == "unknown stack 'staging': there is no Pulumi.staging.yaml (available: dev, prod)"


@pulumi_test
def test_missing_key(tmp_path: Path) -> None:
    assert _error(tmp_path, _drop("babybloom:cosmos.backupTier")) == (
        "Pulumi.dev.yaml: babybloom:cosmos.backupTier: missing (required; allowed: Continuous7Days, Continuous30Days)"
    )


@pulumi_test
def test_missing_location(tmp_path: Path) -> None:
    expected = "Pulumi.dev.yaml: azure-native:location: missing (required)"
    assert _error(tmp_path, _drop("azure-native:location")) == expected


@pulumi_test
def test_wrong_type(tmp_path: Path) -> None:
    assert _error(tmp_path, _set("babybloom:functions.maximumInstanceCount", "many")) == (
        "Pulumi.dev.yaml: babybloom:functions.maximumInstanceCount: expected int, got str 'many'"
    )


@pulumi_test
def test_out_of_range(tmp_path: Path) -> None:
    assert _error(tmp_path, _set("babybloom:functions.maximumInstanceCount", 5)) == (
        "Pulumi.dev.yaml: babybloom:functions.maximumInstanceCount: 5 is not allowed "
        "(allowed: at least 40 and at most 1000)"
    )


@pulumi_test
def test_value_not_in_the_allowed_set(tmp_path: Path) -> None:
    assert _error(tmp_path, _set("babybloom:cosmos.capacityMode", "provisioned"), "prod") == (
        "Pulumi.prod.yaml: babybloom:cosmos.capacityMode: 'provisioned' is not allowed (allowed: serverless, autoscale)"
    )


@pulumi_test
def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert _error(tmp_path, _set("babybloom:cosmosMode", "serverless")) == (
        "Pulumi.dev.yaml: babybloom:cosmosMode: unknown key "
        "(allowed here: tags, monitoring, storage, functions, cosmos, keyVault, network, authentication)"
    )


@pulumi_test
def test_unknown_nested_key(tmp_path: Path) -> None:
    assert _error(tmp_path, _set("babybloom:keyVault.purge", False)) == (
        "Pulumi.dev.yaml: babybloom:keyVault.purge: unknown key (allowed here: softDeleteRetentionDays, secretOfficers)"
    )


@pulumi_test
def test_autoscale_needs_a_multiple_of_1000(tmp_path: Path) -> None:
    assert _error(tmp_path, _set("babybloom:cosmos.autoscaleMaxThroughput", 1500), "prod") == (
        "Pulumi.prod.yaml: babybloom:cosmos.autoscaleMaxThroughput: 1500 is not allowed "
        "(allowed: a multiple of 1000 from 1000 to 1000000)"
    )


@pulumi_test
def test_serverless_refuses_a_throughput(tmp_path: Path) -> None:
    assert _error(tmp_path, _set("babybloom:cosmos.autoscaleMaxThroughput", 1000)) == (
        "Pulumi.dev.yaml: babybloom:cosmos: autoscaleMaxThroughput: must be null when capacityMode is serverless "
        "(no fixed RU/s)"
    )


@pulumi_test
def test_subnet_outside_the_address_space(tmp_path: Path) -> None:
    assert _error(tmp_path, _set("babybloom:network.functionSubnet", "10.99.0.0/24"), "prod") == (
        "Pulumi.prod.yaml: babybloom:network: functionSubnet: 10.99.0.0/24 is not inside addressSpace 10.30.0.0/16"
    )


@pulumi_test
def test_invalid_yaml(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  babybloom:tags: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^Pulumi\.dev\.yaml: not valid YAML at line \d+"):
        read_stack_file("dev", tmp_path)


@pulumi_test
def test_engine_strings_are_read_like_the_yaml() -> None:
    """Under `pulumi up` scalars arrive as strings and structures as JSON; both forms give the same settings."""
    from_file = settings_from_config("prod", read_stack_file("prod"))
    as_engine = {key: str(value) for key, value in read_stack_file("prod").items()}
    as_engine["babybloom:cosmos"] = '{"capacityMode": "autoscale", "autoscaleMaxThroughput": 1000, ' \
        '"backupTier": "Continuous30Days", "zoneRedundant": true}'
    assert settings_from_config("prod", as_engine) == from_file


@pulumi_test
def test_program_turns_a_mistake_into_a_run_error(tmp_path: Path) -> None:
    """Under the engine the same message surfaces as pulumi.RunError, which the CLI prints without a traceback."""
    offline.use_stack("dev", _stack_with(tmp_path, _set("babybloom:storage.sku", "Premium_LRS")))
    from refarch.stacks.babybloom.program import run

    with pytest.raises(pulumi.RunError) as caught:
        run()
    assert str(caught.value) == (
        "Pulumi.dev.yaml: babybloom:storage.sku: 'Premium_LRS' is not allowed "
        "(allowed: Standard_LRS, Standard_ZRS, Standard_GZRS)"
    )


@pulumi_test
def test_plan_tool_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    project = _stack_with(tmp_path, _set("babybloom:monitoring.retentionDays", 7))
    result = subprocess.run(
        [sys.executable, "-m", "refarch.tools.plan_azure", "--stack", "dev", "--project-dir", str(project),
         "--out", str(tmp_path / "plan")],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "plan-azure: Pulumi.dev.yaml: babybloom:monitoring.retentionDays: 7 is not allowed "
        "(allowed: at least 30 and at most 730)"
    ]
    assert not (tmp_path / "plan").exists()


@pulumi_test
def test_sign_in_client_must_be_an_application_id(tmp_path: Path) -> None:
    message = _error(tmp_path, _set("babybloom:authentication.clientId", "my-app"))
    assert message == ("Pulumi.dev.yaml: babybloom:authentication.clientId: 'my-app' is not allowed (allowed: the "
                       "application (client) id of your app registration, a GUID)")


@pulumi_test
def test_sign_in_issuer_must_be_https(tmp_path: Path) -> None:
    message = _error(tmp_path, _set("babybloom:authentication.issuer", "http://login.example/t/v2.0"))
    assert message.startswith("Pulumi.dev.yaml: babybloom:authentication.issuer: 'http://login.example/t/v2.0'"), \
        message


@pytest.mark.parametrize(("value", "says"), [
    (["10.0.0.7"], "public addresses only"),
    (["203.0.113.7"], "public addresses only"),  # a documentation range is not a deployer's address
    (["20.50.1.7/32"], "a range up to /30, or a single address without a prefix"),
    (["somewhere"], "a public IPv4 address"),
])
@pulumi_test
def test_deployer_ip_ranges_must_be_public_addresses_azure_storage_takes(tmp_path: Path, value: list[str],
                                                                          says: str) -> None:
    message = _error(tmp_path, _set("babybloom:network.deployerIpRanges", value), "prod")
    assert message.startswith(f"Pulumi.prod.yaml: babybloom:network.deployerIpRanges: {value[0]!r} is not allowed")
    assert says in message
    assert "\n" not in message


@pulumi_test
def test_deployer_ip_ranges_need_a_private_stack(tmp_path: Path) -> None:
    message = _error(tmp_path, _set("babybloom:network.deployerIpRanges", ["20.50.1.7"]))
    assert message == ("Pulumi.dev.yaml: babybloom:network: deployerIpRanges: only used when private is true (then "
                       "the deployment account is firewalled); leave it [] here")


@pulumi_test
def test_secret_officers_are_object_ids(tmp_path: Path) -> None:
    message = _error(tmp_path, _set("babybloom:keyVault.secretOfficers", ["ana@example.com"]))
    assert message == ("Pulumi.dev.yaml: babybloom:keyVault.secretOfficers.0: 'ana@example.com' is not allowed "
                       "(allowed: Entra object ids (GUIDs) of the users, groups or service principals that write "
                       "secrets)")


DEPLOYER_IPS = ["20.50.1.7", "20.50.2.0/28"]
OFFICER = "6c1f0b7e-2d4a-4e8b-9c3d-5f6a7b8c9d0e"


@pulumi_test
def test_prod_with_deployer_ips_firewalls_the_package_account_and_grants_secret_writers(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        _set("babybloom:network.deployerIpRanges", DEPLOYER_IPS)(config)
        _set("babybloom:keyVault.secretOfficers", [OFFICER])(config)

    resources = offline.plan("prod", _stack_with(tmp_path, edit, "prod"))
    accounts = [item for item in resources if item.type == "azure-native:storage:StorageAccount"]
    package_account = next(item for item in accounts if item.inputs["tags"].get("purpose") == "deployment-package")
    function_subnet = next(item for item in resources
                           if item.type == "azure-native:network:Subnet" and item.inputs.get("delegations"))
    rules = package_account.inputs["networkRuleSet"]
    assert package_account.inputs["publicNetworkAccess"] == "Enabled"  # the deployer's way in, from outside the VNet
    assert rules["defaultAction"] == "Deny"
    assert [rule["iPAddressOrRange"] for rule in rules["ipRules"]] == DEPLOYER_IPS
    # The app reads its package through the subnet's service endpoint, needing no internet egress.
    assert [rule["virtualNetworkResourceId"] for rule in rules["virtualNetworkRules"]] == [
        function_subnet.outputs["id"]]
    assert function_subnet.inputs["serviceEndpoints"] == [{"service": "Microsoft.Storage"}]
    vault = next(item for item in resources if item.type == "azure-native:keyvault:Vault")
    officers = [item.inputs for item in resources if item.type == "azure-native:authorization:RoleAssignment"
                and item.inputs["scope"] == vault.outputs["id"] and item.inputs["principalId"] == OFFICER]
    assert len(officers) == 1
    assert officers[0]["roleDefinitionId"].endswith(f"/roleDefinitions/{common.KEY_VAULT_SECRETS_OFFICER}")
