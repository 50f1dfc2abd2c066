"""Bad requests get a 4xx whose detail names the field or the problem, and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import RunningApi
from .people import Identity, Tokens, listed_therapist, profile, slot, unique


@pytest.fixture(scope="module")
def therapist(api: RunningApi, identity: Identity) -> Tokens:
    return listed_therapist(identity, api.client)


@pytest.fixture(scope="module")
def client(identity: Identity) -> Tokens:
    return identity.client(unique("client"))


@pytest.fixture
def nothing_written(api: RunningApi) -> Iterator[None]:
    def snapshot() -> tuple[Any, ...]:
        with api.service.database.connection() as connection:
            counts = connection.execute("SELECT (SELECT count(*) FROM sessions) AS sessions,"
                                        " (SELECT count(*) FROM outbox_events) AS events,"
                                        " (SELECT max(updated_at) FROM therapist_profiles) AS profiles").fetchone()
        assert counts is not None
        return tuple(counts.values())

    before = snapshot()
    yield
    assert snapshot() == before


def booking(therapist: Tokens, **changes: Any) -> dict[str, Any]:
    return {"therapist_id": therapist.sub, "starts_at": slot(hours_ahead=60), **changes}


BAD_BOOKINGS = {
    "unknown field": ({"note": "hi"}, "note: unknown field"),
    "therapist id missing": ({"therapist_id": None}, "therapist_id: "),
    "therapist id not a uuid": ({"therapist_id": "dr-ada"}, "therapist_id: "),
    "starts_at a number": ({"starts_at": 1893456000}, "starts_at: "),
    "starts_at not a date": ({"starts_at": "next tuesday"}, "starts_at: "),
    "starts_at without timezone": ({"starts_at": "2030-01-07T09:00:00"}, "starts_at: needs a timezone offset"),
    "starts_at off the hour": ({"starts_at": slot(hours_ahead=60).replace(":00:00Z", ":30:00Z")},
                               "starts_at: sessions start on the hour (UTC)"),
    "starts_at in the past": ({"starts_at": "2020-01-06T09:00:00Z"}, "starts_at: must be in the future"),
    "starts_at too far ahead": ({"starts_at": slot(hours_ahead=24 * 91)}, "starts_at: must be at most 90 days ahead"),
}


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(("changes", "names"), BAD_BOOKINGS.values(), ids=BAD_BOOKINGS.keys())
def test_bad_bookings_are_400s_naming_the_field(api: RunningApi, client: Tokens, therapist: Tokens,
                                                changes: dict[str, Any], names: str) -> None:
    body = {key: value for key, value in booking(therapist, **changes).items() if value is not None}
    reply = api.client.post("/sessions", body, token=client.access_token)
    assert (reply.status, reply.body["error"]) == (400, "invalid_request")
    assert reply.detail.startswith(names), reply.detail


BAD_BODIES = {
    "not JSON": (b"{'therapist_id':", "request body: not valid JSON"),
    "a list": (b"[]", "request body: expected a JSON object"),
    "empty": (b"", "request body: not valid JSON"),
}


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(("raw", "detail"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_malformed_bodies_are_400s(api: RunningApi, client: Tokens, raw: bytes, detail: str) -> None:
    reply = api.client.call("POST", "/sessions", raw_body=raw, token=client.access_token)
    assert (reply.status, reply.detail) == (400, detail)


@pytest.mark.usefixtures("nothing_written")
def test_an_oversized_body_is_a_413(api: RunningApi, client: Tokens, therapist: Tokens) -> None:
    padded = json.dumps({**booking(therapist), "padding": "x" * 20_000}).encode()
    reply = api.client.call("POST", "/sessions", raw_body=padded, token=client.access_token)
    assert (reply.status, reply.body["error"]) == (413, "payload_too_large")
    assert "limit is 16384" in reply.detail


@pytest.mark.usefixtures("nothing_written")
def test_a_body_that_is_not_json_typed_is_a_415(api: RunningApi, client: Tokens, therapist: Tokens) -> None:
    reply = api.client.call("POST", "/sessions", raw_body=json.dumps(booking(therapist)).encode(),
                            token=client.access_token, headers={"Content-Type": "text/plain"})
    assert (reply.status, reply.body["error"]) == (415, "unsupported_media_type")


@pytest.mark.usefixtures("nothing_written")
def test_booking_an_unlisted_therapist_is_a_404(api: RunningApi, identity: Identity, client: Tokens) -> None:
    unlisted = identity.therapist(unique("therapist"))
    reply = api.client.post("/sessions", booking(unlisted), token=client.access_token)
    assert (reply.status, reply.detail) == (404, "therapist_id: no therapist with this id is listed in the directory")


BAD_PROFILES = {
    "display name missing": ({"display_name": None}, "display_name: required field is missing"),
    "display name blank": ({"display_name": "   "}, "display_name: "),
    "display name too long": ({"display_name": "x" * 81}, "display_name: "),
    "bio too long": ({"bio": "x" * 2001}, "bio: "),
    "no languages": ({"languages": []}, "languages: "),
    "language not a tag": ({"languages": ["English"]}, "languages.0: "),
    "repeated language": ({"languages": ["en", "en"]}, "languages: "),
    "specialties not a list": ({"specialties": "anxiety"}, "specialties: "),
    "unknown field": ({"email": "ada@practice.example"}, "email: unknown field"),
}


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(("changes", "names"), BAD_PROFILES.values(), ids=BAD_PROFILES.keys())
def test_bad_profiles_are_400s_naming_the_field(api: RunningApi, therapist: Tokens, changes: dict[str, Any],
                                                names: str) -> None:
    body = {key: value for key, value in profile(**changes).items() if value is not None}
    reply = api.client.put("/therapists/me", body, token=therapist.access_token)
    assert (reply.status, reply.body["error"]) == (400, "invalid_request")
    assert reply.detail.startswith(names), reply.detail


BAD_QUERIES = {
    "/sessions?status=maybe": "status: ",
    "/sessions?status=booked&status=cancelled": "status: query parameter given more than once",
    "/sessions?sort=asc": "sort: unknown query parameter",
    "/therapists?language=klingon": "language: ",
}


@pytest.mark.parametrize(("path", "names"), BAD_QUERIES.items(), ids=BAD_QUERIES.keys())
def test_bad_query_strings_are_400s_naming_the_parameter(api: RunningApi, client: Tokens, path: str,
                                                          names: str) -> None:
    reply = api.client.get(path, token=client.access_token)
    assert reply.status == 400
    assert reply.detail.startswith(names), reply.detail


def test_a_malformed_session_id_is_just_not_found(api: RunningApi, client: Tokens) -> None:
    assert api.client.delete("/sessions/not-a-uuid", token=client.access_token).status == 404
