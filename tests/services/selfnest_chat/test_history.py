"""Older history over the socket: `fetchHistory` pages back from the cursor a `joined` or `historyPage` frame gave,
only for a joined participant still allowed in the session, at a limited rate; a forged cursor reveals nothing of
another session."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from refarch.stacks.selfnest.config import WEBSOCKET_FRAME_LIMIT_BYTES

from tests.services.cognito import Identity

from .conftest import Bookings, Pair, Tables, connected, unique
from .test_chat import expire_token_of, join, message
from .websocket import Socket, WebSocketGateway

BAD_CURSOR = ("malformed_frame", "before must be the cursor a joined or historyPage frame of this session gave (or "
                                 "left out for the newest page)")


def fetch(session_id: str, before: object = None) -> dict[str, Any]:
    return {"action": "fetchHistory", "sessionId": session_id, **({} if before is None else {"before": before})}


def page_size(gateway: WebSocketGateway, size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of `size` messages, on join and on fetch alike."""
    for route in ("joinSession", "fetchHistory"):
        monkeypatch.setitem(gateway.routes[route].function.environment, "HISTORY_PAGE_MESSAGES", str(size))


def texts(frames: list[dict[str, Any]]) -> list[str]:
    return [item["text"] for frame in frames if frame["type"] == "history" for item in frame["messages"]]


def say(socket: Socket, session_id: str, *texts: str) -> None:
    for text in texts:
        [ack] = socket.send(message(session_id, text))
        assert ack["type"] == "sent", ack


def decoded(cursor: str) -> dict[str, str]:
    """What an attacker sees in a cursor: it is opaque to honest clients, not secret."""
    return dict(json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))))


