"""What a lab copy's own grader or calculator printed, kept across runs under every input that can change it.

A copy whose code is not this checkout's (a code answer, a code lab's solution) is graded and billed by its own
`refarch lab` / `refarch cost` in a new process, and so is every BabyBloom bill: ~10 s each, a synth or a Pulumi
plan of the copy's code. What that process prints is a function of the copy's files, the interpreter and packages
installed, the Node that jsii starts and the environment variables CDK, jsii, Pulumi and the apps read; the key
names each of them, so a different answer, tool or variable computes afresh, and an unchanged copy (the same
commit's lab, run after run) reads it back. The tests still judge what it printed, each run. A process that fails is
not kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from refarch.tools import lab_costs
from refarch.tools.lab_costs import SHARED, in_copy

from tests import run_cache
from tests.run_cache import ROOT, RunCache, environment_values, files_digest, installed_distributions, node_version

COPY_RUNS = RunCache("lab-runs")
# Read by CDK, jsii, Pulumi, the apps, Node and Python (PYTHONPATH itself is set by in_copy, to the copy's own).
ENVIRONMENT_PREFIXES = ("CDK_", "JSII_", "PULUMI_", "REFARCH_", "NODE_", "PYTHON")
# What the service tests point the SDKs at their emulators with (a worker's moto on a free port, Azurite): no synth,
# plan or grader reads them, so the copy's process runs without them rather than have the key name a port.
EMULATOR_PREFIXES = ("AWS_", "AZURE_")
# This checkout's code that starts a copy's process and reads what it prints (the copy's own files are keyed apart):
# an uncommitted edit to it changes what a kept result would be too.
RUNNER = (Path(__file__), Path(lab_costs.__file__), Path(run_cache.__file__), Path(__file__).with_name("test_labs.py"))
RESULT = "result.json"
# Where a kept output names the copy it came from: each copy is a new folder, so the path is kept as this mark.
COPY_MARK = "<lab copy>"


def copy_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a copy's grader or calculator runs in: this process's, without the emulators' variables."""
    environ = os.environ if environ is None else environ
    return {name: value for name, value in environ.items() if not name.startswith(EMULATOR_PREFIXES)}


def _links(copy: Path) -> Iterator[str]:
    """Every symbolic link the copy holds and where it points (`.typecheck` decides which code `refarch` imports)."""
    for folder, folders, files in os.walk(copy):
        here = Path(folder)
        folders[:] = [name for name in folders if not (here == copy and name in SHARED)]
        for name in sorted([*folders, *files]):
            if (here / name).is_symlink():
                yield f"{(here / name).relative_to(copy)} -> {os.readlink(here / name)}"


def copy_run_inputs(copy: Path, args: tuple[str, ...], *,
                    environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every input that can change what `in_copy(copy, *args, environ=copy_environment(environ))` prints, as the
    cache key's named parts."""
    return {
        "command": json.dumps(args),
        "runner": files_digest(RUNNER, root=ROOT),
        "files": files_digest([path for path in copy.iterdir() if path.name not in SHARED], root=copy),
        "links": json.dumps(sorted(_links(copy))),
        "environment": environment_values((), ENVIRONMENT_PREFIXES, copy_environment(environ)),
        "python": installed_distributions(),
        "node": node_version(),
    }


def kept(copy: Path, what: tuple[str, ...], *, label: str, compute: Callable[[], str],
         cache: RunCache = COPY_RUNS) -> str:
    """What `compute()` returns for `copy` (`what` names the computation), computed once for these exact inputs;
    one that raises is not kept."""
    def build(entry: Path) -> None:
        (entry / RESULT).write_text(compute().replace(str(copy), COPY_MARK), encoding="utf-8")

    entry, _ = cache.get_or_build(label, copy_run_inputs(copy, what), build)
    return (entry / RESULT).read_text(encoding="utf-8").replace(COPY_MARK, str(copy))


def run_in_copy(copy: Path, *args: str, label: str, exit_codes: tuple[int, ...] = (0,),
                cache: RunCache = COPY_RUNS) -> subprocess.CompletedProcess[str]:
    """`in_copy(copy, *args)` without the emulators' variables, run once for these exact inputs; an exit code outside
    `exit_codes` fails here, with the process's output, and is not kept."""
    def unexpected(done: subprocess.CompletedProcess[str]) -> AssertionError:
        return AssertionError(f"`{' '.join(args)}` exited {done.returncode} in {copy}:\n"
                              f"{done.stdout[-2000:]}{done.stderr[-4000:]}")

    def run() -> str:
        done = in_copy(copy, *args, environ=copy_environment())
        if done.returncode not in exit_codes:
            raise unexpected(done)
        return json.dumps({"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr})

    recorded = json.loads(kept(copy, args, label=label, compute=run, cache=cache))
    done = subprocess.CompletedProcess([sys.executable, *args], recorded["returncode"], recorded["stdout"],
                                       recorded["stderr"])
    if done.returncode not in exit_codes:   # kept for a caller that accepts it
        raise unexpected(done)
    return done
