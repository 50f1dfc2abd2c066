"""WebSocket route handlers: `$connect`, `$disconnect`, `joinSession`, `sendMessage`, `fetchHistory` and `$default`.

Rules: only the client and the therapist of a booked, uncancelled session may join it, and only from
JOIN_MINUTES_BEFORE_START before its start to JOIN_MINUTES_AFTER_END after its end; a message is accepted, and
older history is served, only on a connection that joined that session, under the same checks; a message reaches
the session's other connections. A frame that is too large or malformed gets one error frame and nothing is stored.
Logs carry ids only — never message text or usernames.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from delivery import Delivery
from frames import (
    FETCH_HISTORY,
    JOIN_SESSION,
    SEND_MESSAGE,
    SUBPROTOCOL,
    ChatError,
    Frame,
    encode,
    history_cursor,
    parse_frame,
)
from store import BookedSession, Connection, Connections, Messages, Sessions, now_utc

logger = Logger()
OK = {"statusCode": 200}
# post_to_connection takes at most 128 KB per call: history goes out in frames comfortably below that.
HISTORY_FRAME_BYTES = 96 * 1024

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, int]]
Apply = Callable[[Frame, Connection, Delivery, datetime], None]


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayWebSocketEvent)
def connect(event: APIGatewayWebSocketEvent, context: LambdaContext) -> dict[str, Any]:
    """After the authorizer allowed the token: remember whose connection this is (by Cognito sub only), the groups
    the token carried and when it expires; answer with the subprotocol the client asked for."""
    authorizer = event.request_context.get("authorizer") or {}
    user_id, expires_at = authorizer.get("sub"), str(authorizer.get("expiresAt", ""))
    if not user_id or not expires_at.isdigit():   # unreachable behind the authorizer; refuse, store nothing
        logger.warning("connect without an authorizer context")
        return {"statusCode": 403}
    connection_id = event.request_context.connection_id
    groups = frozenset(group for group in str(authorizer.get("groups", "")).split(",") if group)
    Connections.add(connection_id, user_id=user_id, groups=groups, token_expires_at=int(expires_at), now=now_utc())
    logger.info("connected", extra={"connection_id": connection_id, "sub": user_id})
    # A browser drops a handshake whose answer names no subprotocol when it offered some.
    return {**OK, "headers": {"Sec-WebSocket-Protocol": SUBPROTOCOL}}


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayWebSocketEvent)
def disconnect(event: APIGatewayWebSocketEvent, context: LambdaContext) -> dict[str, int]:
    connection_id = event.request_context.connection_id
    Connections.remove(connection_id)
    logger.info("disconnected", extra={"connection_id": connection_id})
    return OK


def frame_route(action: str | None, apply: Apply) -> Handler:
    """A handler that parses the frame, checks it is `action`'s, applies it, and answers refusals with an error
    frame on the caller's connection (the route still succeeds: the client hears why, nothing is stored)."""

    @logger.inject_lambda_context(clear_state=True)
    @event_source(data_class=APIGatewayWebSocketEvent)
    def handler(event: APIGatewayWebSocketEvent, context: LambdaContext) -> dict[str, int]:
        request = event.request_context
        logger.append_keys(connection_id=request.connection_id, route=request.route_key)
        delivery = Delivery(request)
        try:
            frame = parse_frame(event.body, max_bytes=int(os.environ["MAX_FRAME_BYTES"]))
            if frame.action != action:   # only $default sees this: a frame API Gateway could not route
                raise ChatError("unknown_action", f"action {frame.action!r} is not served on this route")
            now = now_utc()
            connection = Connections.get(request.connection_id)
            if connection.token_expired(now):
                delivery.close(connection.connection_id, ChatError(
                    "token_expired", "your sign-in has expired; sign in again and reconnect").frame())
                return OK
            apply(frame, connection, delivery, now)
        except ChatError as refusal:
            logger.info("frame refused", extra={"code": refusal.code})
            delivery.post(request.connection_id, refusal.frame())
        return OK

    return handler


def open_session(session_id: str, connection: Connection, now: datetime) -> tuple[BookedSession, str]:
    """The session and the caller's role in it, if it is open to them and their token still grants that role."""
    session = Sessions.get(session_id)
    role = session.check_open_to(
        connection.user_id, now=now, opens_before=timedelta(minutes=int(os.environ["JOIN_MINUTES_BEFORE_START"])),
        closes_after=timedelta(minutes=int(os.environ["JOIN_MINUTES_AFTER_END"])))
    if not connection.holds(role):
        raise ChatError("not_permitted", f"your account no longer holds the rights of a {role} in this session")
    return session, role


