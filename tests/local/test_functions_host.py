"""The local Functions host's timer schedule: NCRONTAB daily schedules, the next run strictly after now."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from refarch.local.functions_host import next_occurrence


def test_a_daily_schedule_fires_today_when_its_time_is_still_ahead():
    assert next_occurrence("0 0 18 * * *", datetime(2026, 3, 2, 9, 30, tzinfo=UTC)) == \
        datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def test_a_daily_schedule_fires_tomorrow_once_its_time_has_passed():
    assert next_occurrence("0 0 18 * * *", datetime(2026, 3, 2, 18, 0, tzinfo=UTC)) == \
        datetime(2026, 3, 3, 18, 0, tzinfo=UTC)


def test_schedules_the_host_cannot_run_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"schedule '0 \*/5 \* \* \* \*': the local host runs daily schedules"):
        next_occurrence("0 */5 * * * *", datetime(2026, 3, 2, tzinfo=UTC))