def encoded(document: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def test_older_history_comes_page_by_page_until_none_is_left(pair: Pair, gateway: WebSocketGateway,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    page_size(gateway, 2, monkeypatch)
    session_id = pair.booking.session_id
    say(pair.client, session_id, "one", "two", "three", "four", "five")
    later = connected(gateway, pair.booking.therapist)
    *history, joined = later.send(join(session_id))
    assert (texts(history), joined["type"], joined["olderHistory"]) == (["four", "five"], "joined", True)

    *history, page = later.send(fetch(session_id, joined["before"]))
    assert texts(history) == ["two", "three"]
    assert page == {"type": "historyPage", "sessionId": session_id, "olderHistory": True, "before": page["before"]}
    *history, last = later.send(fetch(session_id, page["before"]))
    assert texts(history) == ["one"]
    assert last == {"type": "historyPage", "sessionId": session_id, "olderHistory": False, "before": None}
    # Without a cursor: the newest page again (a client that lost its place starts over).
    *history, newest = later.send(fetch(session_id))
    assert (texts(history), newest["olderHistory"]) == (["four", "five"], True)


def test_a_page_bigger_than_one_query_response_arrives_whole(pair: Pair, gateway: WebSocketGateway,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # DynamoDB answers a query with at most 1 MB: a page of large messages needs several calls, and stopping after
    # the first would silently drop the rest (and claim there is nothing older).
    query_response_bytes = 1024 * 1024
    send = gateway.routes["sendMessage"].function.environment
    monkeypatch.setitem(send, "MAX_FRAME_BYTES", str(WEBSOCKET_FRAME_LIMIT_BYTES))   # the largest messages there are
    envelope = len(json.dumps(message(pair.booking.session_id, "")).encode())
    text_bytes = WEBSOCKET_FRAME_LIMIT_BYTES - envelope
    count = query_response_bytes // text_bytes + 2
    monkeypatch.setitem(send, "MESSAGES_PER_MINUTE", str(count))
    monkeypatch.setitem(send, "MAX_MESSAGES_PER_SESSION", str(count))
    page_size(gateway, count, monkeypatch)
    sent = [f"{n:04d}" + "x" * (text_bytes - 4) for n in range(count)]
    say(pair.client, pair.booking.session_id, *sent)

    *history, joined = connected(gateway, pair.booking.client).send(join(pair.booking.session_id))
    assert texts(history) == sent
    assert (joined["olderHistory"], joined["before"]) == (False, None)
    # Every history frame stays below post_to_connection's 128 KB payload limit.
    assert all(len(json.dumps(frame, separators=(",", ":")).encode()) < 128 * 1024 for frame in history)


def test_a_cursor_cannot_reach_into_another_session(pair: Pair, identity: Identity, bookings: Bookings,
                                                    gateway: WebSocketGateway,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    page_size(gateway, 1, monkeypatch)
    mine = pair.booking.session_id
    say(pair.client, mine, "mine, older", "mine, newer")
    *_, joined = pair.client.send(join(mine))

    other = bookings.book(identity.therapist(unique("therapist")), identity.client(unique("client")))
    stranger = connected(gateway, other.client)
    stranger.send(join(other.session_id))
    say(stranger, other.session_id, "theirs, older", "theirs, newer")
    *_, theirs = connected(gateway, other.therapist).send(join(other.session_id))

    # Their cursor, as is: named for their session, refused in mine.
    assert pair.client.send(fetch(mine, theirs["before"])) == [{"type": "error", "code": BAD_CURSOR[0],
                                                                "detail": BAD_CURSOR[1]}]
    # Re-labelled for my session: the query stays in my session's messages, whatever key the cursor points at.
    *forged, _ = pair.client.send(fetch(mine, encoded({"s": mine, "k": decoded(theirs["before"])["k"]})))
    assert texts(forged) == ["mine, newer"]
    # Fetching their session directly: not joined to it (and not a participant).
    assert pair.client.send(fetch(other.session_id, theirs["before"])) == [{
        "type": "error", "code": "not_joined",
        "detail": f"join session {other.session_id} (joinSession) before fetching its history"}]
    assert decoded(joined["before"])["s"] == mine


def test_bad_cursors_are_refused_naming_the_field(pair: Pair) -> None:
    session_id = pair.booking.session_id
    say(pair.client, session_id, "only one")
    other_session = "00000000-0000-4000-8000-000000000000"
    valid_key = "2026-01-01T10:00:00+00:00#5f0b4b0c-6f8e-4a5e-9a53-6f7f7e0f2b11"
    cases: dict[str, object] = {
        "a number": 42,
        "empty": "",
        "not base64": "%%%not-a-cursor%%%",
        "not JSON inside": base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "a JSON list inside": encoded([]),
        "another session": encoded({"s": other_session, "k": valid_key}),
        "no message key": encoded({"s": session_id}),
        "extra fields": encoded({"s": session_id, "k": valid_key, "x": "1"}),
        "a key without a time": encoded({"s": session_id, "k": "yesterday#5f0b4b0c-6f8e-4a5e-9a53-6f7f7e0f2b11"}),
        "a key without an id": encoded({"s": session_id, "k": "2026-01-01T10:00:00+00:00#me"}),
        "too long": "A" * 4096,
    }
    for case, before in cases.items():
        assert pair.client.send(fetch(session_id, before)) == [{"type": "error", "code": BAD_CURSOR[0],
                                                                "detail": BAD_CURSOR[1]}], case
    assert pair.client.send(json.dumps({"action": "fetchHistory", "sessionId": "abc"})) == [{
        "type": "error", "code": "malformed_frame",
        "detail": "sessionId must be the id of a booked session (a UUID string)"}]


def test_only_a_joined_participant_of_an_open_session_with_a_live_token_fetches_history(
        pair: Pair, identity: Identity, bookings: Bookings, gateway: WebSocketGateway, tables: Tables) -> None:
    session_id = pair.booking.session_id
    say(pair.client, session_id, "private")
    pair.therapist.received()
    not_joined = {"type": "error", "code": "not_joined",
                  "detail": f"join session {session_id} (joinSession) before fetching its history"}
    assert connected(gateway, identity.client(unique("outsider"))).send(fetch(session_id)) == [not_joined]
    assert connected(gateway, pair.booking.client).send(fetch(session_id)) == [not_joined]   # connected, not joined

    expire_token_of(tables, pair.therapist)
    assert pair.therapist.send(fetch(session_id)) == [{
        "type": "error", "code": "token_expired", "detail": "your sign-in has expired; sign in again and reconnect"}]
    assert pair.therapist.connection_id in gateway.deleted

    bookings.cancel(pair.booking)
    assert pair.client.send(fetch(session_id)) == [{"type": "error", "code": "session_cancelled",
                                                    "detail": "this session was cancelled; its chat is closed"}]


def test_fetching_history_is_rate_limited_per_connection_apart_from_messages(
        pair: Pair, gateway: WebSocketGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    per_minute = 2
    monkeypatch.setitem(gateway.routes["fetchHistory"].function.environment, "HISTORY_PAGES_PER_MINUTE",
                        str(per_minute))
    session_id = pair.booking.session_id
    replies = [pair.client.send(fetch(session_id)) for _ in range(per_minute + 1)]
    if replies[-1][-1]["type"] == "historyPage":   # the minute turned during the loop: one more try is refused
        replies.append(pair.client.send(fetch(session_id)))
    assert replies[-1] == [{"type": "error", "code": "rate_limited",
                            "detail": f"at most {per_minute} history pages a minute on one connection; wait a "
                                      "moment and ask again"}]
    # Scrolling back does not use up what one may say.
    [ack] = pair.client.send(message(session_id, "still allowed to talk"))
    assert ack["type"] == "sent"


def test_joining_again_counts_against_the_history_page_rate(
        pair: Pair, gateway: WebSocketGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    per_minute = 2
    for route in ("joinSession", "fetchHistory"):
        monkeypatch.setitem(gateway.routes[route].function.environment, "HISTORY_PAGES_PER_MINUTE", str(per_minute))
    session_id = pair.booking.session_id
    within_one_minute()
    for _ in range(per_minute):
        pair.client.send(join(session_id))
    assert pair.client.send(fetch(session_id))[-1]["code"] == "rate_limited"


def within_one_minute(room_seconds: float = 10) -> None:
    """Wait, if need be, for a fresh minute, so the next few sends all count in the same one."""
    left = 60 - time.time() % 60
    if left < room_seconds:
        time.sleep(left + 0.1)
