"""Shared test set-up: the project's Node 22 must be the `node` that jsii starts for in-process synths; and how
`make test` (pytest-xdist `--dist loadfile`) cuts the suite into units of work for its workers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]  # xdist ships no type hints

ROOT = Path(__file__).resolve().parents[1]
os.environ["PATH"] = os.pathsep.join([str(ROOT / "node_modules" / ".bin"), str(ROOT / ".venv" / "bin"),
                                      os.environ["PATH"]])

# Files whose parametrized cases are independent and cost tens of seconds each: one unit of work per value of the
# first parameter (the lab tests: one unit per lab), so they spread over the workers instead of holding one for
# minutes. Their module fixtures then start once per worker, not once per run.
SPLIT_BY_FIRST_PARAMETER = frozenset({"tests/labs/test_labs.py"})


class FileOrParameterScheduling(LoadFileScheduling):  # type: ignore[misc]
    """`--dist loadfile`, with the files above cut by their first parameter. (xdist_group marks with
    `--dist loadgroup` would say the same, but pytest 9.2 ignores the node-id rewrite that carries them to the
    scheduler: pytest-dev/pytest-xdist#1386.)"""

    def _split_scope(self, nodeid: str) -> str:
        return unit_of_work(nodeid)


def unit_of_work(nodeid: str) -> str:
    path, _, name = nodeid.partition("::")
    if path in SPLIT_BY_FIRST_PARAMETER and name.endswith("]") and "[" in name:
        return f"{path}[{name.split('[', 1)[1].split('-', 1)[0].removesuffix(']')}]"
    return path


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadFileScheduling | None:
    if config.getvalue("dist") != "loadfile":
        return None
    return FileOrParameterScheduling(config, log)
