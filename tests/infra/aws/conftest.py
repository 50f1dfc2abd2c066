"""One synth per variant per test session, shared by every AWS infrastructure test.

Variants: each environment with its configured DR tier, plus prod with the pilot-light tier (`DR_TIER=pilot_light`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from refarch.stacks.selfnest.config import load_settings

from .assembly import Assembly, synthesize

VARIANTS: dict[str, tuple[str, str | None]] = {
    "dev": ("dev", None),
    "prod": ("prod", None),
    "prod-pilot_light": ("prod", "pilot_light"),
}


@pytest.fixture(scope="session")
def assemblies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Assembly]:
    return {name: synthesize(load_settings(env, dr_tier=tier), Path(tmp_path_factory.mktemp(f"cdk-{name}")))
            for name, (env, tier) in VARIANTS.items()}


@pytest.fixture(scope="session")
def dev(assemblies: dict[str, Assembly]) -> Assembly:
    return assemblies["dev"]


@pytest.fixture(scope="session")
def prod(assemblies: dict[str, Assembly]) -> Assembly:
    return assemblies["prod"]


@pytest.fixture(scope="session")
def prod_pilot_light(assemblies: dict[str, Assembly]) -> Assembly:
    return assemblies["prod-pilot_light"]


@pytest.fixture(scope="session", params=VARIANTS)
def assembly(request: pytest.FixtureRequest, assemblies: dict[str, Assembly]) -> Assembly:
    return assemblies[request.param]


@pytest.fixture(scope="session", params=["prod", "prod-pilot_light"])
def with_dr_region(request: pytest.FixtureRequest, assemblies: dict[str, Assembly]) -> Assembly:
    """Every variant that has a DR region (both tiers)."""
    return assemblies[request.param]
