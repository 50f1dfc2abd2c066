"""The CrossGuard pack, run without the CLI: the program's recorded inputs pass, a bad variant of each fails."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from refarch.policies import rules
from refarch.policies.pack import policies

from .conftest import Plan, pulumi_test


@dataclass(frozen=True)
class Mutation:
    """A careless edit of a resource's inputs; `setting` is what it spoils, which the report must name."""

    setting: str
    apply: Callable[[dict[str, Any]], None]

    def __call__(self, props: dict[str, Any]) -> None:
        self.apply(props)


def _assign(path: str, value: Any) -> Mutation:
    def mutate(props: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = props
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value

    return Mutation(path, mutate)


def _remove(path: str) -> Mutation:
    def mutate(props: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = props
        for part in parents:
            target = target[part]
        del target[leaf]

    return Mutation(path, mutate)


def _add_setting(name: str, value: str) -> Mutation:
    def mutate(props: dict[str, Any]) -> None:
        props["siteConfig"]["appSettings"].append({"name": name, "value": value})

    return Mutation(f"app setting {name}", mutate)


# rule -> (stack whose recorded resource is spoiled, resource type, what a careless edit would do)
BAD_VARIANTS: dict[str, tuple[str, str, Mutation]] = {
    "cosmos-local-auth-disabled": ("dev", rules.COSMOS_ACCOUNT, _assign("disableLocalAuth", False)),
    "cosmos-continuous-backup": ("dev", rules.COSMOS_ACCOUNT, _assign("backupPolicy", {"type": "Periodic"})),
    "cosmos-tls12": ("dev", rules.COSMOS_ACCOUNT, _assign("minimalTlsVersion", "Tls11")),
    "public-network-access-off-in-prod": ("prod", rules.STORAGE_ACCOUNT, _assign("publicNetworkAccess", "Enabled")),
    "storage-no-shared-keys": ("dev", rules.STORAGE_ACCOUNT, _remove("allowSharedKeyAccess")),
    "storage-no-public-blobs": ("dev", rules.STORAGE_ACCOUNT, _assign("allowBlobPublicAccess", True)),
    "storage-tls12": ("dev", rules.STORAGE_ACCOUNT, _assign("minimumTlsVersion", "TLS1_0")),
    "storage-https-only": ("dev", rules.STORAGE_ACCOUNT, _assign("enableHttpsTrafficOnly", False)),
    "function-app-https-only": ("dev", rules.WEB_APP, _remove("httpsOnly")),
    "function-app-tls12": ("dev", rules.WEB_APP, _assign("siteConfig.minTlsVersion", "1.0")),
    "function-app-flex-site-config": ("dev", rules.WEB_APP, _assign("siteConfig.ftpsState", "Disabled")),
    "publishing-basic-auth-disabled": ("dev", rules.FTP_PUBLISHING, _assign("allow", True)),
    "function-app-managed-identity": ("dev", rules.WEB_APP, _remove("identity")),
    "function-app-no-keys-in-settings": (
        "dev",
        rules.WEB_APP,
        _add_setting("AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc=="),
    ),
    "function-app-requires-sign-in": (
        "dev", rules.APP_AUTHENTICATION, _assign("globalValidation.unauthenticatedClientAction", "AllowAnonymous")),
    "key-vault-purge-protection": ("dev", rules.KEY_VAULT, _assign("properties.enablePurgeProtection", False)),
    "key-vault-rbac": ("dev", rules.KEY_VAULT, _assign("properties.enableRbacAuthorization", False)),
}
# Other ways the same rules must catch: each is a second bad variant for a rule above.
MORE_BAD_VARIANTS: list[tuple[str, str, str, Mutation]] = [
    ("public-network-access-off-in-prod", "prod", rules.COSMOS_ACCOUNT, _assign("publicNetworkAccess", "Enabled")),
    (
        "public-network-access-off-in-prod", "prod", rules.KEY_VAULT,
        _assign("properties.publicNetworkAccess", "enabled"),
    ),
    ("public-network-access-off-in-prod", "prod", rules.STORAGE_ACCOUNT, _remove("tags")),
    ("key-vault-purge-protection", "dev", rules.KEY_VAULT, _assign("properties.enableSoftDelete", False)),
    # What web.SiteConfigArgs adds by default: Azure refuses it on Flex Consumption.
    ("function-app-flex-site-config", "prod", rules.WEB_APP, _assign("siteConfig.netFrameworkVersion", "v4.6")),
    ("publishing-basic-auth-disabled", "prod", rules.SCM_PUBLISHING, _remove("allow")),
    ("key-vault-rbac", "dev", rules.KEY_VAULT, _assign("properties.accessPolicies", [{"objectId": "someone"}])),
    (
        "function-app-no-keys-in-settings", "dev", rules.WEB_APP,
        _assign("siteConfig.connectionStrings", [{"name": "db"}]),
    ),
    ("function-app-requires-sign-in", "prod", rules.APP_AUTHENTICATION, _assign("platform.enabled", False)),
    (
        "function-app-requires-sign-in", "dev", rules.APP_AUTHENTICATION,
        _assign("globalValidation.requireAuthentication", False),
    ),
]
ALL_BAD = [(rule, *variant) for rule, variant in BAD_VARIANTS.items()] + MORE_BAD_VARIANTS
ALL_BAD_IDS = [
    f"{rule}-{resource_type.rsplit(':', 1)[-1]}-{index}" for index, (rule, _, resource_type, _) in enumerate(ALL_BAD)
]


def _resource(plan: Plan, resource_type: str) -> Any:
    """The resource a bad variant spoils: for storage, the host's account (the one holding data)."""
    return plan.host_storage() if resource_type == rules.STORAGE_ACCOUNT else plan.one(resource_type)


def _run(policy: ResourceValidationPolicy, resource_type: str, props: dict[str, Any]) -> list[str]:
    reported: list[str] = []
    args = ResourceValidationArgs(
        resource_type=resource_type,
        props=props,
        urn=f"urn:pulumi:test::babybloom::{resource_type}::r",
        name="r",
        opts=PolicyResourceOptions(
            protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
            custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[],
        ),
        provider=None,
    )
    policy.validate(args, lambda message, _urn: reported.append(message))
    return reported


def _policies() -> list[ResourceValidationPolicy]:
    return [policy for policy in policies() if isinstance(policy, ResourceValidationPolicy)]


def _policy(name: str) -> ResourceValidationPolicy:
    return next(policy for policy in _policies() if policy.name == name)


@pulumi_test
def test_every_rule_is_a_policy_with_a_bad_variant() -> None:
    names = [rule.name for rule in rules.RULES]
    assert [policy.name for policy in _policies()] == [policy.name for policy in policies()] == names
    assert len(set(names)) == len(names)
    assert set(BAD_VARIANTS) == set(names)


@pulumi_test
def test_recorded_inputs_pass_every_policy(plan: Plan) -> None:
    checked: set[str] = set()
    for resource in plan.resources:
        for policy in _policies():
            assert _run(policy, resource.type, resource.inputs) == [], f"{policy.name} on {resource.name}"
            if any(rule.name == policy.name and rule.applies_to(resource.type) for rule in rules.RULES):
                checked.add(policy.name)
    # Passing means something only if every policy actually looked at a resource of this stack.
    assert checked == {rule.name for rule in rules.RULES}


@pytest.mark.parametrize(("rule", "stack", "resource_type", "mutate"), ALL_BAD, ids=ALL_BAD_IDS)
@pulumi_test
def test_each_policy_catches_its_bad_variant(
    plans: dict[str, Plan], rule: str, stack: str, resource_type: str, mutate: Mutation
) -> None:
    props = copy.deepcopy(_resource(plans[stack], resource_type).inputs)
    assert _run(_policy(rule), resource_type, props) == []
    mutate(props)
    reported = _run(_policy(rule), resource_type, props)
    # The one report is this rule's verdict on this resource, and it names the setting the edit spoiled.
    assert reported == [message for name, message in rules.violations(resource_type, props) if name == rule]
    [message] = reported
    assert mutate.setting in message, f"{rule}: {message!r} does not name {mutate.setting}"


@pulumi_test
def test_in_prod_only_the_package_account_keeps_a_public_endpoint(plans: dict[str, Plan]) -> None:
    policy = _policy("public-network-access-off-in-prod")
    package_account = copy.deepcopy(plans["prod"].deployment_storage().inputs)
    assert package_account["publicNetworkAccess"] == "Enabled"
    assert _run(policy, rules.STORAGE_ACCOUNT, package_account) == []
    del package_account["tags"][rules.PURPOSE_TAG]
    assert len(_run(policy, rules.STORAGE_ACCOUNT, package_account)) == 1


@pulumi_test
def test_private_access_is_not_demanded_outside_prod(plans: dict[str, Plan]) -> None:
    for resource_type in (rules.COSMOS_ACCOUNT, rules.STORAGE_ACCOUNT):
        props = _resource(plans["dev"], resource_type).inputs
        assert props["publicNetworkAccess"] == "Enabled"
        assert _run(_policy("public-network-access-off-in-prod"), resource_type, props) == []


@pulumi_test
def test_policies_ignore_other_resource_types(plan: Plan) -> None:
    group = plan.one("azure-native:resources:ResourceGroup")
    assert rules.violations(group.type, {}) == []
    assert all(_run(policy, group.type, {}) == [] for policy in _policies())