def join(frame: Frame, connection: Connection, delivery: Delivery, now: datetime) -> None:
    session, role = open_session(frame.session_id, connection, now)
    Connections.attach(connection.connection_id, session_id=session.session_id)
    # Join sends a page too: re-joining must not be a way around the history page rate.
    Connections.count_history_page(connection.connection_id, now=now,
                                   per_minute=int(os.environ["HISTORY_PAGES_PER_MINUTE"]))
    older = post_history(delivery, connection.connection_id, session.session_id, now=now, before=None)
    delivery.post(connection.connection_id, {"type": "joined", "sessionId": session.session_id, "role": role,
                                             "startsAt": session.starts_at.isoformat(),
                                             "endsAt": session.ends_at.isoformat(), **older})
    logger.info("joined session", extra={"session_id": session.session_id, "role": role})


def fetch_older(frame: Frame, connection: Connection, delivery: Delivery, now: datetime) -> None:
    """The page of history before the frame's cursor, to a joined participant still holding their role."""
    if connection.session_id != frame.session_id:
        raise ChatError("not_joined", f"join session {frame.session_id} (joinSession) before fetching its history")
    session, _ = open_session(frame.session_id, connection, now)
    Connections.count_history_page(connection.connection_id, now=now,
                                   per_minute=int(os.environ["HISTORY_PAGES_PER_MINUTE"]))
    older = post_history(delivery, connection.connection_id, session.session_id, now=now, before=frame.before)
    delivery.post(connection.connection_id, {"type": "historyPage", "sessionId": session.session_id, **older})
    logger.info("history page sent", extra={"session_id": session.session_id})


def post_history(delivery: Delivery, connection_id: str, session_id: str, *, now: datetime,
                 before: str | None) -> dict[str, Any]:
    """Post one page of history (before the message keyed `before`, else the newest) in `history` frames; returns
    what the closing frame says: whether older messages exist and the cursor that fetches them."""
    items, has_older = Messages.history(session_id, now=now, newest=int(os.environ["HISTORY_PAGE_MESSAGES"]),
                                        before=before)
    for chunk in history_chunks([message_frame(item) for item in items]):
        delivery.post(connection_id, {"type": "history", "sessionId": session_id, "messages": chunk})
    return {"olderHistory": has_older,
            "before": history_cursor(session_id, items[0]["message_key"]) if has_older else None}


def send(frame: Frame, connection: Connection, delivery: Delivery, now: datetime) -> None:
    if connection.session_id != frame.session_id:
        raise ChatError("not_joined", f"join session {frame.session_id} (joinSession) before sending to it")
    session, role = open_session(frame.session_id, connection, now)
    assert frame.text is not None   # parse_frame guarantees text for sendMessage
    Connections.count_message(connection.connection_id, now=now, per_minute=int(os.environ["MESSAGES_PER_MINUTE"]))
    Sessions.count_message(session.session_id, cap=int(os.environ["MAX_MESSAGES_PER_SESSION"]))
    item = Messages.add(session.session_id, sender_id=connection.user_id, sender_role=role, text=frame.text,
                        now=now)
    delivered = 0
    for other in Connections.in_session(session.session_id):
        other_role = session.role_of(other.user_id)
        if other.connection_id == connection.connection_id or other_role is None or not other.holds(other_role):
            continue
        if other.token_expired(now):   # a connection does not outlive its token: closed, told why, sent nothing
            delivery.close(other.connection_id, ChatError(
                "token_expired", "your sign-in has expired; sign in again and reconnect").frame())
            continue
        delivered += delivery.post(other.connection_id, message_frame(item))
    delivery.post(connection.connection_id, {"type": "sent", "sessionId": session.session_id,
                                             "messageId": item["message_id"], "sentAt": item["sent_at"]})
    logger.info("message sent", extra={"session_id": session.session_id, "delivered": delivered})


def message_frame(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "sessionId": item["session_id"], "messageId": item["message_id"],
            "senderRole": item["sender_role"], "sentAt": item["sent_at"], "text": item["text"]}


def history_chunks(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive runs of messages whose encoded size stays under HISTORY_FRAME_BYTES (a frame is never empty)."""
    chunks: list[list[dict[str, Any]]] = []
    size = HISTORY_FRAME_BYTES
    for message in messages:
        encoded = len(encode(message)) + 1
        if size + encoded > HISTORY_FRAME_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(message)
        size += encoded
    return chunks


def refuse_unrouted(frame: Frame, connection: Connection, delivery: Delivery, now: datetime) -> None:
    raise AssertionError("frame_route(None, ...) refuses every frame before applying it")


join_session = frame_route(JOIN_SESSION, join)
send_message = frame_route(SEND_MESSAGE, send)
fetch_history = frame_route(FETCH_HISTORY, fetch_older)
default = frame_route(None, refuse_unrouted)
