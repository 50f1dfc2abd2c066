"""One local deployment of Selfnest per test run, shared by every test and every xdist worker: `make up`'s own code
(refarch.local.selfnest.up: the real CDK CLI into MiniStack with IAM enforced, the migrate task and the booking API
as processes configured from their task definitions), deployed from the run's shared dev synth.

The first worker that asks deploys it under a file lock; the others wait on the lock and reuse it. It lives under
the system's temporary folder (never the repository's `.local/`, which `make up` owns), keyed on the xdist test-run
uid, and the controller process stops it when the session ends (`stop_run`, from tests/conftest.py). A run that
was killed leaves its folder behind: the next run's controller stops what that folder recorded (`sweep`).

REFARCH_TEST_DEPLOYMENT=<state folder> makes the tests use a deployment that is already running there instead
(iterating on a test without redeploying); the tests never stop that one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from refarch.local.processes import LocalError, Registry
from refarch.local.selfnest import Endpoints, aws_client, up

ENVIRONMENT = "dev"
RUNS = Path(tempfile.gettempdir()) / "refarch-test-deployments"
OWNER = "owner.json"     # the controller's pid and start time: a folder whose owner is gone is stale
FAILED = "failed.txt"    # a deploy that failed once fails every test that needs it, with the same line


@dataclass(frozen=True)
class LocalDeployment:
    """What the tests reach: the endpoints `make up` prints, and clients of the emulator (its root credentials)."""

    endpoints: Endpoints
    state: Path
    deploy_seconds: float

    def client(self, service: str) -> Any:
        return aws_client(service, endpoint=self.endpoints.emulator, region=self.endpoints.region)

    def function_environment(self, handler: str) -> dict[str, str]:
        """The deployed configuration of the function whose handler is `handler` (e.g. "audit.handler")."""
        functions = self.client("lambda")
        found = [function for page in functions.get_paginator("list_functions").paginate()
                 for function in page["Functions"] if function.get("Handler") == handler]
        assert len(found) == 1, f"expected one deployed function with handler {handler}, found {len(found)}"
        return dict(found[0].get("Environment", {}).get("Variables", {}))


def run_uid(config: pytest.Config) -> str:
    """The xdist test-run uid (the controller hands its own to every worker); a serial run makes one up."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return str(workerinput["testrunuid"])
    if getattr(config.option, "testrunuid", None) is None:
        config.option.testrunuid = uuid.uuid4().hex
    return str(config.option.testrunuid)


def is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def run_folder(config: pytest.Config) -> Path:
    return RUNS / run_uid(config)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def claim(config: pytest.Config) -> None:
    """The controller marks the run's folder as its own (called at session start, before any worker exists)."""
    folder = run_folder(config)
    RUNS.mkdir(parents=True, exist_ok=True)
    RUNS.chmod(0o755)   # as root PostgreSQL runs as another account, which must reach its cluster under here
    folder.mkdir(exist_ok=True)
    folder.chmod(0o755)
    (folder / OWNER).write_text(json.dumps({"pid": os.getpid(), "started": _start_time(os.getpid())}))


def shared(config: pytest.Config) -> LocalDeployment:
    """The run's deployment: made by the first caller, under the lock; read by every later one."""
    reused = os.environ.get("REFARCH_TEST_DEPLOYMENT")
    if reused:
        return LocalDeployment(endpoints=Endpoints.load(Path(reused)), state=Path(reused), deploy_seconds=0.0)
    folder = run_folder(config)
    state = folder / "state"
    with _locked(folder):
        if (folder / FAILED).exists():
            raise LocalError((folder / FAILED).read_text())
        if not (state / "endpoints.json").exists():
            from tests.infra.aws.assembly import shared_assembly

            started = time.monotonic()
            try:
                synthesized = shared_assembly(ENVIRONMENT).outdir
                up(environment=ENVIRONMENT, state=state, port=None, with_babybloom=False, synthesized=synthesized,
                   say=lambda _line: None)
            except (Exception, KeyboardInterrupt) as error:
                (folder / FAILED).write_text(f"the tests' local deployment failed: {error}")
                raise
            (folder / "deploy-seconds").write_text(f"{time.monotonic() - started:.1f}")
    return LocalDeployment(endpoints=Endpoints.load(state), state=state,
                           deploy_seconds=float((folder / "deploy-seconds").read_text()))


def stop_run(config: pytest.Config) -> None:
    """At the controller's session end: stop every process the run's deployment started, remove its folder."""
    _stop(run_folder(config))


def sweep() -> None:
    """Stop and remove what runs that were killed (their controller is gone) left behind."""
    if not RUNS.is_dir():
        return
    for folder in RUNS.iterdir():
        try:
            owner = json.loads((folder / OWNER).read_text())
        except (OSError, ValueError):
            owner = {"pid": 0, "started": None}
        if _start_time(int(owner["pid"])) != owner["started"] or owner["started"] is None:
            _stop(folder)


def _stop(folder: Path) -> None:
    if (folder / "state").is_dir():
        Registry(folder / "state").stop_all()
    shutil.rmtree(folder, ignore_errors=True)


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@pytest.fixture(scope="session")
def local_deployment(request: pytest.FixtureRequest) -> LocalDeployment:
    return shared(request.config)


# How long the tests wait for what the emulator does asynchronously (deliveries, event source mappings, retries).
WAIT_SECONDS = 90
_Found = TypeVar("_Found")


def eventually(check: Callable[[], _Found | None], what: str, *, seconds: float = WAIT_SECONDS) -> _Found:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f}s")
        time.sleep(0.3)
