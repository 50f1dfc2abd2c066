"""Each grader judges what a learner did, on a pristine copy of the committed tree (whatever the working tree holds):

- on the untouched repository exactly the pinned checks fail (tests/labs/answers.py: UNTOUCHED_FAILING);
- the reference patch applies (loudly, if another change moved its lines) and passes; the test tiers it touches
  stay green in that copy;
- a different correct answer passes, and the typical wrong answer fails on the pinned checks with the concept in
  the hint.

A copy whose code is this checkout's (an answer in config or in the lab's own folder, the untouched tree) is graded
in this process against the copy's files (the graders read config and answers from the root they are given): no
new interpreter. A code answer is graded by `refarch lab NN --json` in the copy, with `PYTHONPATH` pointing
`refarch.*` at the copy's `.typecheck/refarch` symlink tree. Either grade, and a bill `refarch cost` prints in a
copy, is kept across runs under every input that can change it (tests/labs/copy_runs.py); the assertions judge it
each run. Selfnest bills of copies that run our code come from the run's shared synth of their config
(tests/infra/aws/assembly.py), and each lab's cases are one unit of work for `make test`'s workers
(tests/conftest.py), so the labs run side by side.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from refarch.labs.catalog import LABS
from refarch.labs.grading import Check, grade
from refarch.stacks.selfnest.config import load_settings
from refarch.tools import cli, cost, deployment, lab_costs, labdocs
from refarch.tools.lab_costs import SHARED, in_copy

from tests.entry_points import run_main
from tests.infra.aws.assembly import SYNTH_SOURCES, cached_synthesis
from tests.run_cache import files_digest

from .answers import ANSWERS, UNTOUCHED_FAILING, Answer
from .copy_runs import kept, run_in_copy

ROOT = Path(__file__).resolve().parents[2]
BILLS_BEFORE: dict[lab_costs.Target, dict[str, Any]] = {}   # the committed tree's bills, computed once

# The unit tests a configuration answer can change: those that read the shipped config. The others test code that
# such an answer leaves as it is, and this run already runs them on exactly that code.
UNIT_TESTS_READING_CONFIG = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests" / "unit").glob("test_*.py")
                                   if "load_settings(" in path.read_text(encoding="utf-8"))
# The test tiers each solution must keep green (pytest arguments, run in the solved copy).
SUITES: dict[str, list[str]] = {
    "01": ["tests/unit/test_config.py", "tests/infra/aws/test_network.py", "tests/infra/aws/test_gates.py",
           "-k", "dev or config"],
    "02": ["tests/infra/aws/test_network.py", "tests/infra/aws/test_gates.py", "-k", "dev"],
    "03": ["tests/unit/test_config.py", "tests/infra/aws/test_network.py", "tests/infra/aws/test_web.py",
           "tests/infra/aws/test_gates.py", "-k", "dev or config"],
    "04": ["tests/infra/aws/test_identity.py", "tests/infra/aws/test_gates.py", "-k", "prod and not pilot_light"],
    "05": ["tests/unit/test_config.py", "tests/infra/aws/test_messaging.py", "-k", "dev or config"],
    "06": [*UNIT_TESTS_READING_CONFIG, "tests/infra/aws/test_backup.py", "-k", "dev or not infra"],
    "07": ["tests/infra/aws/test_chat.py", "tests/infra/aws/test_gates.py", "-k", "dev"],
    "08": [*UNIT_TESTS_READING_CONFIG, "tests/infra/aws/test_dr.py"],
    "09": ["tests/infra/azure/test_stack.py", "tests/infra/azure/test_policies.py"],
    "10": ["tests/infra/azure/test_stack.py", "tests/infra/azure/test_package.py",
           "tests/infra/azure/test_policies.py"],
    "11": ["tests/unit/test_config.py", "tests/infra/aws/test_backup.py", "tests/infra/aws/test_dr.py",
           "-k", "dev or config"],
    "12": ["tests/infra/azure/test_stack.py", "tests/infra/azure/test_policies.py"],
    "13": ["tests/infra/aws/test_chat.py", "tests/infra/aws/test_gates.py", "-k", "dev"],
    "15": ["tests/unit/test_config.py", "tests/infra/aws/test_dr.py"],
}
SUITES["14"] = ["tests/infra/aws/test_chat.py", "tests/infra/aws/test_gates.py", "-k", "dev"]


# What a grade or a Selfnest bill is made from besides config and answer files: the app, its context and locks, every
# package the install maps (pyproject's package-dir: the policies, the local deployment...), the graders (labs/*.py
# only: a lab's own folder holds what the learner writes, read from the graded root), the calculator's prices.
PACKAGE_FOLDERS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
    "package-dir"].values()
CODE = tuple(sorted({*(name for name in SYNTH_SOURCES if name != "config"), "pricing",
                     *(folder for folder in PACKAGE_FOLDERS if folder != "labs")}))


def code_digest(repository: Path) -> str:
    return files_digest([*(repository / name for name in CODE), *(repository / "labs").glob("*.py")],
                        root=repository)


def runs_our_code(repository: Path) -> bool:
    """Whether `repository` holds this checkout's app, graders and calculator (it may differ in config and in what
    a learner writes in a lab's folder only)."""
    return code_digest(repository) == CODE_HERE


