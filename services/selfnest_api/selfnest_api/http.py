"""A small JSON-over-HTTP layer on the standard library's ThreadingHTTPServer: routing, bodies, errors, access log.

Every route declares who may call it (nobody signed in, any signed-in user, or members of some groups); the
layer authenticates before the handler runs, so a handler cannot forget to.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import logs
from .auth import Caller, TokenVerifier
from .errors import (
    ApiError,
    ForbiddenError,
    LengthRequiredError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

MAX_BODY_BYTES = 16 * 1024
PUBLIC: frozenset[str] | None = None  # no sign-in needed
SIGNED_IN: frozenset[str] = frozenset()  # any signed-in user, whatever their groups


@dataclass(frozen=True, kw_only=True)
class Request:
    method: str
    path_parameters: dict[str, str]
    query: dict[str, list[str]]
    body: bytes
    caller: Caller | None

    @property
    def signed_in(self) -> Caller:
        assert self.caller is not None  # the router authenticated: the route is not public
        return self.caller


@dataclass(frozen=True, kw_only=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


@dataclass(frozen=True, kw_only=True)
class Route:
    """`pattern` is a path with {name} placeholders for one segment each, e.g. /sessions/{session_id}."""

    method: str
    pattern: str
    handler: Handler
    groups: frozenset[str] | None  # PUBLIC, SIGNED_IN, or the groups of which the caller must be in one
    takes_body: bool = False

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(self.pattern)))

    def match(self, path: str) -> dict[str, str] | None:
        found = self._regex.fullmatch(path)
        return found.groupdict() if found else None


class Router:
    def __init__(self, *, routes: list[Route], verifier: TokenVerifier) -> None:
        self._routes = routes
        self._verifier = verifier

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = []
        for route in self._routes:
            parameters = route.match(path)
            if parameters is None:
                continue
            if route.method == method:
                return route, parameters
            allowed.append(route.method)
        if allowed:
            raise MethodNotAllowedError(f"{method} is not supported on {path}; use {', '.join(allowed)}",
                                   headers={"Allow": ", ".join(allowed)})
        raise NotFoundError(f"no route for {method} {path}")

    def authorize(self, route: Route, authorization: str | None) -> Caller | None:
        if route.groups is PUBLIC:
            return None
        caller = self._verifier.caller_from_header(authorization)
        if route.groups and not route.groups & caller.groups:
            needed = " or ".join(sorted(route.groups))
            raise ForbiddenError(f"{route.method} {route.pattern} is for members of the {needed} group")
        return caller


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow client must not keep a stopping task alive

    def __init__(self, *, address: tuple[str, int], router: Router) -> None:
        super().__init__(address, RequestHandler)
        self.router = router


class RequestHandler(BaseHTTPRequestHandler):
    server_version = "selfnest-api"
    sys_version = ""
    protocol_version = "HTTP/1.1"  # keep-alive with the load balancer; every response carries Content-Length
    server: ApiServer
    body_unread = True

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        started = time.monotonic()
        target = urlsplit(self.path)
        route_pattern = None
        self.body_unread = True
        try:
            route, parameters = self.server.router.find(self.command, target.path)
            route_pattern = route.pattern
            body = self._take_body(expected=route.takes_body)
            caller = self.server.router.authorize(route, self.headers.get("Authorization"))
            response = route.handler(Request(method=self.command, path_parameters=parameters, body=body,
                                             query=parse_qs(target.query, keep_blank_values=True), caller=caller))
        except ApiError as error:
            response = Response(status=error.status, body=error.body(), headers=error.headers)
        except Exception as error:  # answer 500 in our JSON shape; the class name is enough to triage
            logs.error("unhandled_error", method=self.command, route=route_pattern, error=type(error).__name__)
            response = Response(status=500, body={"error": "internal_error", "detail": "an unexpected error occurred"})
        if self.body_unread:
            self.close_connection = True  # unread bytes would otherwise be taken for the next request
        logs.info("request", method=self.command, route=route_pattern or "(none)", status=response.status,
                  duration_ms=round((time.monotonic() - started) * 1000, 1))
        self._send(response)

    def _take_body(self, *, expected: bool) -> bytes:
        """The JSON body when the route takes one (else an empty one, read and dropped); limits enforced first."""
        if self.headers.get("Transfer-Encoding"):
            raise LengthRequiredError("send the body with a Content-Length header (chunked bodies are not accepted)")
        declared = self.headers.get("Content-Length")
        if declared is not None and not declared.isdigit():
            raise LengthRequiredError("the Content-Length header is not a number")
        length = int(declared or 0)
        if expected and declared is None:
            raise LengthRequiredError("send the JSON body with a Content-Length header")
        if length > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"the request body is {length} bytes; the limit is {MAX_BODY_BYTES}")
        body = self.rfile.read(length) if length else b""
        self.body_unread = False
        if not expected:
            return b""
        media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise UnsupportedMediaTypeError("send the body as Content-Type: application/json")
        return body

    def _send(self, response: Response) -> None:
        payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (unknown method, malformed request line, oversized headers), in JSON."""
        self.close_connection = True
        reason = self.responses.get(code, ("error", ""))[0]
        detail = message or reason
        if code == 501:
            detail = f"method {self.command} is not supported"
        logs.info("request", method=self.command or "(unparsed)", route="(none)", status=code)
        self._send(Response(status=code, body={"error": reason.lower().replace(" ", "_"), "detail": detail}))

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default line has the raw path and query; `_handle` logs a structured line instead."""
