"""A chat client over the real WebSocket of the run's local deployment, as the app connects
(`new WebSocket(url, ["selfnest.v1", token])`, refarch.local.demo's Scenario.connect_chat).

MiniStack serves the deployed API: the route selection expression, the `$connect` authorizer (401 without the
identity source, 403 on Deny, 500 when it fails), `$default`, `$disconnect` on close, and the `@connections`
callbacks the handlers post to, delivered to this socket (410 Gone for a connection it does not hold).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

SUBPROTOCOL = Subprotocol("selfnest.v1")
ANSWERS = ("joined", "sent", "historyPage", "error")   # the frame that ends the answer to a client's frame
QUIET_SECONDS = 0.7     # a handler posts to the other participants before it answers the sender
ANSWER_SECONDS = 30


@dataclass(frozen=True)
class Refusal:
    """The handshake failed: 401 (no identity source), 403 (authorizer denied) or 500 (authorizer failed)."""

    status: int


@dataclass
class Socket:
    connection: ClientConnection
    connection_id: str
    subprotocol: str | None
    _pending: list[dict[str, Any]] = field(default_factory=list)

    def send(self, frame: dict[str, Any] | str) -> list[dict[str, Any]]:
        """Send a frame (a dict is JSON-encoded, a str goes as is); returns the frames that answer it, up to and
        including the one that ends the answer (joined, sent, historyPage or error). Messages from others wait for
        `received`."""
        self.connection.send(frame if isinstance(frame, str) else json.dumps(frame, ensure_ascii=False))
        answer: list[dict[str, Any]] = []
        deadline = time.monotonic() + ANSWER_SECONDS
        while time.monotonic() < deadline:
            got: dict[str, Any] = json.loads(self.connection.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if got.get("type") == "message":
                self._pending.append(got)
                continue
            answer.append(got)
            if got.get("type") in ANSWERS:
                return answer
        raise AssertionError(f"no answer to {frame!r} within {ANSWER_SECONDS}s (got {answer})")

    def received(self) -> list[dict[str, Any]]:
        """What reached this socket since the last look, once nothing more arrives for a moment."""
        frames, self._pending = self._pending, []
        try:
            while True:
                frames.append(json.loads(self.connection.recv(timeout=QUIET_SECONDS)))
        except (TimeoutError, ConnectionClosed):
            return frames

    def closed_by_the_server(self, *, seconds: float = 10) -> bool:
        """Whether the server closed this connection (DeleteConnection), reading whatever it sent before."""
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                self._pending.append(json.loads(self.connection.recv(timeout=max(deadline - time.monotonic(),
                                                                                   0.1))))
        except ConnectionClosed:
            return True
        except TimeoutError:
            return False
        return False

    def close(self) -> None:
        self.connection.close()


def open_socket(url: str, token: str | None, *, raw_subprotocols: str | None = None
                ) -> tuple[ClientConnection | None, Refusal | None]:
    """A handshake offering `selfnest.v1` and `token`, or (token None) exactly the Sec-WebSocket-Protocol header
    `raw_subprotocols` (none at all when that is None too)."""
    headers = {} if raw_subprotocols is None else {"Sec-WebSocket-Protocol": raw_subprotocols}
    try:
        return connect(url, subprotocols=[SUBPROTOCOL, Subprotocol(token)] if token is not None else None,
                       additional_headers=headers, open_timeout=30, legacy=True), None
    except InvalidStatus as refused:
        return None, Refusal(status=refused.response.status_code)
