"""Structured logs: one JSON object per line on stdout, for CloudWatch Logs Insights.

Callers pass only what is safe to keep: route, status, ids, error classes. Never tokens, passwords, request or
message bodies, or exception messages from the database (they can quote the values of a row).
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime

_write_lock = threading.Lock()


def log(level: str, event: str, **fields: str | int | float | bool | None) -> None:
    line = json.dumps({"time": datetime.now(UTC).isoformat(), "level": level, "event": event, **fields})
    with _write_lock:  # whole lines only, even when several request threads log at once
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def info(event: str, **fields: str | int | float | bool | None) -> None:
    log("info", event, **fields)


def warning(event: str, **fields: str | int | float | bool | None) -> None:
    log("warning", event, **fields)


def error(event: str, **fields: str | int | float | bool | None) -> None:
    log("error", event, **fields)
