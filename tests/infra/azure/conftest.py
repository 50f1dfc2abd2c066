"""BabyBloom under Pulumi mocks: the mocks are installed before any test module imports the program."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pulumi
import pytest
from refarch.policies import rules
from refarch.stacks.babybloom import offline
from refarch.stacks.babybloom.config import StackSettings, read_stack_file, settings_from_config

# Pulumi's testing guide: set mocks first, import the program after. Each plan re-points them at its own stack.
pulumi.runtime.set_mocks(offline.AzureMocks(), project="babybloom", stack="dev", preview=False)

STACKS = ("dev", "prod")
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
PURPOSE_TAG, DEPLOYMENT_PURPOSE = rules.PURPOSE_TAG, rules.DEPLOYMENT_PACKAGE
TestFunction = TypeVar("TestFunction", bound=Callable[..., Any])


def pulumi_test(test: TestFunction) -> TestFunction:
    """pulumi.runtime.test itself, typed for mypy: runs the test on Pulumi's loop and awaits Outputs it returns.

    Without it an assertion inside `.apply` never runs and the test passes silently; test_tier.py checks that every
    test of this tier is wrapped.
    """
    return cast(Callable[[TestFunction], TestFunction], pulumi.runtime.test)(test)


@dataclass(frozen=True)
class Plan:
    stack: str
    settings: StackSettings
    resources: list[offline.PlannedResource]

    def all(self, resource_type: str) -> list[offline.PlannedResource]:
        return [resource for resource in self.resources if resource.type == resource_type]

    def one(self, resource_type: str) -> offline.PlannedResource:
        found = self.all(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {[resource.name for resource in found]}"
        return found[0]

    def id_of(self, resource_type: str) -> Any:
        return self.one(resource_type).outputs["id"]

    def storage_account(self, *, deployment: bool) -> offline.PlannedResource:
        """The Functions host's account, or (deployment=True) the one that holds only the code package."""
        found = [account for account in self.all(STORAGE_ACCOUNT)
                 if (account.inputs["tags"].get(PURPOSE_TAG) == DEPLOYMENT_PURPOSE) is deployment]
        assert len(found) == 1, [account.name for account in found]
        return found[0]

    def host_storage(self) -> offline.PlannedResource:
        return self.storage_account(deployment=False)

    def deployment_storage(self) -> offline.PlannedResource:
        return self.storage_account(deployment=True)


@pytest.fixture(scope="session")
def plans() -> dict[str, Plan]:
    return {
        stack: Plan(stack, settings_from_config(stack, read_stack_file(stack)), offline.plan(stack))
        for stack in STACKS
    }


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest, plans: dict[str, Plan]) -> Plan:
    return plans[request.param]


@pytest.fixture
def dev_mocks() -> StackSettings:
    """Mocks and config for dev, for tests that build the program themselves and check Outputs."""
    offline.use_stack("dev")
    return settings_from_config("dev", read_stack_file("dev"))
