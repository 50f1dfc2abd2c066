"""What clients send and receive over the chat WebSocket, and how a bad frame is answered.

Client frames are JSON objects: `{"action": "joinSession", "sessionId": ...}` and
`{"action": "sendMessage", "sessionId": ..., "text": ...}`. Every refusal is one error frame,
`{"type": "error", "code": ..., "detail": one sentence naming what is wrong}`, and nothing is stored.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

# The WebSocket subprotocol: the client offers it beside its access token; `$connect` answers with it.
SUBPROTOCOL = "selfnest.v1"
JOIN_SESSION = "joinSession"
SEND_MESSAGE = "sendMessage"
ACTIONS = (JOIN_SESSION, SEND_MESSAGE)


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
    text = document.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ChatError("malformed_frame", "text must be a non-empty string")
    return Frame(action=action, session_id=session_id, text=text)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def encode(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":")).encode("utf-8")
