"""Structured logs: one JSON object per line on stdout, for CloudWatch Logs Insights.

Callers pass only what is safe to keep: route, status, ids, error classes. Never tokens, passwords, request or
message bodies, or exception messages from the database (they can quote the values of a row).

Every line written while a request (or the relay's publication of its event) is being handled carries that
request's `correlation_id` — the id the Lambda consumers log through Powertools under the same key, so one query
(`filter correlation_id = "..."`) follows a booking across the API and every consumer.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

_write_lock = threading.Lock()
# Set per request by the HTTP layer; Starlette's thread pool copies the context into the handler's thread.
_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_trace_id: ContextVar[str | None] = ContextVar("trace_id", default=None)


def current_correlation_id() -> str | None:
    return _correlation_id.get()


def current_trace_id() -> str | None:
    return _trace_id.get()


@contextmanager
def correlated(correlation_id: str | None, *, trace_id: str | None = None) -> Iterator[None]:
    """Lines logged inside carry `correlation_id` (and the X-Ray `trace_id` when known)."""
    correlation_token, trace_token = _correlation_id.set(correlation_id), _trace_id.set(trace_id)
    try:
        yield
    finally:
        _correlation_id.reset(correlation_token)
        _trace_id.reset(trace_token)


def log(level: str, event: str, **fields: str | int | float | bool | None) -> None:
    context = {name: value for name, value in (("correlation_id", _correlation_id.get()),
                                               ("trace_id", _trace_id.get())) if value is not None}
    line = json.dumps({"time": datetime.now(UTC).isoformat(), "level": level, "event": event, **context, **fields})
    with _write_lock:  # whole lines only, even when several request threads log at once
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def info(event: str, **fields: str | int | float | bool | None) -> None:
    log("info", event, **fields)


def warning(event: str, **fields: str | int | float | bool | None) -> None:
    log("warning", event, **fields)


def error(event: str, **fields: str | int | float | bool | None) -> None:
    log("error", event, **fields)