CODE_HERE = code_digest(ROOT)


def bill(repository: Path, target: lab_costs.Target) -> dict[str, Any]:
    """`refarch cost --json` for `target` in `repository`. A Selfnest bill of a repository that runs our code is
    computed here, from the run's shared synth of its config (the same app, settings and context that `refarch
    cost` synthesizes; the entry a test run in that repository uses too), not by a fresh synth in a new process.
    Any other is the repository's own `refarch cost`, kept across runs under its exact inputs
    (tests/labs/copy_runs.py)."""
    if target.app != "selfnest" or not runs_our_code(repository):
        return lab_costs.bill(repository, target, run=functools.partial(
            run_in_copy, label=f"cost-{target.app}-{target.name}"))
    settings = load_settings(target.name, repository / "config")
    name = deployment.variant_name("selfnest", target.name, settings.dr.tier)
    synthesized = cached_synthesis(settings, label="-".join(name.split()[1:]), root=repository)
    return cost.aws_bill(deployment.read_cloud_assembly(synthesized.outdir, name, settings.region)).as_dict()


def pristine_copy(destination: Path) -> Path:
    """The committed tree (HEAD), not the working tree: a learner's unfinished lab changes nothing here."""
    destination.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)
    for name in SHARED:
        (ROOT / name).mkdir(exist_ok=True)
        (destination / name).symlink_to(ROOT / name)
    return destination


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = pristine_copy(tmp_path_factory.mktemp("committed") / "repo")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def graded_here(copy: Path, number: str) -> str:
    """The grade of a copy that runs our code, by this process's graders (imported as a lab is first graded)."""
    checks = grade(LABS[number], copy)
    if code_digest(ROOT) != code_digest(copy):
        raise AssertionError("this checkout's code changed during the run, so this process's graders may not be the "
                             "copy's: run the tests again")
    return json.dumps([dataclasses.asdict(result) for result in checks])


def checks_in(copy: Path, number: str) -> list[Check]:
    """The lab's grade of `copy`: in this process when the copy's code is ours (an answer in config or in the lab's
    folder, the untouched tree), else by the copy's own grader in a new process; either kept across runs under the
    copy's exact inputs."""
    if runs_our_code(copy):
        here = kept(copy, ("grade in this process", number), label=f"lab-{number}",
                    compute=lambda: graded_here(copy, number))
        return [Check(**item) for item in json.loads(here)]
    graded = run_in_copy(copy, "-m", "refarch.tools.cli", "lab", number, "--json", label=f"lab-{number}",
                         exit_codes=(0, 1))
    return [Check(**item) for item in json.loads(graded.stdout)]


def failing(checks: list[Check]) -> set[str]:
    return {result.name for result in checks if not result.passed}


def solved_copy(committed: Path, tmp_path: Path, number: str) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(committed, copy, symlinks=True)
    applied = subprocess.run(["git", "apply", "--verbose", str(LABS[number].solution.relative_to(ROOT))], cwd=copy,
                             capture_output=True, text=True, check=False)
    assert applied.returncode == 0, (
        f"lab {number}'s reference patch no longer applies to the committed tree — regenerate it from a real edit "
        f"(and check the lab's page):\n{applied.stderr}")
    return copy


@pytest.mark.parametrize("number", LABS)
def test_exactly_the_pinned_checks_fail_on_the_untouched_repository(number: str, committed: Path) -> None:
    checks = checks_in(committed, number)
    assert failing(checks) == UNTOUCHED_FAILING[number]
    assert all(result.hint and result.found for result in checks if not result.passed)
    # The page offers exactly these checks and hints (challenge first), and the walkthrough's final output.
    text = labdocs.page(LABS[number]).read_text(encoding="utf-8")
    assert labdocs.between(text, labdocs.CHALLENGE) == labdocs.challenge(LABS[number], checks), (
        "docs page out of date: run python -m refarch.tools.labdocs")
    assert labdocs.between(text, labdocs.VERIFY) == labdocs.verify(LABS[number], checks)


