"""One synth per variant per test run, shared by every AWS test tier (tests/infra, tests/services; labs can use
`assembly.shared_assembly` too) and kept across runs while its inputs are unchanged (assembly.synthesis_inputs).

Variants: each environment with its configured DR tier, plus prod with the pilot-light and warm-standby tiers
(`DR_TIER=...`).
dev and prod synthesize env-agnostic (offline `cdk synth`); prod-pilot_light for a concrete account, as `cdk deploy`
with credentials does (the CLI sets CDK_DEFAULT_ACCOUNT), so both shapes pass every gate.
"""

from __future__ import annotations

import pytest
from refarch.stacks.selfnest.config import load_settings

from .assembly import DEPLOYER_ACCOUNT, PROVISIONED, VARIANTS, Assembly, shared_assembly

__all__ = ["DEPLOYER_ACCOUNT", "VARIANTS", "Assemblies"]


class Assemblies:
    """Each variant synthesized once, when a test first asks for it (a run of dev-only tests synthesizes dev only)."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory | None = None) -> None:
        self._tmp_path_factory = tmp_path_factory   # kept for callers that pass it; the shared cache owns folders

    def __getitem__(self, name: str) -> Assembly:
        return shared_assembly(name)


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


@pytest.fixture(scope="session")
def prod_warm_standby(assemblies: Assemblies) -> Assembly:
    return assemblies["prod-warm_standby"]


@pytest.fixture(scope="session", params=VARIANTS)
def assembly(request: pytest.FixtureRequest, assemblies: Assemblies) -> Assembly:
    return assemblies[request.param]


@pytest.fixture(scope="session", params=["prod", "prod-pilot_light", "prod-warm_standby"])
def with_dr_region(request: pytest.FixtureRequest, assemblies: Assemblies) -> Assembly:
    """Every variant that has a DR region (every tier)."""
    return assemblies[request.param]


# Variants whose database has a cross-region replica: there the master secret is ours, rotated by a function in the
# VPC (RDS manages it everywhere else).
WITH_DATABASE_REPLICA = [name for name, (environment, tier, _) in VARIANTS.items()
                         if load_settings(environment, dr_tier=tier).dr.replica_regions]


@pytest.fixture(scope="session", params=WITH_DATABASE_REPLICA)
def with_rotation(request: pytest.FixtureRequest, assemblies: Assemblies) -> Assembly:
    """Every variant whose master secret is rotated by a function in the VPC (a database replica exists)."""
    return assemblies[request.param]


@pytest.fixture(scope="session")
def provisioned(assemblies: Assemblies) -> Assembly:
    """dev with every table config may provision provisioned (no config file enables all of them)."""
    return assemblies[PROVISIONED]
