"""Profile: dating from the due date or the last period, refusal of impossible dates, and identity."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date, timedelta
from typing import Any

import azure.functions as func
import pytest
from babybloom_app import pregnancy, runtime

from .conftest import TODAY, function_app, http, principal, signed_in, snapshot

PROFILE_URL = "/api/profile"


def put_profile(body: bytes | dict[str, Any], who: str) -> func.HttpResponse:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = func.HttpRequest("PUT", PROFILE_URL, headers=signed_in(who), body=payload)
    return http(function_app.save_profile, request)


def get_profile(who: str) -> func.HttpResponse:
    return http(function_app.read_profile,
                func.HttpRequest("GET", PROFILE_URL, headers=signed_in(who), body=b""))


def body_of(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


def test_due_date_gives_week_day_trimester_and_days_left(services: runtime.Services) -> None:
    who = principal()
    due = TODAY + timedelta(days=280 - (12 * 7 + 3))  # 12 weeks 3 days along today
    saved = put_profile({"dueDate": due.isoformat()}, who)
    assert saved.status_code == 200
    expected = {"weeks": 12, "days": 3, "weekOfPregnancy": 13, "trimester": 1, "daysToDueDate": 193}
    assert body_of(saved)["pregnancy"] == expected
    read = body_of(get_profile(who))
    assert read["pregnancy"] == expected
    assert read["dueDate"] == due.isoformat()
    assert read["lastMenstrualPeriod"] == (due - timedelta(days=280)).isoformat()
    assert read["datedBy"] == "dueDate"


def test_last_period_gives_the_due_date_280_days_later(services: runtime.Services) -> None:
    who = principal()
    last_period = TODAY - timedelta(days=200)
    saved = body_of(put_profile({"lastMenstrualPeriod": last_period.isoformat()}, who))
    assert saved["dueDate"] == (last_period + timedelta(days=280)).isoformat()
    assert saved["datedBy"] == "lastMenstrualPeriod"
    assert saved["pregnancy"] == {"weeks": 28, "days": 4, "weekOfPregnancy": 29, "trimester": 3, "daysToDueDate": 80}


def test_updating_replaces_the_profile(services: runtime.Services) -> None:
    who = principal()
    put_profile({"dueDate": (TODAY + timedelta(days=100)).isoformat()}, who)
    put_profile({"dueDate": (TODAY + timedelta(days=50)).isoformat()}, who)
    assert body_of(get_profile(who))["pregnancy"]["daysToDueDate"] == 50


@pytest.mark.parametrize(("age_days", "trimester"), [(0, 1), (13 * 7 + 6, 1), (14 * 7, 2), (27 * 7 + 6, 2),
                                                      (28 * 7, 3), (42 * 7, 3)])
def test_trimester_boundaries(age_days: int, trimester: int) -> None:
    status = pregnancy.status_on(TODAY, due=TODAY + timedelta(days=280 - age_days))
    assert status is not None
    assert status.trimester == trimester
    assert 1 <= status.week_of_pregnancy <= 42


@pytest.mark.parametrize(("field", "value"), [
    ("dueDate", TODAY + timedelta(days=281)),  # would put the last period in the future
    ("dueDate", TODAY - timedelta(days=15)),  # would be past 42 weeks today
    ("lastMenstrualPeriod", TODAY + timedelta(days=1)),
    ("lastMenstrualPeriod", TODAY - timedelta(days=42 * 7 + 1)),
])
def test_dates_no_pregnancy_allows_are_refused_and_nothing_is_written(
    services: runtime.Services, database: Any, field: str, value: date
) -> None:
    before = snapshot(database)
    response = put_profile({field: value.isoformat()}, principal())
    assert response.status_code == 400
    problem = body_of(response)
    assert problem["errors"][0]["field"] == field
    assert "allowed:" in problem["errors"][0]["message"]
    assert snapshot(database) == before


@pytest.mark.parametrize(("field", "value"), [("dueDate", TODAY + timedelta(days=280)),
                                              ("dueDate", TODAY - timedelta(days=14)),
                                              ("lastMenstrualPeriod", TODAY),
                                              ("lastMenstrualPeriod", TODAY - timedelta(days=42 * 7))])
def test_the_limits_themselves_are_accepted(services: runtime.Services, field: str, value: date) -> None:
    assert put_profile({field: value.isoformat()}, principal()).status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    (b'{"dueDate": "2026-05-01"', "body"),  # malformed JSON
    (b"[]", "body"),
    ({}, "dueDate"),  # neither date
    ({"dueDate": "2026-09-01", "lastMenstrualPeriod": "2026-01-01"}, "dueDate"),  # both
    ({"dueDate": 20260901}, "dueDate"),
    ({"dueDate": "1 September 2026"}, "dueDate"),
    ({"dueDate": "2026-09-01", "name": "Ana"}, "name"),
])
def test_bad_bodies_are_400_naming_the_field(services: runtime.Services, database: Any,
                                             body: bytes | dict[str, Any], field: str) -> None:
    before = snapshot(database)
    response = put_profile(body, principal())
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    problem = body_of(response)
    assert problem["type"] == "urn:babybloom:problem:invalid-request"
    assert problem["status"] == 400
    assert field in {error["field"] for error in problem["errors"]}
    assert field in problem["detail"]
    assert "Traceback" not in response.get_body().decode()
    assert snapshot(database) == before


def test_missing_profile_is_404(services: runtime.Services) -> None:
    response = get_profile(principal())
    assert response.status_code == 404
    assert body_of(response)["type"] == "urn:babybloom:problem:not-found"


def test_a_profile_past_42_weeks_reads_without_a_pregnancy_status(services: runtime.Services) -> None:
    who = principal()
    put_profile({"dueDate": TODAY.isoformat()}, who)
    runtime.install(dataclasses.replace(services, today=lambda: TODAY + timedelta(days=15)))
    assert body_of(get_profile(who))["pregnancy"] is None


def test_one_user_never_sees_another_users_profile(services: runtime.Services) -> None:
    owner_object_id = str(uuid.uuid4())
    owner, other = principal(owner_object_id), principal()
    put_profile({"dueDate": (TODAY + timedelta(days=90)).isoformat()}, owner)
    assert get_profile(other).status_code == 404
    # A new token for the same user (same oid) reaches the same profile: the user id is the person, not the token.
    assert get_profile(principal(owner_object_id)).status_code == 200
