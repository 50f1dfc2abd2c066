"""Booking, listing and cancelling sessions; the events each change publishes."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from .api_client import Reply
from .conftest import RunningApi
from .people import Identity, Tokens, book, listed_therapist, slot, unique


class Events:
    """What reached the session-events topic, by session id, accumulated across drains."""

    def __init__(self, probe: Any) -> None:
        self._probe = probe
        self._seen: list[dict[str, Any]] = []

    def of(self, session_id: str) -> list[dict[str, Any]]:
        self._seen.extend(self._probe.drain())
        return [event for event in self._seen if event["session"]["id"] == session_id]


@pytest.fixture(scope="module")
def events(session_events: Any) -> Events:
    return Events(session_events)


def rows_for(api: RunningApi, *, therapist: Tokens, starts_at: str) -> list[tuple[Any, ...]]:
    with api.service.database.connection() as connection:
        return [tuple(row.values()) for row in connection.execute(
            "SELECT client_id, status FROM sessions WHERE therapist_id = %s AND starts_at = %s",
            (therapist.sub, starts_at)).fetchall()]


def test_booking_answers_201_with_the_session(api: RunningApi, identity: Identity) -> None:
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    starts_at = slot(hours_ahead=26)
    reply = book(api.client, who=client, therapist=therapist, starts_at=starts_at)
    assert reply.status == 201, reply.body
    session = reply.body
    assert reply.headers["Location"] == f"/sessions/{session['id']}"
    ends_at = (datetime.fromisoformat(starts_at) + timedelta(minutes=50)).isoformat().replace("+00:00", "Z")
    assert session == {"id": session["id"], "therapist_id": therapist.sub, "therapist_display_name": "Dr. Ada Calm",
                       "client_pseudonym": client.username, "starts_at": starts_at, "ends_at": ends_at,
                       "status": "booked", "cancelled_by": None}


def test_booking_publishes_session_booked_with_the_agreed_shape(api: RunningApi, identity: Identity,
                                                                events: Events) -> None:
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    session = book(api.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=27)).body
    [event] = events.of(session["id"])
    uuid.UUID(event["event_id"])
    datetime.fromisoformat(event["occurred_at"])
    assert event == {"event_id": event["event_id"], "type": "session.booked", "occurred_at": event["occurred_at"],
                     "session": {"id": session["id"], "therapist_id": therapist.sub, "client_id": client.sub,
                                 "starts_at": session["starts_at"], "ends_at": session["ends_at"],
                                 "status": "booked"},
                     "cancelled_by": None}


def test_each_participant_lists_the_session_and_the_therapist_sees_only_the_pseudonym(
        api: RunningApi, identity: Identity) -> None:
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    session = book(api.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=28)).body
    as_client = api.client.get("/sessions", token=client.access_token).body["sessions"]
    as_therapist = api.client.get("/sessions", token=therapist.access_token).body["sessions"]
    assert as_client == as_therapist == [session]
    assert client.sub not in str(as_therapist)
    someone_else = identity.client(unique("client"))
    assert api.client.get("/sessions", token=someone_else.access_token).body == {"sessions": [], "next_after": None}


def test_sessions_can_be_filtered_by_status(api: RunningApi, identity: Identity) -> None:
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    kept = book(api.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=29)).body
    dropped = book(api.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=30)).body
    assert api.client.delete(f"/sessions/{dropped['id']}", token=client.access_token).status == 200
    booked = api.client.get("/sessions?status=booked", token=client.access_token).body["sessions"]
    cancelled = api.client.get("/sessions?status=cancelled", token=client.access_token).body["sessions"]
    assert [session["id"] for session in booked] == [kept["id"]]
    assert [session["id"] for session in cancelled] == [dropped["id"]]


def test_a_taken_slot_is_a_409(api: RunningApi, identity: Identity) -> None:
    therapist, first, second = (listed_therapist(identity, api.client), identity.client(unique("client")),
                                identity.client(unique("client")))
    starts_at = slot(hours_ahead=31)
    assert book(api.client, who=first, therapist=therapist, starts_at=starts_at).status == 201
    reply = book(api.client, who=second, therapist=therapist, starts_at=starts_at)
    assert reply.status == 409
    assert reply.body == {"error": "conflict", "detail": "starts_at: the therapist is already booked at this time"}


def test_a_client_cannot_be_in_two_sessions_at_once(api: RunningApi, identity: Identity) -> None:
    client = identity.client(unique("client"))
    one, other = listed_therapist(identity, api.client), listed_therapist(identity, api.client)
    starts_at = slot(hours_ahead=32)
    assert book(api.client, who=client, therapist=one, starts_at=starts_at).status == 201
    reply = book(api.client, who=client, therapist=other, starts_at=starts_at)
    assert (reply.status, reply.detail) == (409, "starts_at: you already have a session at this time")


def race(attempts: list[Any]) -> list[Reply]:
    """Run every attempt at once: all threads wait at a barrier, then send together."""
    barrier = threading.Barrier(len(attempts))
    replies: list[Reply | None] = [None] * len(attempts)

    def run(index: int) -> None:
        barrier.wait()
        replies[index] = attempts[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(attempts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(reply is not None for reply in replies)
    return [reply for reply in replies if reply is not None]


@pytest.mark.parametrize("round_number", range(5))
def test_concurrent_bookings_of_one_slot_exactly_one_wins(api: RunningApi, identity: Identity, events: Events,
                                                          round_number: int) -> None:
    therapist = listed_therapist(identity, api.client)
    clients = [identity.client(unique("client")) for _ in range(8)]
    starts_at = slot(hours_ahead=40 + round_number)
    replies = race([lambda client=client: book(api.client, who=client, therapist=therapist, starts_at=starts_at)
                    for client in clients])
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [201] + [409] * (len(clients) - 1), [reply.body for reply in replies]
    [winner] = [reply.body for reply in replies if reply.status == 201]
    [(winner_id, status)] = rows_for(api, therapist=therapist, starts_at=starts_at)
    assert status == "booked"
    assert [event["type"] for event in events.of(winner["id"])] == ["session.booked"]
    assert str(winner_id) in {client.sub for client in clients}


def test_one_client_racing_for_two_therapists_at_the_same_hour_gets_one(api: RunningApi, identity: Identity) -> None:
    client = identity.client(unique("client"))
    therapists = [listed_therapist(identity, api.client) for _ in range(4)]
    starts_at = slot(hours_ahead=50)
    replies = race([lambda therapist=therapist: book(api.client, who=client, therapist=therapist, starts_at=starts_at)
                    for therapist in therapists])
    assert sorted(reply.status for reply in replies) == [201, 409, 409, 409]


def test_either_participant_can_cancel_and_the_slot_is_free_again(api: RunningApi, identity: Identity,
                                                                    events: Events) -> None:
    therapist, client, next_client = (listed_therapist(identity, api.client), identity.client(unique("client")),
                                      identity.client(unique("client")))
    starts_at = slot(hours_ahead=51)
    session = book(api.client, who=client, therapist=therapist, starts_at=starts_at).body
    cancelled = api.client.delete(f"/sessions/{session['id']}", token=therapist.access_token)
    assert cancelled.status == 200
    assert (cancelled.body["status"], cancelled.body["cancelled_by"]) == ("cancelled", "therapist")
    assert [(event["type"], event["cancelled_by"], event["session"]["status"]) for event in events.of(session["id"])] \
        == [("session.booked", None, "booked"), ("session.cancelled", "therapist", "cancelled")]

    rebooked = book(api.client, who=next_client, therapist=therapist, starts_at=starts_at)
    assert rebooked.status == 201
    by_client = api.client.delete(f"/sessions/{rebooked.body['id']}", token=next_client.access_token)
    assert (by_client.status, by_client.body["cancelled_by"]) == (200, "client")


def test_cancelling_twice_is_a_409(api: RunningApi, identity: Identity) -> None:
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    session = book(api.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=52)).body
    assert api.client.delete(f"/sessions/{session['id']}", token=client.access_token).status == 200
    again = api.client.delete(f"/sessions/{session['id']}", token=client.access_token)
    assert (again.status, again.detail) == (409, "the session is already cancelled")


def test_a_session_that_has_started_cannot_be_cancelled(api: RunningApi, identity: Identity) -> None:
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    session = book(api.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=53)).body
    with api.service.database.connection() as connection:  # time passes: the session began an hour ago
        connection.execute("UPDATE sessions SET starts_at = date_trunc('hour', now()) - interval '1 hour',"
                           " ends_at = date_trunc('hour', now()) - interval '10 minutes' WHERE id = %s",
                           (session["id"],))
    reply = api.client.delete(f"/sessions/{session['id']}", token=client.access_token)
    assert (reply.status, reply.detail) == (409, "the session has already started and can no longer be cancelled")


def test_outsiders_cannot_cancel_or_even_learn_that_a_session_exists(api: RunningApi, identity: Identity) -> None:
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    session = book(api.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=54)).body
    outsider, other_therapist = identity.client(unique("client")), listed_therapist(identity, api.client)
    for stranger in (outsider, other_therapist):
        reply = api.client.delete(f"/sessions/{session['id']}", token=stranger.access_token)
        unknown = api.client.delete(f"/sessions/{uuid.uuid4()}", token=stranger.access_token)
        assert (reply.status, reply.body) == (unknown.status, unknown.body) == (
            404, {"error": "not_found", "detail": "no session with this id among your sessions"})
    assert api.client.get("/sessions", token=client.access_token).body["sessions"][0]["status"] == "booked"
