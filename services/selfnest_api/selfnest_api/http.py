"""JSON over HTTP on Starlette, served by uvicorn: routing, authentication, bodies, errors, security headers, logs.

Every route declares who may call it (nobody signed in, any signed-in user, or members of some groups); the caller
is authenticated before the handler runs — and before a byte of the body is read — so a handler cannot forget to.
The body's size is checked from its Content-Length before reading, and it must arrive within BODY_READ_SECONDS.
Handlers are synchronous (psycopg's pool, boto3): they run in Starlette's thread pool, bounded like the server.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs

import anyio
from anyio import to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import correlation, logs
from .auth import Caller, TokenVerifier
from .errors import (
    ApiError,
    ForbiddenError,
    LengthRequiredError,
    MethodNotAllowedError,
    MethodNotImplementedError,
    NotFoundError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnsupportedMediaTypeError,
)

MAX_BODY_BYTES = 16 * 1024
BODY_READ_SECONDS = 10.0        # a client trickling its body holds a connection this long at most
PUBLIC: frozenset[str] | None = None  # no sign-in needed
SIGNED_IN: frozenset[str] = frozenset()  # any signed-in user, whatever their groups
SUPPORTED_METHODS = ("GET", "PUT", "POST", "DELETE")
# On every response: no MIME sniffing, HTTPS only from the first visit on (the ALB terminates TLS; browsers ignore
# HSTS received over plain HTTP), and nothing cached (responses carry health data).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Cache-Control": "no-store",
}


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

    @property
    def patterns(self) -> list[str]:
        return list(dict.fromkeys(route.pattern for route in self._routes))

    def find(self, method: str, pattern: str) -> Route:
        """The route for `method` on `pattern` (a path Starlette already matched to one of our patterns)."""
        if method not in SUPPORTED_METHODS:
            raise MethodNotImplementedError(f"method {method} is not supported")
        allowed = [route.method for route in self._routes if route.pattern == pattern]
        for route in self._routes:
            if route.pattern == pattern and route.method == method:
                return route
        raise MethodNotAllowedError(f"{method} is not supported on {pattern}; use {', '.join(allowed)}",
                                    headers={"Allow": ", ".join(allowed)})

    def authorize(self, route: Route, authorization: str | None) -> Caller | None:
        if route.groups is PUBLIC:
            return None
        caller = self._verifier.caller_from_header(authorization)
        if route.groups and not route.groups & caller.groups:
            needed = " or ".join(sorted(route.groups))
            raise ForbiddenError(f"{route.method} {route.pattern} is for members of the {needed} group")
        return caller


def build_app(router: Router, *, worker_threads: int) -> ASGIApp:
    """The ASGI application: one Starlette route per path pattern, our JSON for every answer; at most
    `worker_threads` handlers (and token checks) run at once."""

    @asynccontextmanager
    async def bounded_thread_pool(app: Starlette) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = worker_threads
        yield

    async def endpoint(request: StarletteRequest) -> StarletteResponse:
        started = time.monotonic()
        pattern = request.scope["route"].path
        try:
            route = router.find(request.method, pattern)
            declared_length = _checked_length(request, expected=route.takes_body)
            caller = await run_in_threadpool(router.authorize, route, request.headers.get("Authorization"))
            body = await _read_body(request, declared_length) if route.takes_body else b""
            response = await run_in_threadpool(route.handler, Request(
                method=request.method, path_parameters=dict(request.path_params), body=body, caller=caller,
                query=parse_qs(request.url.query, keep_blank_values=True)))
        except ApiError as error:
            response = Response(status=error.status, body=error.body(), headers=error.headers)
        except Exception as error:  # answer 500 in our JSON shape; the class name is enough to triage
            logs.error("unhandled_error", method=request.method, route=pattern, error=type(error).__name__)
            response = Response(status=500, body={"error": "internal_error", "detail": "an unexpected error occurred"})
        # The route's pattern, never the path or its query string: ids and filters stay out of the logs.
        logs.info("request", method=request.method, route=pattern, status=response.status,
                  duration_ms=round((time.monotonic() - started) * 1000, 1))
        return _json(response)

    async def no_route(request: StarletteRequest, error: Exception) -> StarletteResponse:
        status = error.status_code if isinstance(error, HTTPException) else 500
        if request.method not in SUPPORTED_METHODS:
            problem: ApiError = MethodNotImplementedError(f"method {request.method} is not supported")
        elif status == 404:
            problem = NotFoundError(f"no route for {request.method} {request.url.path}")
        else:
            problem = ApiError("an unexpected error occurred")
        logs.info("request", method=request.method, route="(none)", status=problem.status)
        return _json(Response(status=problem.status, body=problem.body(), headers=problem.headers))

    # Every supported method reaches `endpoint`, which answers 405 with our Allow list; others get 501.
    routes = [StarletteRoute(pattern, endpoint, methods=SUPPORTED_METHODS) for pattern in router.patterns]
    app = Starlette(routes=routes, exception_handlers={HTTPException: no_route}, lifespan=bounded_thread_pool)
    return SecurityHeaders(CorrelationIds(app))


def _checked_length(request: StarletteRequest, *, expected: bool) -> int:
    """The declared body length, refused before anything is read when it is missing, malformed or too large."""
    if request.headers.get("Transfer-Encoding"):
        raise LengthRequiredError("send the body with a Content-Length header (chunked bodies are not accepted)")
    declared = request.headers.get("Content-Length")
    if declared is not None and not declared.isdigit():
        raise LengthRequiredError("the Content-Length header is not a number")
    if expected and declared is None:
        raise LengthRequiredError("send the JSON body with a Content-Length header")
    length = int(declared or 0)
    if length > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the request body is {length} bytes; the limit is {MAX_BODY_BYTES}")
    if expected:
        media_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise UnsupportedMediaTypeError("send the body as Content-Type: application/json")
    return length


async def _read_body(request: StarletteRequest, declared_length: int) -> bytes:
    received = bytearray()
    try:
        with anyio.fail_after(BODY_READ_SECONDS):
            async for chunk in request.stream():
                received += chunk
                if len(received) > declared_length:   # the server enforces Content-Length framing; belt and braces
                    raise PayloadTooLargeError(f"the request body is larger than its Content-Length "
                                               f"({declared_length} bytes)")
    except TimeoutError:
        raise RequestTimeoutError(f"the request body did not arrive within {BODY_READ_SECONDS:g} seconds") from None
    return bytes(received)


def _json(response: Response) -> StarletteResponse:
    return StarletteResponse(content=json.dumps(response.body), status_code=response.status,
                             media_type="application/json", headers=response.headers)


class CorrelationIds:
    """Gives every request a correlation id (the caller's well-formed `X-Correlation-Id`, or a new one), puts it on
    every log line written while the request is handled and returns it in the response's `X-Correlation-Id`.

    The ALB's `X-Amzn-Trace-Id` Root is logged beside it as `trace_id` (it is in the ALB's access log too) and is
    handed on to SNS with the session event, so the consumers' X-Ray traces continue the request's trace id. The
    task runs no X-Ray daemon or ADOT collector: a sidecar would cost CPU and memory in every task around the clock
    (docs/architecture.md, "Traces and correlated logs").
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        inbound = [value for name, value in scope["headers"] if name == correlation.HEADER.lower().encode()]
        trace_headers = [value for name, value in scope["headers"] if name == b"x-amzn-trace-id"]
        candidate = inbound[0].decode("latin-1") if len(inbound) == 1 else None
        correlation_id, replaced = correlation.accept_or_new(candidate)
        trace_id = correlation.trace_root(trace_headers[0].decode("latin-1")) if len(trace_headers) == 1 else None

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (correlation.HEADER.lower().encode(), correlation_id.encode())]
            await send(message)

        with logs.correlated(correlation_id, trace_id=trace_id):
            if replaced or len(inbound) > 1:
                # Never the inbound value: it is exactly what must not reach the logs.
                logs.warning("correlation_id_replaced", reason="malformed or repeated X-Correlation-Id header")
            await self._app(scope, receive, send_with_id)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response the application sends."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      *((name.lower().encode(), value.encode())
                                        for name, value in SECURITY_HEADERS.items())]
            await send(message)

        await self._app(scope, receive, send_with_headers)
