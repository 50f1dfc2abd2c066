"""Guards on the tier itself: a mock test that is not run by Pulumi's test wrapper can pass without checking."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pulumi

from .conftest import pulumi_test

PULUMI_TEST_WRAPPER = inspect.getsourcefile(pulumi.runtime.test) or ""


def _tier_modules() -> list[ModuleType]:
    package = importlib.import_module(__package__ or "tests.infra.azure")
    return [
        importlib.import_module(f"{package.__name__}.{module.name}")
        for module in pkgutil.iter_modules(package.__path__)
        if module.name.startswith("test_")
    ]


@pulumi_test
def test_every_test_runs_inside_pulumi_runtime_test() -> None:
    tests = [
        (module.__name__, name, function)
        for module in _tier_modules()
        for name, function in vars(module).items()
        if name.startswith("test_") and callable(function)
    ]
    assert len(tests) >= 30
    for module_name, name, function in tests:
        # functools.wraps keeps the name but the code object is Pulumi's wrapper, defined in pulumi/runtime/mocks.py.
        assert function.__code__.co_filename == PULUMI_TEST_WRAPPER, f"{module_name}.{name} is not a Pulumi test"
