"""Every lab grader fails on the untouched repository and passes once its reference solution is applied — in a
temporary copy, where the test tiers the lab touches must stay green too.

The copy holds the repository's files (tracked and new, not ignored) with `.venv`, `node_modules` and the build
caches linked, not copied. `PYTHONPATH` points `refarch.*` at the copy through its `.typecheck/refarch` symlink tree
(the editable install would otherwise import the original). Running the whole suite per lab would take minutes, so
each lab names the tiers it touches: its own infra module(s), the compliance gates, the unit tier.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from refarch.labs.catalog import LABS
from refarch.tools import lab_costs
from refarch.tools.lab_costs import copy_repository, in_copy

ROOT = Path(__file__).resolve().parents[2]
BILLS_BEFORE: dict[lab_costs.Target, dict[str, Any]] = {}   # the untouched repository's bills, computed once

# The test tiers each solution must keep green (pytest arguments, run in the solved copy).
SUITES: dict[str, list[str]] = {
    "01": ["tests/unit/test_config.py", "tests/infra/aws/test_network.py", "tests/infra/aws/test_gates.py",
           "-k", "dev or config"],
    "02": ["tests/infra/aws/test_network.py", "tests/infra/aws/test_gates.py", "-k", "dev"],
    "03": ["tests/unit/test_config.py", "tests/infra/aws/test_network.py", "tests/infra/aws/test_web.py",
           "tests/infra/aws/test_gates.py", "-k", "dev or config"],
    "04": ["tests/infra/aws/test_identity.py", "tests/infra/aws/test_gates.py", "-k", "prod and not pilot_light"],
    "05": ["tests/unit/test_config.py", "tests/infra/aws/test_messaging.py", "-k", "dev or config"],
    "06": ["tests/unit", "tests/infra/aws/test_backup.py", "-k", "dev or not infra"],
    "07": ["tests/infra/aws/test_chat.py", "tests/infra/aws/test_gates.py", "-k", "dev"],
    "08": ["tests/unit", "tests/infra/aws/test_dr.py"],
    "09": ["tests/infra/azure/test_stack.py", "tests/infra/azure/test_policies.py"],
    "10": ["tests/infra/azure/test_stack.py", "tests/infra/azure/test_package.py",
           "tests/infra/azure/test_policies.py"],
}


@pytest.mark.parametrize("number", LABS)
def test_grader_fails_on_the_untouched_repository(number: str) -> None:
    checks = LABS[number].grade()
    assert checks and not all(result.passed for result in checks)
    assert all(result.hint for result in checks if not result.passed)


@pytest.mark.parametrize("number", LABS)
def test_solution_passes_the_grader_and_keeps_the_suite_green(number: str, tmp_path: Path) -> None:
    lab = LABS[number]
    copy = copy_repository(tmp_path / "repo")
    subprocess.run(["git", "apply", str(lab.solution.relative_to(ROOT))], cwd=copy, check=True)
    graded = in_copy(copy, "-m", "refarch.tools.cli", "lab", number)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert "FAIL" not in graded.stdout and "lab complete" in graded.stdout
    suite = in_copy(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES[number])
    assert suite.returncode == 0, suite.stdout[-4000:] + suite.stderr[-2000:]
    assert " passed" in suite.stdout
    # The lab page states what the change does to the bill: the same calculator, before and after, must agree.
    sections = []
    for target in lab_costs.targets(lab.solution):
        if target not in BILLS_BEFORE:
            BILLS_BEFORE[target] = lab_costs.bill(ROOT, target)
        sections.append(lab_costs.impact(target, BILLS_BEFORE[target], lab_costs.bill(copy, target)))
    page = lab_costs.page_of(number).read_text(encoding="utf-8")
    assert lab_costs.block(sections) in page, (
        f"{lab_costs.page_of(number).name}'s bill impact is out of date: run `{lab_costs.COMMAND}`")


def test_every_lab_names_the_tests_its_solution_must_keep_green() -> None:
    assert set(SUITES) == set(LABS)


def test_make_lab_prints_pass_fail_lines_and_exits_1_until_done() -> None:
    graded = in_copy(ROOT, "-m", "refarch.tools.cli", "lab", "10")
    assert graded.returncode == 1
    lines = graded.stdout.splitlines()
    assert lines[0] == "Lab 10: Functions identity-based connections (no keys)"
    assert any(line.startswith("  PASS  ") for line in lines) and any(line.startswith("  FAIL  ") for line in lines)
    assert any(line.strip().startswith("hint: ") for line in lines)
    assert lines[-1].startswith("4/6 checks pass in ")


def test_unknown_lab_is_one_line_and_exit_2() -> None:
    graded = in_copy(ROOT, "-m", "refarch.tools.cli", "lab", "99")
    assert graded.returncode == 2
    assert graded.stderr.strip() == "refarch: error: there is no lab '99' (labs: 01, 02, 03, 04, 05, 06, 07, 08, 09, " \
                                    "10; see docs/labs/)"
