"""Joining and messaging over the real WebSocket of the run's local deployment: participants only, only around the
booked time; bad frames refused with nothing stored; connections that vanished or whose token expired are dropped."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta

from tests.local_deployment import LocalDeployment, eventually
from tests.services.local_cognito import DeployedIdentity, signed_with_pool_key
from tests.services.tokens import claims_of

from .conftest import Bookings, Chat, Pair, Tables, connected, unique
from .websocket import Socket


def join(session_id: str) -> dict[str, str]:
    return {"action": "joinSession", "sessionId": session_id}


def message(session_id: str, text: str) -> dict[str, str]:
    return {"action": "sendMessage", "sessionId": session_id, "text": text}


def stored_messages(tables: Tables, session_id: str) -> list[dict[str, object]]:
    return tables.messages.items(**{tables.messages.keys[0]: session_id})


def max_frame_bytes(chat: Chat) -> int:
    return int(chat.environment("chat.send_message")["MAX_FRAME_BYTES"])


def connection_record(tables: Tables, socket: Socket | str) -> list[dict[str, object]]:
    connection_id = socket if isinstance(socket, str) else socket.connection_id
    return tables.connections.items(**{tables.connections.keys[0]: connection_id})


def test_a_message_reaches_exactly_the_other_participant_and_is_kept_for_the_retention_period(
        pair: Pair, tables: Tables, chat: Chat) -> None:
    [ack] = pair.client.send(message(pair.booking.session_id, "I slept better this week."))
    assert ack["type"] == "sent"
    [received] = pair.therapist.received()
    assert received == {"type": "message", "sessionId": pair.booking.session_id, "messageId": ack["messageId"],
                        "senderRole": "client", "sentAt": ack["sentAt"], "text": "I slept better this week."}
    assert pair.client.received() == []             # the sender is not echoed its own message

    [stored] = stored_messages(tables, pair.booking.session_id)
    assert stored["sender_id"] == pair.booking.client.sub and stored["text"] == "I slept better this week."
    retention_days = int(chat.environment("chat.send_message")["MESSAGE_RETENTION_DAYS"])
    sent_at = datetime.fromisoformat(str(stored["sent_at"]))
    assert int(str(stored[tables.messages.expiry_attribute])) == int((sent_at + timedelta(days=retention_days))
                                                                     .timestamp())

    [reply] = pair.therapist.send(message(pair.booking.session_id, "Good to hear."))
    assert reply["type"] == "sent"
    [back] = pair.client.received()
    assert (back["senderRole"], back["text"]) == ("therapist", "Good to hear.")


def test_joining_returns_the_history_to_a_participant(pair: Pair, chat: Chat) -> None:
    for text in ("first", "second"):
        pair.client.send(message(pair.booking.session_id, text))
    later = connected(chat, pair.booking.therapist)          # the therapist's second device
    history, joined = later.send(join(pair.booking.session_id))
    assert [(item["senderRole"], item["text"]) for item in history["messages"]] == [("client", "first"),
                                                                                     ("client", "second")]
    assert joined == {"type": "joined", "sessionId": pair.booking.session_id, "role": "therapist",
                      "startsAt": pair.booking.starts_at.isoformat(), "endsAt": pair.booking.ends_at.isoformat(),
                      "olderHistory": False, "before": None}


def test_a_third_user_can_neither_join_nor_send_nor_read(pair: Pair, identity: DeployedIdentity, chat: Chat,
                                                        tables: Tables) -> None:
    pair.client.send(message(pair.booking.session_id, "private"))
    pair.therapist.received()
    outsider = connected(chat, identity.client(unique("outsider")))
    assert outsider.send(join(pair.booking.session_id)) == [{
        "type": "error", "code": "not_a_participant",
        "detail": "only the client and the therapist of this session may join it"}]
    assert outsider.send(message(pair.booking.session_id, "hello?")) == [{
        "type": "error", "code": "not_joined",
        "detail": f"join session {pair.booking.session_id} (joinSession) before sending to it"}]
    assert [item["text"] for item in stored_messages(tables, pair.booking.session_id)] == ["private"]
    assert pair.client.received() == [] and pair.therapist.received() == []
    [connection] = tables.connections.items(**{tables.connections.keys[0]: outsider.connection_id})
    assert "session_id" not in connection


def test_a_connection_that_vanished_is_forgotten_when_a_message_finds_it_gone(pair: Pair, tables: Tables,
                                                                              chat: Chat) -> None:
    # A client whose network dropped: API Gateway may never run $disconnect for it, so its record stays while the
    # gateway answers 410 Gone to posts. Played by a record of the therapist's in the session whose connection
    # the emulator does not hold.
    connections = tables.connections
    [record] = connections.items(**{connections.keys[0]: pair.therapist.connection_id})
    vanished = f"{uuid.uuid4().hex[:16]}"
    chat.dynamodb.put_item(TableName=connections.name, Item={
        **{name: {"S": value} for name, value in record.items() if isinstance(value, str)},
        connections.keys[0]: {"S": vanished},
        **{name: {"N": str(value)} for name, value in record.items() if name in ("token_expires_at", "expires_at")},
        "groups": {"L": record["groups"]}})
    [ack] = pair.client.send(message(pair.booking.session_id, "are you there?"))
    assert ack["type"] == "sent"
    assert connections.items(**{connections.keys[0]: vanished}) == []
    in_session = connections.items(session_id=pair.booking.session_id)
    assert sorted(item[connections.keys[0]] for item in in_session) == sorted(
        [pair.client.connection_id, pair.therapist.connection_id])
    assert [frame["text"] for frame in pair.therapist.received()] == ["are you there?"]
    assert [item["text"] for item in stored_messages(tables, pair.booking.session_id)] == ["are you there?"]


def test_disconnect_removes_the_connection(pair: Pair, tables: Tables) -> None:
    pair.therapist.close()      # the emulator runs the $disconnect route
    eventually(lambda: connection_record(tables, pair.therapist) == [], "the connection's record removed")
    [ack] = pair.client.send(message(pair.booking.session_id, "still here"))
    assert ack["type"] == "sent"
    assert pair.client.received() == []


def test_an_oversized_frame_is_refused_and_nothing_is_stored(pair: Pair, chat: Chat,
                                                             tables: Tables) -> None:
    limit = max_frame_bytes(chat)
    frame = json.dumps(message(pair.booking.session_id, "x" * limit))
    assert pair.client.send(frame) == [{"type": "error", "code": "frame_too_large",
                                        "detail": f"the frame is {len(frame)} bytes; the limit is {limit} bytes"}]
    assert stored_messages(tables, pair.booking.session_id) == []
    assert pair.therapist.received() == []


def test_a_frame_exactly_at_the_limit_is_accepted(pair: Pair, chat: Chat) -> None:
    envelope = json.dumps(message(pair.booking.session_id, "")).encode()
    remaining = max_frame_bytes(chat) - len(envelope)
    text = "é" * (remaining // 2) + "a" * (remaining % 2)     # "é" is two bytes in UTF-8: the limit counts bytes
    frame = json.dumps(message(pair.booking.session_id, text), ensure_ascii=False)
    assert len(frame.encode()) == max_frame_bytes(chat)
    [ack] = pair.client.send(frame)
    assert ack["type"] == "sent"
    assert pair.therapist.received()[0]["text"] == text


def test_malformed_frames_are_refused_with_a_reason_and_nothing_is_stored(pair: Pair, tables: Tables) -> None:
    session_id = pair.booking.session_id
    cases = {
        "not json": ("malformed_frame", "the frame is not JSON; send a JSON object with an 'action'"),
        "[1, 2]": ("malformed_frame", "the frame must be a JSON object with an 'action'"),
        json.dumps({"text": "hi"}):
            ("unknown_action", "action None is not one of joinSession, sendMessage, fetchHistory"),
        json.dumps({"action": "shout", "sessionId": session_id}):
            ("unknown_action", "action 'shout' is not one of joinSession, sendMessage, fetchHistory"),
        json.dumps({"action": "sendMessage", "sessionId": session_id, "text": "  "}):
            ("malformed_frame", "text must be a non-empty string"),
        json.dumps({"action": "sendMessage", "sessionId": session_id, "text": 42}):
            ("malformed_frame", "text must be a non-empty string"),
        json.dumps({"action": "sendMessage", "sessionId": "abc", "text": "hi"}):
            ("malformed_frame", "sessionId must be the id of a booked session (a UUID string)"),
        json.dumps({"action": "joinSession"}):
            ("malformed_frame", "sessionId must be the id of a booked session (a UUID string)"),
    }
    for frame, (code, detail) in cases.items():
        assert pair.client.send(frame) == [{"type": "error", "code": code, "detail": detail}], frame
    assert stored_messages(tables, session_id) == []
    assert pair.therapist.received() == []


def test_a_cancelled_session_cannot_be_joined(identity: DeployedIdentity, bookings: Bookings,
                                              chat: Chat) -> None:
    booking = bookings.book(identity.therapist(unique("therapist")), identity.client(unique("client")))
    bookings.cancel(booking)
    [refusal] = connected(chat, booking.client).send(join(booking.session_id))
    assert refusal == {"type": "error", "code": "session_cancelled",
                       "detail": "this session was cancelled; its chat is closed"}


def test_a_session_opens_only_around_its_booked_time(identity: DeployedIdentity, bookings: Bookings,
                                                     chat: Chat) -> None:
    environment = chat.environment("chat.join_session")
    before = timedelta(minutes=int(environment["JOIN_MINUTES_BEFORE_START"]))
    after = timedelta(minutes=int(environment["JOIN_MINUTES_AFTER_END"]))
    therapist, client = identity.therapist(unique("therapist")), identity.client(unique("client"))

    tomorrow = bookings.book(therapist, client, starts_in=timedelta(days=1))
    [refusal] = connected(chat, client).send(join(tomorrow.session_id))
    assert refusal == {"type": "error", "code": "too_early",
                       "detail": f"this session's chat opens at {(tomorrow.starts_at - before).isoformat()}"}

    yesterday = bookings.book(therapist, client, starts_in=timedelta(days=-1))
    [refusal] = connected(chat, therapist).send(join(yesterday.session_id))
    assert refusal == {"type": "error", "code": "session_over",
                       "detail": f"this session's chat closed at {(yesterday.ends_at + after).isoformat()}"}

    opening_soon = bookings.book(therapist, client, starts_in=before - timedelta(minutes=1))
    assert connected(chat, client).send(join(opening_soon.session_id))[-1]["type"] == "joined"


def test_an_unknown_session_cannot_be_joined(pair: Pair, chat: Chat) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert pair.client.send(join(unknown)) == [{"type": "error", "code": "session_not_found",
                                                "detail": f"there is no booked session {unknown}"}]


def test_a_message_to_another_session_than_the_joined_one_is_refused(pair: Pair, identity: DeployedIdentity,
                                                                    bookings: Bookings, tables: Tables) -> None:
    other = bookings.book(identity.therapist(unique("therapist")), pair.booking.client)
    [refusal] = pair.client.send(message(other.session_id, "wrong room"))
    assert refusal["code"] == "not_joined"
    assert stored_messages(tables, other.session_id) == []


def expire_token_of(tables: Tables, socket: Socket) -> None:
    """Time passes beyond the token's expiry (its recorded expiry is moved into the past)."""
    tables.connections.dynamodb.update_item(
        TableName=tables.connections.name, Key={tables.connections.keys[0]: {"S": socket.connection_id}},
        UpdateExpression="SET token_expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}})


def test_a_connection_whose_token_expired_is_closed_on_its_next_frame(pair: Pair, tables: Tables,
                                                                     chat: Chat) -> None:
    expire_token_of(tables, pair.client)
    assert pair.client.send(message(pair.booking.session_id, "still me?")) == [{
        "type": "error", "code": "token_expired", "detail": "your sign-in has expired; sign in again and reconnect"}]
    eventually(lambda: connection_record(tables, pair.client) == [], "the connection's record removed")
    assert stored_messages(tables, pair.booking.session_id) == []
    assert pair.client.closed_by_the_server()       # DeleteConnection: the emulator closed the socket


def test_a_connection_whose_token_expired_receives_nothing_more(pair: Pair, tables: Tables) -> None:
    expire_token_of(tables, pair.therapist)
    [ack] = pair.client.send(message(pair.booking.session_id, "for the therapist only"))
    assert ack["type"] == "sent"
    assert [frame["code"] for frame in pair.therapist.received()] == ["token_expired"]
    eventually(lambda: connection_record(tables, pair.therapist) == [], "the connection's record removed")
    assert pair.therapist.closed_by_the_server()


def test_a_therapist_whose_token_no_longer_carries_the_group_can_neither_join_nor_send(
        identity: DeployedIdentity, bookings: Bookings, chat: Chat, tables: Tables,
        local_deployment: LocalDeployment) -> None:
    booking = bookings.book(identity.therapist(unique("therapist")), identity.client(unique("client")))
    joined = connected(chat, booking.therapist)
    assert joined.send(join(booking.session_id))[-1]["type"] == "joined"
    # Removed from `therapists` (or MFA turned off): the next token Cognito issues carries no therapist group.
    demoted = signed_with_pool_key(local_deployment,
                                   {**claims_of(booking.therapist.access_token), "cognito:groups": []})
    refusal = {"type": "error", "code": "not_permitted",
               "detail": "your account no longer holds the rights of a therapist in this session"}
    again = chat.connect(demoted)
    assert isinstance(again, Socket)
    assert again.send(join(booking.session_id)) == [refusal]
    # The connection opened before the removal keeps what its token said until the token expires; then it ends.
    expire_token_of(tables, joined)
    assert joined.send(message(booking.session_id, "hello"))[-1]["code"] == "token_expired"
    assert stored_messages(tables, booking.session_id) == []


def test_a_connection_sending_faster_than_its_rate_gets_an_error_frame(pair: Pair, chat: Chat,
                                                                      tables: Tables) -> None:
    per_minute = 3
    with chat.configured("chat.send_message", MESSAGES_PER_MINUTE=str(per_minute)):
        replies = [pair.client.send(message(pair.booking.session_id, f"m{n}")) for n in range(per_minute + 1)]
        if replies[-1][0]["type"] == "sent":          # the minute turned during the loop: one more try is refused
            replies.append(pair.client.send(message(pair.booking.session_id, "again")))
    assert replies[-1] == [{"type": "error", "code": "rate_limited",
                            "detail": f"at most {per_minute} messages a minute on one connection; wait a moment "
                                      "and send again"}]
    assert len(stored_messages(tables, pair.booking.session_id)) <= per_minute + 1


def test_a_session_takes_no_more_than_its_message_cap_and_joins_send_only_the_newest_page(
        pair: Pair, chat: Chat, tables: Tables) -> None:
    with chat.configured("chat.send_message", MAX_MESSAGES_PER_SESSION="3"), \
            chat.configured("chat.join_session", HISTORY_PAGE_MESSAGES="2"):
        for text in ("one", "two", "three"):
            assert pair.client.send(message(pair.booking.session_id, text))[0]["type"] == "sent"
        assert len(pair.therapist.received()) == 3
        assert pair.therapist.send(message(pair.booking.session_id, "four")) == [{
            "type": "error", "code": "session_full",
            "detail": "this session holds 3 messages, the most it may; nothing more is stored"}]
        assert [item["text"] for item in stored_messages(tables, pair.booking.session_id)] == ["one", "two", "three"]
        history, joined = connected(chat, pair.booking.client).send(join(pair.booking.session_id))
    assert [item["text"] for item in history["messages"]] == ["two", "three"]
    assert joined["olderHistory"] is True
