"""The GFS retention calculator: steady-state restore points and storage per class."""

from __future__ import annotations

import pytest
from refarch.constructs.aws.gfs import CADENCE_DAYS, GenerationPolicy, steady_state, storage_by_class


def test_daily_keeps_one_restore_point_per_day_of_retention() -> None:
    footprint = steady_state(GenerationPolicy(name="daily", every_days=1, expire_after_days=35))
    assert footprint.restore_points == 35
    assert footprint.points_by_class == {"STANDARD": 35}
    assert footprint.oldest_restore_point_days == 34


def test_weekly_splits_between_standard_and_glacier_ir() -> None:
    footprint = steady_state(GenerationPolicy(name="weekly", every_days=7, expire_after_days=120,
                                              transitions=(("GLACIER_IR", 30),)))
    # Ages 0, 7, 14, 21, 28 in Standard; 35 ... 119 in Glacier IR.
    assert footprint.points_by_class == {"STANDARD": 5, "GLACIER_IR": 13}
    assert footprint.restore_points == 18


def test_monthly_seven_years() -> None:
    footprint = steady_state(GenerationPolicy(name="monthly", every_days=CADENCE_DAYS["monthly"],
                                              expire_after_days=2557,
                                              transitions=(("GLACIER", 30), ("DEEP_ARCHIVE", 120))))
    assert footprint.points_by_class == {"STANDARD": 1, "GLACIER": 3, "DEEP_ARCHIVE": 81}
    assert footprint.restore_points == 85    # 7 years of months, plus the one just taken
    assert footprint.gib_by_class(10) == {"STANDARD": 10, "GLACIER": 30, "DEEP_ARCHIVE": 810}


def test_storage_adds_up_across_generations() -> None:
    footprints = [steady_state(GenerationPolicy(name="daily", every_days=1, expire_after_days=7)),
                  steady_state(GenerationPolicy(name="weekly", every_days=7, expire_after_days=35,
                                                transitions=(("GLACIER_IR", 14),)))]
    assert storage_by_class(footprints, 2.0) == {"STANDARD": 7 * 2 + 2 * 2, "GLACIER_IR": 3 * 2}


@pytest.mark.parametrize("policy", [
    {"every_days": 0, "expire_after_days": 10},
    {"every_days": 1, "expire_after_days": 10, "transitions": (("GLACIER", 10),)},
    {"every_days": 1, "expire_after_days": 100, "transitions": (("DEEP_ARCHIVE", 50), ("GLACIER", 10))},
])
def test_inconsistent_policies_are_refused(policy: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="bad"):
        GenerationPolicy(name="bad", **policy)  # type: ignore[arg-type]
