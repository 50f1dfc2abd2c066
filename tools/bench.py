"""`make bench`: Selfnest synth time against an empty CDK app (alternating, one run), BabyBloom's plan time, every
lab grader's time against its 10 s budget, the diagram and docs-site build times, `make up` and `make demo`, and the
test suite: warm `make test` and `bash .ci/run` on a fresh clone.

The empty app pays the same fixed costs (Python start, jsii and Node start, CLI start), so the ratio shows what
our stacks add. Target: at most 2.0x. A benchmark, not a test: it reports and never fails the build. Each line
shows the figure measured before the suite was made faster (issue 18) beside the new one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .synth import CDK, ROOT, tool_environment

# Measured on this 2-core machine before issue 18 (shared synths, run caches, in-process entry points, xdist),
# and again before the lab tests were spread over the workers and the run cache kept more than one entry a label.
PREVIOUS = {"synth_ratio": "1.89x",
            "warm_test": "~6 min (pytest alone 3m41s to 6 min); then 8m47s with the labs and local suites added; "
                         "then ~10.5 min with the live lab and history suites (2123 tests); then 13m44s-14m56s "
                         "with lab 15 and the chat end-to-end suites, 2 workers (2196 tests)",
            "fresh_ci": "~9 min (5m56s at best); then ~11 min; then 12m50s (2123 tests); then 23m57s (2196 tests)"}
TEST_BUDGET_SECONDS = 60.0
CI_BUDGET_SECONDS = 300.0
# The CLI refuses an app with no stacks, so the baseline holds one empty stack.
EMPTY_APP = "import aws_cdk as cdk\napp = cdk.App()\ncdk.Stack(app, 'Empty')\napp.synth()\n"


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=tool_environment(), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="dev")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternating (default 3)")
    parser.add_argument("--no-suite", action="store_true", help="skip the warm `make test` and fresh-clone CI runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="refarch-bench-") as scratch:
        empty_app = Path(scratch) / "empty_app.py"
        empty_app.write_text(EMPTY_APP, encoding="utf-8")
        python = ROOT / ".venv" / "bin" / "python"
        ours = [str(CDK), "synth", "--quiet", "-c", f"env={args.env}", "-o", f"{scratch}/ours"]
        empty = [str(CDK), "synth", "--quiet", "--app", f"{python} {empty_app}", "-o", f"{scratch}/empty"]
        timings: dict[str, list[float]] = {"selfnest": [], "empty": []}
        for _ in range(args.rounds):
            timings["empty"].append(timed(empty))
            timings["selfnest"].append(timed(ours))
    selfnest, baseline = statistics.median(timings["selfnest"]), statistics.median(timings["empty"])
    ratio = selfnest / baseline
    print(f"synth env={args.env}: median {selfnest:.2f}s over {args.rounds} runs "
          f"({', '.join(f'{t:.2f}' for t in timings['selfnest'])})")
    print(f"empty CDK app:   median {baseline:.2f}s over {args.rounds} runs "
          f"({', '.join(f'{t:.2f}' for t in timings['empty'])})")
    print(f"ratio {ratio:.2f}x (target <= 2.00x; previous {PREVIOUS['synth_ratio']}): "
          f"{'within target' if ratio <= 2.0 else 'OVER TARGET'}")
    with tempfile.TemporaryDirectory(prefix="refarch-bench-") as scratch:
        plan = [str(ROOT / ".venv" / "bin" / "python"), "-m", "refarch.tools.plan_azure", "--stack", args.env,
                "--out", scratch]
        plan_times = [timed(plan) for _ in range(args.rounds)]
    plan_median = statistics.median(plan_times)
    print(f"BabyBloom plan stack={args.env}: median {plan_median:.2f}s over {args.rounds} runs "
          f"({', '.join(f'{t:.2f}' for t in plan_times)}); target <= 3.00s: "
          f"{'within target' if plan_median <= 3.0 else 'OVER TARGET'}")
    bench_labs()
    bench_site(args.rounds)
    bench_local(args.env)
    if not args.no_suite:
        bench_suite()
    return 0


def bench_site(rounds: int) -> None:
    """`make diagrams` (one Selfnest shape and one BabyBloom stack, with rendering) and `make docs`."""
    with tempfile.TemporaryDirectory(prefix="refarch-bench-") as scratch:
        python = str(ROOT / ".venv" / "bin" / "python")
        for name in ("selfnest-dev", "babybloom-dev"):
            diagram = [python, "-m", "refarch.tools.architecture", "--only", name, "--out", scratch]
            times = [timed(diagram) for _ in range(rounds)]
            print(f"diagram {name} (model + SVG + PNG): median {statistics.median(times):.2f}s over {rounds} runs "
                  f"({', '.join(f'{t:.2f}' for t in times)})")
        docs = ["env", "NO_MKDOCS_2_WARNING=1", str(ROOT / ".venv" / "bin" / "mkdocs"), "build", "--strict", "--quiet",
                "--site-dir",
                f"{scratch}/site"]
        times = [timed(docs) for _ in range(rounds)]
        print(f"docs site build: median {statistics.median(times):.2f}s over {rounds} runs "
              f"({', '.join(f'{t:.2f}' for t in times)})")


def verdict(seconds: float, budget: float) -> str:
    return f"{'within' if seconds <= budget else 'OVER'} the {budget:.0f} s budget"


def load_note() -> str:
    """The machine's load while a figure was taken: on a shared machine, a wall time means little without it."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def bench_suite() -> None:
    """`make test` twice here — the first run fills the run caches (.cache/tests) after a change, the second is the
    warm figure — then `bash .ci/run` on a fresh clone of HEAD."""
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        result = subprocess.run(["make", "test"], cwd=ROOT, env=tool_environment(), check=False,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs.append((time.perf_counter() - started, result.returncode, load_note()))
    (first, first_exit, _), (seconds, warm_exit, load) = runs
    print(f"make test, first run (fills the caches): {first:.0f}s (exit {first_exit})")
    print(f"warm make test: {seconds:.0f}s (exit {warm_exit}; {load}), {verdict(seconds, TEST_BUDGET_SECONDS)}; "
          f"previous {PREVIOUS['warm_test']}")
    with tempfile.TemporaryDirectory(prefix="refarch-bench-clone-") as scratch:
        clone = Path(scratch) / "refarch"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        # A clean environment: nothing of this checkout's .venv or node_modules on PATH.
        env = {name: value for name, value in os.environ.items() if name not in ("VIRTUAL_ENV",)}
        env["PATH"] = os.pathsep.join(part for part in env["PATH"].split(os.pathsep) if not part.startswith(str(ROOT)))
        started = time.perf_counter()
        fresh = subprocess.run(["bash", ".ci/run"], cwd=clone, env=env, check=False, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
    print(f"fresh clone bash .ci/run: {seconds:.0f}s (exit {fresh.returncode}, installs included; {load_note()}), "
          f"{verdict(seconds, CI_BUDGET_SECONDS)}; previous {PREVIOUS['fresh_ci']}")


LAB_BUDGET_SECONDS = 10.0


def timed_lab(number: str) -> float:
    """Wall time of `refarch lab NN` as a learner runs it (a grader that fails still counts: it answered)."""
    started = time.perf_counter()
    subprocess.run([str(ROOT / ".venv" / "bin" / "refarch"), "lab", number], cwd=ROOT, env=tool_environment(),
                   check=False, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def bench_labs() -> None:
    from refarch.labs.catalog import LABS

    for number, lab in LABS.items():
        seconds = timed_lab(number)
        print(f"lab {number} grader: {seconds:.2f}s = {seconds / LAB_BUDGET_SECONDS:.2f} of the "
              f"{LAB_BUDGET_SECONDS:.0f}s budget: {'within budget' if seconds <= LAB_BUDGET_SECONDS else 'OVER BUDGET'}"
              f"  ({lab.title})")


if __name__ == "__main__":
    sys.exit(main())


def bench_local(environment: str) -> None:
    """`make up` to ready and `make demo`'s wall time, in a scratch state directory (aim: ready <= 60 s warm)."""
    scratch = Path(tempfile.mkdtemp(prefix="refarch-bench-local-"))
    scratch.chmod(0o755)   # PostgreSQL runs as an unprivileged account when this runs as root
    state = ["--state", str(scratch / ".local")]
    local = [str(ROOT / ".venv" / "bin" / "python"), "-m", "refarch.local"]
    try:
        up = timed([*local, "up", "--env", environment, *state])
        demo = timed([*local, "demo", *state])
    finally:
        subprocess.run([*local, "down", *state], capture_output=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"make up env={environment}: ready in {up:.1f}s (target <= 60s warm: "
          f"{'within target' if up <= 60 else 'OVER TARGET'}); make demo: {demo:.1f}s")
