"""One synth per environment per test session, shared by every AWS infrastructure test."""

from __future__ import annotations

from pathlib import Path

import pytest
from refarch.stacks.selfnest.config import load_settings

from .assembly import Assembly, synthesize

ENVIRONMENTS = ("dev", "prod")


@pytest.fixture(scope="session")
def assemblies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Assembly]:
    return {env: synthesize(load_settings(env), Path(tmp_path_factory.mktemp(f"cdk-{env}")))
            for env in ENVIRONMENTS}


@pytest.fixture(scope="session")
def dev(assemblies: dict[str, Assembly]) -> Assembly:
    return assemblies["dev"]


@pytest.fixture(scope="session")
def prod(assemblies: dict[str, Assembly]) -> Assembly:
    return assemblies["prod"]


@pytest.fixture(scope="session", params=ENVIRONMENTS)
def assembly(request: pytest.FixtureRequest, assemblies: dict[str, Assembly]) -> Assembly:
    return assemblies[request.param]
