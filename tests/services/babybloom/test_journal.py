"""Journal: add, list by date range page by page, delete; bad input is refused whole, naming the field."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest
from babybloom_app import runtime

from .conftest import TODAY, function_app, http, principal, signed_in, snapshot

VALID = {"date": TODAY.isoformat(), "mood": 4, "symptoms": ["nausea", "fatigue"], "notes": "Walked in the park."}


def add(body: bytes | dict[str, Any], who: str) -> func.HttpResponse:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http(function_app.add_journal_entry,
                func.HttpRequest("POST", "/api/journal", headers=signed_in(who), body=payload))


def listing(who: str, **params: str) -> func.HttpResponse:
    return http(function_app.list_journal_entries,
                func.HttpRequest("GET", "/api/journal", headers=signed_in(who), params=params,
                                 body=b""))


def delete(entry_id: str, who: str) -> func.HttpResponse:
    return http(function_app.delete_journal_entry,
                func.HttpRequest("DELETE", f"/api/journal/{entry_id}", headers=signed_in(who),
                                 route_params={"entry_id": entry_id}, body=b""))


def body_of(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


def whole_range(**extra: str) -> dict[str, str]:
    return {"from": (TODAY - timedelta(days=30)).isoformat(), "to": TODAY.isoformat(), **extra}


def test_added_entry_is_listed_with_what_was_sent(services: runtime.Services) -> None:
    who = principal()
    created = add(VALID, who)
    assert created.status_code == 201
    entry = body_of(created)
    assert {key: entry[key] for key in VALID} == VALID
    assert set(entry) == {*VALID, "id", "createdAt"}  # no userId or database properties leak out
    assert body_of(listing(who, **whole_range()))["items"] == [entry]


def test_notes_of_exactly_2000_characters_are_accepted(services: runtime.Services) -> None:
    assert add({**VALID, "notes": "x" * 2000}, principal()).status_code == 201


@pytest.mark.parametrize(("body", "field"), [
    (b"{not json", "body"),
    (b"", "body"),
    (b'"a string"', "body"),
    ({**VALID, "mood": "4"}, "mood"),
    ({**VALID, "mood": 4.5}, "mood"),
    ({**VALID, "mood": True}, "mood"),
    ({**VALID, "mood": 0}, "mood"),
    ({**VALID, "mood": 6}, "mood"),
    ({key: value for key, value in VALID.items() if key != "mood"}, "mood"),
    ({**VALID, "date": "02/03/2026"}, "date"),
    ({**VALID, "date": (TODAY + timedelta(days=2)).isoformat()}, "date"),
    ({**VALID, "date": (TODAY - timedelta(days=367)).isoformat()}, "date"),
    ({**VALID, "symptoms": "nausea"}, "symptoms"),
    ({**VALID, "symptoms": ["nausea", "hiccups"]}, "symptoms[1]"),
    ({**VALID, "symptoms": ["nausea", "nausea"]}, "symptoms"),
    ({**VALID, "notes": "x" * 2001}, "notes"),
    ({**VALID, "notes": 42}, "notes"),
    ({**VALID, "userId": "someone-else"}, "userId"),
    ({**VALID, "weight": 61.5}, "weight"),
])
def test_bad_entries_are_400_naming_the_field_and_write_nothing(
    services: runtime.Services, database: Any, body: bytes | dict[str, Any], field: str
) -> None:
    before = snapshot(database)
    response = add(body, principal())
    assert response.status_code == 400
    problem = body_of(response)
    assert set(problem) == {"type", "title", "status", "detail", "errors"}
    assert field in [error["field"] for error in problem["errors"]], problem
    assert all(error["message"] for error in problem["errors"])
    assert snapshot(database) == before


def test_listing_pages_through_a_range_newest_first(services: runtime.Services) -> None:
    who = principal()
    days = [TODAY - timedelta(days=offset) for offset in range(7)]
    for day in days:
        add({**VALID, "date": day.isoformat()}, who)
    add({**VALID, "date": (TODAY - timedelta(days=20)).isoformat()}, who)  # outside the range asked for
    query = {"from": days[-1].isoformat(), "to": days[0].isoformat(), "limit": "3"}
    pages: list[list[str]] = []
    continuation = None
    while True:
        page = body_of(listing(who, **query, **({"continuation": continuation} if continuation else {})))
        pages.append([item["date"] for item in page["items"]])
        continuation = page["continuation"]
        if continuation is None:
            break
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [day for page in pages for day in page] == [day.isoformat() for day in days]


@pytest.mark.parametrize(("params", "field"), [
    ({"to": TODAY.isoformat()}, "from"),
    ({"from": TODAY.isoformat()}, "to"),
    (whole_range(limit="0"), "limit"),
    (whole_range(limit="101"), "limit"),
    (whole_range(limit="ten"), "limit"),
    ({"from": TODAY.isoformat(), "to": (TODAY - timedelta(days=1)).isoformat()}, "from"),
    ({"from": "yesterday", "to": TODAY.isoformat()}, "from"),
    (whole_range(sort="asc"), "sort"),
    (whole_range(continuation="not-a-token"), "continuation"),
])
def test_bad_listing_parameters_are_400_naming_the_parameter(services: runtime.Services, params: dict[str, str],
                                                            field: str) -> None:
    response = listing(principal(), **params)
    assert response.status_code == 400
    assert field in [error["field"] for error in body_of(response)["errors"]]


def test_a_continuation_token_only_continues_its_own_range(services: runtime.Services) -> None:
    who = principal()
    for offset in range(3):
        add({**VALID, "date": (TODAY - timedelta(days=offset)).isoformat()}, who)
    token = body_of(listing(who, **whole_range(limit="1")))["continuation"]
    assert token
    other_range = {"from": (TODAY - timedelta(days=10)).isoformat(), "to": TODAY.isoformat(), "continuation": token}
    response = listing(who, **other_range)
    assert response.status_code == 400
    assert "range" in body_of(response)["errors"][0]["message"]


def test_delete_removes_only_the_callers_entry(services: runtime.Services) -> None:
    owner, other = principal(), principal()
    entry = body_of(add(VALID, owner))
    assert delete(entry["id"], other).status_code == 404  # someone else's id is simply not there
    assert body_of(listing(owner, **whole_range()))["items"] == [entry]
    assert delete(entry["id"], owner).status_code == 204
    assert body_of(listing(owner, **whole_range()))["items"] == []
    assert delete(entry["id"], owner).status_code == 404
    assert delete("../profiles", owner).status_code == 404


def test_listing_shows_only_the_callers_entries(services: runtime.Services) -> None:
    owner, other = principal(), principal()
    mine = body_of(add(VALID, owner))
    add({**VALID, "notes": "not yours"}, other)
    assert body_of(listing(owner, **whole_range()))["items"] == [mine]
