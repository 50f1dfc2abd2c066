"""How `make test` cuts the suite into units of work for its pytest-xdist workers (tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import conftest
from tests.conftest import unit_of_work, work_order


def test_a_test_file_is_one_unit_so_its_module_fixtures_start_once() -> None:
    assert unit_of_work("tests/local/test_make_up.py::test_up_serves_the_api") == "tests/local/test_make_up.py"
    assert (unit_of_work("tests/infra/aws/test_gates.py::test_cfn_lint_reports_no_errors_or_warnings[prod]")
            == unit_of_work("tests/infra/aws/test_gates.py::test_synth_needs_no_account_lookups[dev]"))


def test_each_lab_is_its_own_unit_holding_all_of_that_labs_cases() -> None:
    lab = "tests/labs/test_labs.py::"
    units = {unit_of_work(lab + case) for case in (
        "test_reference_solution_passes_and_keeps_the_touched_tiers_green[08]",
        "test_exactly_the_pinned_checks_fail_on_the_untouched_repository[08]",
        "test_other_answers_are_judged_on_what_they_do[08-right-0]",
        "test_other_answers_are_judged_on_what_they_do[08-wrong-1]")}
    assert len(units) == 1
    assert units != {unit_of_work(lab + "test_reference_solution_passes_and_keeps_the_touched_tiers_green[06]")}
    assert unit_of_work(lab + "test_unknown_lab_is_one_line_and_exit_2") == "tests/labs/test_labs.py"


def test_units_run_longest_first_by_the_last_record_and_keep_their_own_order() -> None:
    lab = "tests/labs/test_labs.py::test_reference_solution_passes_and_keeps_the_touched_tiers_green"
    nodeids = ["tests/unit/test_a.py::one", "tests/unit/test_a.py::two", "tests/unit/test_b.py::one",
               f"{lab}[06]", f"{lab}[15]"]
    recorded = {"tests/unit/test_a.py": 3.0, "tests/unit/test_b.py": 40.0,
                unit_of_work(f"{lab}[06]"): 20.0, unit_of_work(f"{lab}[15]"): 90.0}
    assert work_order(nodeids, recorded) == [f"{lab}[15]", "tests/unit/test_b.py::one", f"{lab}[06]",
                                             "tests/unit/test_a.py::one", "tests/unit/test_a.py::two"]


def test_without_a_record_copies_and_deployments_go_first_then_the_biggest_files() -> None:
    nodeids = ["tests/unit/test_a.py::one", "tests/unit/test_b.py::one", "tests/unit/test_b.py::two",
               "tests/local/test_make_up.py::up", "tests/infra/aws/test_new.py::one"]
    ordered = work_order(nodeids, {"tests/infra/aws/test_new.py": 1.0})
    assert ordered[0] == "tests/local/test_make_up.py::up"
    assert ordered[1] == "tests/infra/aws/test_new.py::one"   # recorded, then the unrecorded by size
    assert ordered[2:] == ["tests/unit/test_b.py::one", "tests/unit/test_b.py::two", "tests/unit/test_a.py::one"]


def test_the_record_is_merged_run_after_run_and_a_broken_one_is_ignored(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "unit-seconds.json"
    monkeypatch.setattr(conftest, "UNIT_SECONDS_FILE", record)
    assert conftest.recorded_unit_seconds() == {}
    conftest.record_unit_seconds({"a": 1.0, "b": 2.0}, {"b": 5.0})
    assert conftest.recorded_unit_seconds() == {"a": 1.0, "b": 5.0}
    record.write_text("{not json", encoding="utf-8")
    assert conftest.recorded_unit_seconds() == {}
    record.write_text(json.dumps(["a"]), encoding="utf-8")
    assert conftest.recorded_unit_seconds() == {}


@pytest.mark.parametrize("arguments", [
    ["tests/unit"], ["-k", "dev", "tests/unit"], ["-m", "slow", "tests/unit"], ["-x", "tests/unit"],
    ["--lf", "tests/unit"], ["--sw", "tests/unit"], ["--deselect", "tests/unit/test_scheduling.py::x", "tests/unit"],
    ["tests/unit/test_scheduling.py::test_a_test_file_is_one_unit_so_its_module_fixtures_start_once"]])
@pytest.mark.parametrize("exit_status", [pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED,
                                         pytest.ExitCode.INTERRUPTED])
def test_only_a_whole_run_of_its_units_is_recorded(arguments: list[str], exit_status: pytest.ExitCode,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "unit-seconds.json"
    monkeypatch.setattr(conftest, "UNIT_SECONDS_FILE", record)
    config = pytest.Config.fromdictargs({}, arguments)
    config.stash[conftest.UNIT_SECONDS] = {"tests/unit/test_b.py": 3.0}
    conftest.finish_record(SimpleNamespace(config=config, exitstatus=exit_status),  # type: ignore[arg-type]
                           {"tests/unit/test_a.py": 7.0})
    whole = arguments == ["tests/unit"] and exit_status != pytest.ExitCode.INTERRUPTED
    assert conftest.recorded_unit_seconds() == (
        {"tests/unit/test_a.py": 7.0, "tests/unit/test_b.py": 3.0} if whole else {})
