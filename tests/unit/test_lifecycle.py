"""S3 lifecycle minimums and AWS Backup's cold-storage rule, as pure functions (the future `refarch calc lifecycle`)."""

from __future__ import annotations

import pytest
from refarch.constructs.aws.lifecycle import (
    MINIMUM_STORAGE_DAYS,
    StorageClass,
    Transition,
    backup_rule_problems,
    check_lifecycle,
    lifecycle_problems,
    parse_transition,
)


def rule(*transitions: str) -> list[Transition]:
    return [parse_transition(text) for text in transitions]


def test_minimum_storage_durations_are_the_documented_ones() -> None:
    assert {c.value: d for c, d in MINIMUM_STORAGE_DAYS.items()} == {
        "STANDARD_IA": 30, "ONEZONE_IA": 30, "GLACIER_IR": 90, "GLACIER": 90, "DEEP_ARCHIVE": 180}


@pytest.mark.parametrize(("transitions", "expire"), [
    ((), 35),
    (("GLACIER_IR:30",), 120),
    (("GLACIER:30", "DEEP_ARCHIVE:120"), 2557),
    (("STANDARD_IA:30", "GLACIER_IR:60", "DEEP_ARCHIVE:150"), 330),
    (("GLACIER:0",), 90),       # Glacier classes accept day 0
    (("ONEZONE_IA:30",), None),
])
def test_valid_rules(transitions: tuple[str, ...], expire: int | None) -> None:
    assert check_lifecycle(rule(*transitions), expire).as_dict() == {"valid": True, "problems": []}


@pytest.mark.parametrize(("transitions", "expire", "expected"), [
    (("STANDARD_IA:29",), None, "STANDARD_IA at day 29: S3 moves objects to Standard-IA only once they are at "
                                "least 30 days old (move at day 30 or later)"),
    (("ONEZONE_IA:0",), None, "One Zone-IA only once they are at least 30 days old"),
    (("GLACIER_IR:30",), 90, "expiry at day 90 after GLACIER_IR at day 30: Glacier Instant Retrieval has a 90-day "
                             "minimum storage duration (expire at day 120 or later)"),
    (("STANDARD_IA:30", "GLACIER:45"), None, "GLACIER at day 45 after STANDARD_IA at day 30: Standard-IA has a "
                                             "30-day minimum storage duration (move at day 60 or later)"),
    (("GLACIER:30", "DEEP_ARCHIVE:119"), None, "Glacier Flexible Retrieval has a 90-day minimum storage duration "
                                               "(move at day 120 or later)"),
    (("DEEP_ARCHIVE:30",), 209, "Glacier Deep Archive has a 180-day minimum storage duration (expire at day 210"),
    (("GLACIER:30", "GLACIER_IR:200"), None, "S3 only moves objects down the waterfall"),
    ((), 0, "S3 expires objects 1 day old or older"),
])
def test_each_broken_rule_names_itself_and_its_minimum(transitions: tuple[str, ...], expire: int | None,
                                                       expected: str) -> None:
    result = check_lifecycle(rule(*transitions), expire)
    assert result.valid is False
    assert len(result.problems) == 1 and expected in result.problems[0]
    assert "\n" not in result.problems[0]


def test_negative_days_are_refused() -> None:
    [problem] = lifecycle_problems([Transition(storage_class=StorageClass.GLACIER, after_days=-1)], None)
    assert "GLACIER at day -1: days cannot be negative" in problem


def test_every_problem_is_reported() -> None:
    assert len(lifecycle_problems(rule("STANDARD_IA:10", "GLACIER:20"), 30)) == 3


@pytest.mark.parametrize(("text", "expected"), [
    ("GLACIER_IR:30", Transition(storage_class=StorageClass.GLACIER_IR, after_days=30)),
    ("deep_archive:120", Transition(storage_class=StorageClass.DEEP_ARCHIVE, after_days=120)),
])
def test_parse_transition(text: str, expected: Transition) -> None:
    assert parse_transition(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("GLACIER", "is not CLASS:DAYS"), ("GLACIER:abc", "is not CLASS:DAYS"),
    ("INTELLIGENT:30", "'INTELLIGENT' is not a lifecycle storage class (allowed: STANDARD_IA"),
])
def test_parse_transition_refuses_bad_input(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_transition(text)


def test_backup_cold_storage_keeps_90_days() -> None:
    assert backup_rule_problems(move_to_cold_storage_after_days=30, delete_after_days=120) == []
    assert backup_rule_problems(move_to_cold_storage_after_days=None, delete_after_days=7) == []
    [problem] = backup_rule_problems(move_to_cold_storage_after_days=30, delete_after_days=119)
    assert "at least 90 days (delete at day 120 or later)" in problem