@pytest.mark.parametrize("number", LABS)
def test_reference_solution_passes_and_keeps_the_touched_tiers_green(number: str, committed: Path,
                                                                     tmp_path: Path) -> None:
    copy = solved_copy(committed, tmp_path, number)
    assert failing(checks_in(copy, number)) == set()
    suite = in_copy(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES[number])
    assert suite.returncode == 0, suite.stdout[-4000:] + suite.stderr[-2000:]
    assert " passed" in suite.stdout
    # The lab page states what the change does to the bill: the same calculator, before and after, must agree.
    sections = []
    for target in lab_costs.targets(LABS[number].solution):
        if target not in BILLS_BEFORE:
            BILLS_BEFORE[target] = bill(committed, target)
        sections.append(lab_costs.impact(target, BILLS_BEFORE[target], bill(copy, target)))
    page = lab_costs.page_of(number).read_text(encoding="utf-8")
    assert lab_costs.block(sections) in page, (
        f"{lab_costs.page_of(number).name}'s bill impact is out of date: run `{lab_costs.COMMAND}`")


ALL_ANSWERS = [pytest.param(number, answer, id=f"{number}-{'right' if answer.correct else 'wrong'}-{index}")
               for number, answers in ANSWERS.items() for index, answer in enumerate(answers)]


@pytest.mark.parametrize(("number", "answer"), ALL_ANSWERS)
def test_other_answers_are_judged_on_what_they_do(number: str, answer: Answer, committed: Path,
                                                  tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(committed, copy, symlinks=True)
    answer.edit(copy)
    checks = checks_in(copy, number)
    if answer.correct:
        assert failing(checks) == set(), [result for result in checks if not result.passed]
        return
    assert failing(checks) >= answer.failing, checks
    hints = " ".join(result.hint for result in checks if result.name in answer.failing)
    assert answer.concept in hints


def test_a_grade_made_while_this_checkouts_code_changed_is_refused_not_kept(committed: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "code_digest",
                        lambda repository: "edited during the run" if repository == ROOT else "committed")
    with pytest.raises(AssertionError, match="changed during the run"):
        graded_here(committed, "01")


def test_every_lab_has_a_suite_an_untouched_pin_a_correct_and_a_wrong_answer() -> None:
    assert set(SUITES) == set(LABS) == set(UNTOUCHED_FAILING) == set(ANSWERS)
    for number, answers in ANSWERS.items():
        assert {answer.correct for answer in answers} == {True, False}, number


def test_the_working_tree_does_not_matter(tmp_path: Path) -> None:
    """A learner who finished a lab (config edited, not committed) still gets a green `make test`."""
    copy = pristine_copy(tmp_path / "learner")
    subprocess.run(["git", "apply", str(LABS["03"].solution.relative_to(ROOT))], cwd=copy, check=True)
    assert failing(grade(LABS["03"], copy)) == set()
    assert failing(grade(LABS["03"], pristine_copy(tmp_path / "again"))) == UNTOUCHED_FAILING["03"]


def test_make_lab_prints_pass_fail_found_and_hint_lines_and_exits_1_until_done() -> None:
    graded = in_copy(ROOT, "-m", "refarch.tools.cli", "lab", "10")
    lines = graded.stdout.splitlines()
    assert lines[0] == "Lab 10: Functions identity-based connections (no keys)"
    assert any(line.startswith("  PASS  ") for line in lines) and any(line.startswith("  FAIL  ") for line in lines)
    assert any(line.strip().startswith("found: ") for line in lines)
    assert any(line.strip().startswith("hint: ") for line in lines)
    passed = sum(line.startswith("  PASS  ") for line in lines)
    total = passed + sum(line.startswith("  FAIL  ") for line in lines)
    assert lines[-1].startswith(f"{passed}/{total} checks pass in ")
    assert graded.returncode == (0 if passed == total else 1)


def test_a_config_mistake_is_one_failing_check_not_a_traceback(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    (copy / "config").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "prod.yaml", copy / "config" / "prod.yaml")
    text = (copy / "config" / "prod.yaml").read_text(encoding="utf-8")
    (copy / "config" / "prod.yaml").write_text(text.replace("identity:\n", "identity:\n  mfa: always\n", 1),
                                               encoding="utf-8")
    [result] = grade(LABS["04"], copy)
    assert not result.passed and result.name == "the configuration loads"
    assert "identity.mfa" in result.hint and "\n" not in result.hint


def test_unknown_lab_is_one_line_and_exit_2() -> None:
    graded = run_main(cli.main, ["lab", "99"])
    assert graded.returncode == 2
    assert graded.stderr.count("\n") == 1 and "Traceback" not in graded.stderr
    assert graded.stderr.startswith("refarch: error: there is no lab '99' (labs: 01, 02, ")
