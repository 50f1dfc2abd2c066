"""Pregnancy dating (Naegele's rule): the due date is 280 days after the first day of the last menstrual period.

Gestational age counts from that day: "12 weeks 3 days" is 87 days. Trimesters follow ACOG: the first runs to
13 weeks 6 days, the second from 14 weeks 0 days to 27 weeks 6 days, the third from 28 weeks on. A pregnancy is not
expected to go beyond 42 weeks, so dates that would put today past that (or before the period began) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

PREGNANCY_DAYS = 280
LONGEST_PREGNANCY_DAYS = 42 * 7
FIRST_WEEK, LAST_WEEK = 1, 42
SECOND_TRIMESTER_FROM_DAY = 14 * 7
THIRD_TRIMESTER_FROM_DAY = 28 * 7


class ImplausibleDateError(ValueError):
    """A date that no ongoing pregnancy can have today; the message says what range is allowed."""


@dataclass(frozen=True, kw_only=True)
class PregnancyStatus:
    weeks: int  # completed weeks of gestational age
    days: int  # days into the current week, 0-6
    week_of_pregnancy: int  # the week she is in, 1-42 (what weekly content is keyed by)
    trimester: int
    days_to_due_date: int  # negative once the due date has passed

    def as_json(self) -> dict[str, int]:
        return {
            "weeks": self.weeks,
            "days": self.days,
            "weekOfPregnancy": self.week_of_pregnancy,
            "trimester": self.trimester,
            "daysToDueDate": self.days_to_due_date,
        }


def due_date_from_last_period(last_period: date) -> date:
    return last_period + timedelta(days=PREGNANCY_DAYS)


def last_period_from_due_date(due: date) -> date:
    return due - timedelta(days=PREGNANCY_DAYS)


def check_due_date(due: date, *, today: date) -> None:
    earliest = today - timedelta(days=LONGEST_PREGNANCY_DAYS - PREGNANCY_DAYS)
    latest = today + timedelta(days=PREGNANCY_DAYS)
    if not earliest <= due <= latest:
        raise ImplausibleDateError(
            f"{due.isoformat()} is outside what an ongoing pregnancy allows today "
            f"(allowed: {earliest.isoformat()} to {latest.isoformat()})"
        )


def check_last_period(last_period: date, *, today: date) -> None:
    earliest = today - timedelta(days=LONGEST_PREGNANCY_DAYS)
    if not earliest <= last_period <= today:
        raise ImplausibleDateError(
            f"{last_period.isoformat()} is outside what an ongoing pregnancy allows today "
            f"(allowed: {earliest.isoformat()} to {today.isoformat()})"
        )


def status_on(today: date, *, due: date) -> PregnancyStatus | None:
    """Where the pregnancy stands today; None once it is past 42 weeks (the profile needs updating)."""
    age_days = (today - last_period_from_due_date(due)).days
    if not 0 <= age_days <= LONGEST_PREGNANCY_DAYS:
        return None
    weeks, days = divmod(age_days, 7)
    if age_days < SECOND_TRIMESTER_FROM_DAY:
        trimester = 1
    elif age_days < THIRD_TRIMESTER_FROM_DAY:
        trimester = 2
    else:
        trimester = 3
    return PregnancyStatus(
        weeks=weeks,
        days=days,
        week_of_pregnancy=min(weeks + 1, LAST_WEEK),
        trimester=trimester,
        days_to_due_date=(due - today).days,
    )
