"""One synth per variant per test session, shared by every AWS infrastructure test.

Variants: each environment with its configured DR tier, plus prod with the pilot-light tier (`DR_TIER=pilot_light`).
dev and prod synthesize env-agnostic (offline `cdk synth`); prod-pilot_light for a concrete account, as `cdk deploy`
with credentials does (the CLI sets CDK_DEFAULT_ACCOUNT), so both shapes pass every gate.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from refarch.stacks.selfnest.config import load_settings

from .assembly import Assembly, synthesize

# An account as the CLI would pass it (any 12 digits; no AWS call is made).
DEPLOYER_ACCOUNT = "123456789012"
# name -> (environment, DR tier, account). prod's two tiers are named explicitly, so the file's own dr.tier (lab 08
# switches it) changes no variant.
VARIANTS: dict[str, tuple[str, str | None, str | None]] = {
    "dev": ("dev", None, None),
    "prod": ("prod", "backup_restore", None),
    "prod-pilot_light": ("prod", "pilot_light", DEPLOYER_ACCOUNT),
}


class Assemblies:
    """Each variant synthesized once, when a test first asks for it (a run of dev-only tests synthesizes dev only)."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._built: dict[str, Assembly] = {}

    def __getitem__(self, name: str) -> Assembly:
        if name not in self._built:
            env, tier, account = VARIANTS[name]
            self._built[name] = synthesize(load_settings(env, dr_tier=tier),
                                           Path(self._tmp_path_factory.mktemp(f"cdk-{name}")), account=account)
        return self._built[name]


@pytest.fixture(scope="session")
def assemblies(tmp_path_factory: pytest.TempPathFactory) -> Assemblies:
    return Assemblies(tmp_path_factory)


@pytest.fixture(scope="session")
def dev(assemblies: Assemblies) -> Assembly:
    return assemblies["dev"]


@pytest.fixture(scope="session")
def prod(assemblies: Assemblies) -> Assembly:
    return assemblies["prod"]


@pytest.fixture(scope="session")
def prod_pilot_light(assemblies: Assemblies) -> Assembly:
    return assemblies["prod-pilot_light"]


@pytest.fixture(scope="session", params=VARIANTS)
def assembly(request: pytest.FixtureRequest, assemblies: Assemblies) -> Assembly:
    return assemblies[request.param]


@pytest.fixture(scope="session", params=["prod", "prod-pilot_light"])
def with_dr_region(request: pytest.FixtureRequest, assemblies: Assemblies) -> Assembly:
    """Every variant that has a DR region (both tiers)."""
    return assemblies[request.param]
