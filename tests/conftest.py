"""Shared test set-up: the project's Node 22 must be the `node` that jsii starts for in-process synths; how
`make test` (pytest-xdist `--dist loadfile`) cuts the suite into units of work for its workers; and one local
deployment shared by the run (tests/local_deployment.py), owned by the controller process, which stops it at the end."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest
from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]  # xdist ships no type hints

from tests.local_deployment import claim, is_controller, local_deployment, stop_run, sweep

ROOT = Path(__file__).resolve().parents[1]
os.environ["PATH"] = os.pathsep.join([str(ROOT / "node_modules" / ".bin"), str(ROOT / ".venv" / "bin"),
                                      os.environ["PATH"]])

__all__ = ["local_deployment"]


def pytest_configure(config: pytest.Config) -> None:
    if is_controller(config):   # before any worker starts: what killed runs left behind goes, this run's is marked
        sweep()
        claim(config)
        config.stash[UNIT_SECONDS] = recorded_unit_seconds()
        SECONDS_THIS_RUN.clear()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if is_controller(session.config):
        stop_run(session.config)
        finish_record(session, SECONDS_THIS_RUN)

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
    config.option.loadscopereorder = False   # the workers' collection order below is the queue's order
    return FileOrParameterScheduling(config, log)


# The longest units first (what each took in the last run that ran it), so no worker starts a minutes-long unit
# while the other has nothing left: the run ends when its slowest worker does. Units with no record yet (a fresh
# clone, a new file) go by what they are: copies of the repository and local deployments first, then the biggest
# files. Only the order changes, never what runs or what it asserts.
UNIT_SECONDS_FILE = ROOT / ".cache" / "tests" / "unit-seconds.json"
UNIT_SECONDS = pytest.StashKey[dict[str, float]]()
SECONDS_THIS_RUN: defaultdict[str, float] = defaultdict(float)   # filled in the controller (workers report there)
HEAVY_WITHOUT_A_RECORD = ("tests/labs/", "tests/local/", "tests/docs/")


def recorded_unit_seconds() -> dict[str, float]:
    try:
        recorded = json.loads(UNIT_SECONDS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(unit): float(seconds) for unit, seconds in recorded.items()} if isinstance(recorded, dict) else {}


def runs_whole_units(config: pytest.Config) -> bool:
    """Whether every test of each unit this run touches runs: not one picked by -k, -m, a test id, --deselect,
    --lf or --sw, or cut short by -x, whose time would stand for the whole unit in the next run's order."""
    option = config.option
    return (not option.keyword and not option.markexpr and not option.maxfail and not option.deselect
            and not getattr(option, "lf", False) and not getattr(option, "stepwise", False)
            and not any("::" in str(arg) for arg in config.args))


def finish_record(session: pytest.Session, this_run: dict[str, float]) -> None:
    """This run's unit times join the record, unless it picked tests or was interrupted."""
    if runs_whole_units(session.config) and session.exitstatus != pytest.ExitCode.INTERRUPTED:
        record_unit_seconds(session.config.stash[UNIT_SECONDS], this_run)


def record_unit_seconds(before: dict[str, float], this_run: dict[str, float]) -> None:
    if this_run:
        UNIT_SECONDS_FILE.parent.mkdir(parents=True, exist_ok=True)
        written = UNIT_SECONDS_FILE.with_name(f"{UNIT_SECONDS_FILE.name}.{os.getpid()}")
        written.write_text(json.dumps({**before, **this_run}, indent=0, sort_keys=True), encoding="utf-8")
        written.replace(UNIT_SECONDS_FILE)   # whole or not at all, for a run that reads it meanwhile


def work_order(nodeids: list[str], unit_seconds: dict[str, float]) -> list[str]:
    """`nodeids` with whole units of work longest first; a unit's own tests keep their order."""
    tests_in: defaultdict[str, int] = defaultdict(int)
    for nodeid in nodeids:
        tests_in[unit_of_work(nodeid)] += 1

    def expected_cost(nodeid: str) -> tuple[int, float, str]:
        unit = unit_of_work(nodeid)
        recorded = unit_seconds.get(unit)
        if recorded is not None:
            return (1, -recorded, unit)
        return (0 if unit.startswith(HEAVY_WITHOUT_A_RECORD) else 2, -tests_in[unit], unit)

    return sorted(nodeids, key=expected_cost)


def pytest_configure_node(node: object) -> None:
    """The controller hands every worker the same record, so all of them collect in the same order (xdist requires
    it), even if another run rewrites the file meanwhile."""
    controller_config: pytest.Config = node.config  # type: ignore[attr-defined]
    node.workerinput["unit_seconds"] = json.dumps(controller_config.stash[UNIT_SECONDS])  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    handed = getattr(config, "workerinput", {}).get("unit_seconds")
    unit_seconds = json.loads(handed) if handed is not None else config.stash.get(UNIT_SECONDS, {})
    position = {nodeid: index for index, nodeid in enumerate(work_order([item.nodeid for item in items],
                                                                        unit_seconds))}
    items.sort(key=lambda item: position[item.nodeid])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):   # the controller, or a serial run
        SECONDS_THIS_RUN[unit_of_work(report.nodeid)] += report.duration
