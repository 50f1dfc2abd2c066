"""Abuse limits from config: open bookings per client, booking changes per hour, paged session lists."""

from __future__ import annotations

import pytest

from .conftest import ApiLauncher, RunningApi
from .people import Identity, book, listed_therapist, slot, unique

LIMITS = {"MAX_OPEN_BOOKINGS": "2", "BOOKING_CHANGES_PER_HOUR": "4", "SESSIONS_PAGE_SIZE": "2"}


@pytest.fixture(scope="module")
def limited(launcher: ApiLauncher) -> RunningApi:
    return launcher.start(database="selfnest_abuse_limits", environment=LIMITS)


def test_a_client_holds_at_most_the_configured_open_bookings(limited: RunningApi, identity: Identity) -> None:
    therapist, client = listed_therapist(identity, limited.client), identity.client(unique("client"))
    for hours in (80, 81):
        assert book(limited.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=hours)).status == 201
    refused = book(limited.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=82))
    assert (refused.status, refused.body["error"]) == (429, "too_many_requests")
    assert refused.detail.startswith("you already hold 2 upcoming sessions")


def test_bookings_and_cancellations_are_rate_limited_per_user(limited: RunningApi, identity: Identity) -> None:
    therapist, client = listed_therapist(identity, limited.client), identity.client(unique("client"))
    for hours in (90, 91):      # book, cancel, book, cancel: four changes within the hour
        session = book(limited.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=hours)).body
        assert limited.client.delete(f"/sessions/{session['id']}", token=client.access_token).status == 200
    refused = book(limited.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=92))
    assert (refused.status, refused.headers["Retry-After"]) == (429, "3600")
    assert refused.detail == "at most 4 bookings and cancellations per hour; try again later"


def test_session_lists_come_in_pages_of_the_configured_size(limited: RunningApi, identity: Identity) -> None:
    therapist = listed_therapist(identity, limited.client)
    for hours in (100, 101, 102):
        client = identity.client(unique("client"))
        assert book(limited.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=hours)).status == 201
    first = limited.client.get("/sessions?limit=50", token=therapist.access_token).body   # capped at the page size
    assert len(first["sessions"]) == 2 and first["next_after"] == first["sessions"][-1]["id"]
    second = limited.client.get(f"/sessions?after={first['next_after']}", token=therapist.access_token).body
    assert len(second["sessions"]) == 1 and second["next_after"] is None
    starts = [session["starts_at"] for session in first["sessions"] + second["sessions"]]
    assert starts == sorted(starts) == [slot(hours_ahead=hours) for hours in (100, 101, 102)]

