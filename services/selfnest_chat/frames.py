"""What clients send and receive over the chat WebSocket, and how a bad frame is answered.

Client frames are JSON objects: `{"action": "joinSession", "sessionId": ...}`,
`{"action": "sendMessage", "sessionId": ..., "text": ...}` and `{"action": "fetchHistory", "sessionId": ...,
"before": ...}` (`before`: the opaque cursor a `joined` or `historyPage` frame handed out). Every refusal is one error
frame, `{"type": "error", "code": ..., "detail": one sentence naming what is wrong}`, and nothing is stored.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The WebSocket subprotocol: the client offers it beside its access token; `$connect` answers with it.
SUBPROTOCOL = "selfnest.v1"
JOIN_SESSION = "joinSession"
SEND_MESSAGE = "sendMessage"
FETCH_HISTORY = "fetchHistory"
ACTIONS = (JOIN_SESSION, SEND_MESSAGE, FETCH_HISTORY)
# A cursor names one session (a UUID) and one message key (an ISO timestamp and a UUID): far below this, encoded.
MAX_CURSOR_CHARS = 256


class ChatError(Exception):
    """A refusal the client should read: becomes an error frame on the caller's connection."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def frame(self) -> dict[str, str]:
        return {"type": "error", "code": self.code, "detail": self.detail}


@dataclass(frozen=True, kw_only=True)
class Frame:
    action: str
    session_id: str
    text: str | None = None
    before: str | None = None   # fetchHistory: the message key older history ends before (None: the newest page)


def parse_frame(body: str | None, *, max_bytes: int) -> Frame:
    """The client's frame, checked for size first (before any parsing), then for shape."""
    raw = (body or "").encode("utf-8")
    if len(raw) > max_bytes:
        raise ChatError("frame_too_large", f"the frame is {len(raw)} bytes; the limit is {max_bytes} bytes")
    try:
        document = json.loads(raw) if raw else None
    except ValueError:
        raise ChatError("malformed_frame", "the frame is not JSON; send a JSON object with an 'action'") from None
    if not isinstance(document, dict):
        raise ChatError("malformed_frame", "the frame must be a JSON object with an 'action'")
    action = document.get("action")
    if action not in ACTIONS:
        raise ChatError("unknown_action", f"action {action!r} is not one of {', '.join(ACTIONS)}")
    session_id = document.get("sessionId")
    if not isinstance(session_id, str) or not _is_uuid(session_id):
        raise ChatError("malformed_frame", "sessionId must be the id of a booked session (a UUID string)")
    if action == JOIN_SESSION:
        return Frame(action=action, session_id=session_id)
    if action == FETCH_HISTORY:
        before = document.get("before")
        return Frame(action=action, session_id=session_id,
                     before=None if before is None else message_key_of(before, session_id=session_id))
    text = document.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ChatError("malformed_frame", "text must be a non-empty string")
    return Frame(action=action, session_id=session_id, text=text)


def history_cursor(session_id: str, message_key: str) -> str:
    """The opaque `before` a client sends back for the history older than `message_key` in `session_id`."""
    document = json.dumps({"s": session_id, "k": message_key}, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(document).decode("ascii").rstrip("=")


def message_key_of(cursor: object, *, session_id: str) -> str:
    """The message key inside a cursor `history_cursor` made for `session_id`. A cursor is only read back within
    the session it names (the query stays in that session's partition whatever it says), so a forged one can at
    most pick a different point in the caller's own session; it is still checked, so a stale or foreign one is
    refused with a reason instead of answering an empty page."""
    refusal = ChatError("malformed_frame", "before must be the cursor a joined or historyPage frame of this session "
                        "gave (or left out for the newest page)")
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_CHARS:
        raise refusal
    try:
        document = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise refusal from None
    if not isinstance(document, dict) or set(document) != {"s", "k"} or document["s"] != session_id:
        raise refusal
    message_key = document["k"]
    sent_at, _, message_id = message_key.partition("#") if isinstance(message_key, str) else ("", "", "")
    if not _is_uuid(message_id) or not _is_timestamp(sent_at):
        raise refusal
    return str(message_key)


def _is_timestamp(value: str) -> bool:
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def encode(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":")).encode("utf-8")
