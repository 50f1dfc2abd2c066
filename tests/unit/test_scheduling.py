"""How `make test` cuts the suite into units of work for its pytest-xdist workers (tests/conftest.py)."""

from __future__ import annotations

from tests.conftest import unit_of_work


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
