"""`make follow`'s choice of lines, on lines shaped like the API's and Powertools' (the deployment itself is in
test_make_up.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from refarch.local.logs import LogLine, follow, gather, printable
from refarch.local.processes import LocalError

BOOKING = "6b676c1e-cd87-4e17-bcf1-cf789f22d18b"
BOOKED_BY, CANCELLED_BY, OTHER = "booking-request-1", "cancel-request-22", "someone-else-333"
START = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def line(seconds: int, source: str, **fields: Any) -> LogLine:
    text = json.dumps(fields)
    return LogLine(at=START + timedelta(seconds=seconds), source=source, text=text, fields=fields)


LINES = [
    line(5, "audit", message="audit record written", correlation_id=BOOKED_BY, session_id=BOOKING),
    line(1, "selfnest-api", event="session_booked", correlation_id=BOOKED_BY, session_id=BOOKING),
    line(2, "selfnest-api", event="session_event_published", correlation_id=BOOKED_BY, event_id="e1"),
    line(3, "selfnest-api", event="request", correlation_id=BOOKED_BY, route="/sessions", status=201),
    line(4, "selfnest-api", event="request", correlation_id=OTHER, route="/therapists", status=200),
    line(9, "selfnest-api", event="session_cancelled", correlation_id=CANCELLED_BY, session_id=BOOKING),
    line(10, "notifications", message="inbox notifications written", correlation_id=CANCELLED_BY),
]


def test_a_booking_id_brings_every_line_of_the_requests_that_booked_and_cancelled_it_oldest_first() -> None:
    followed = follow(BOOKING, LINES)
    assert [item.at for item in followed] == sorted(item.at for item in followed)
    assert {item.fields["correlation_id"] for item in followed if item.fields} == {BOOKED_BY, CANCELLED_BY}
    # Lines without the booking's id are found through their request's correlation id.
    assert any(item.fields and item.fields.get("route") == "/sessions" for item in followed)
    assert len(followed) == len(LINES) - 1


def test_a_correlation_id_brings_that_one_request() -> None:
    followed = follow(CANCELLED_BY, LINES)
    assert [item.source for item in followed] == ["selfnest-api", "notifications"]


def test_an_id_that_is_no_id_is_refused_in_one_line() -> None:
    with pytest.raises(LocalError, match=r"^follow: 'x y' is not a booking id or a correlation id"):
        follow("x y", LINES)


def test_a_line_prints_its_event_and_the_fields_that_matter() -> None:
    shown = line(0, "audit", level="INFO", message="audit record written", correlation_id=BOOKED_BY,
                 service="auditconsumer", cold_start=True, session_id=BOOKING).describe()
    assert shown == f"info    audit record written  correlation_id={BOOKED_BY} session_id={BOOKING}"


def test_after_make_down_the_kept_function_logs_are_followed(tmp_path: Path) -> None:
    state = tmp_path / ".local"
    (state / "logs" / "lambda").mkdir(parents=True)
    api_line = json.dumps({"time": START.isoformat(), "level": "info", "event": "session_booked",
                           "correlation_id": BOOKED_BY, "session_id": BOOKING})
    (state / "logs" / "selfnest-api.log").write_text(f"{api_line}\nnot json, no time\n")
    consumer_line = json.dumps({"level": "INFO", "message": "audit record written", "correlation_id": BOOKED_BY})
    (state / "logs" / "lambda" / "selfnest-dev-messaging-AuditConsumerFunction.log").write_text(
        f"{(START + timedelta(seconds=3)).isoformat()} auditconsumer {consumer_line}\n")
    followed = follow(BOOKING, gather(state))
    assert [(item.source, item.fields and item.fields.get("correlation_id")) for item in followed] == [
        ("selfnest-api", BOOKED_BY), ("auditconsumer", BOOKED_BY)]


def test_with_nothing_up_and_nothing_kept_follow_says_so(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    with pytest.raises(LocalError, match="nothing is running here and no function logs were kept"):
        gather(tmp_path)


def test_control_characters_a_logged_value_carries_are_shown_escaped() -> None:
    assert printable("booked \x1b[2J\x07 done\ttab") == "booked \\x1b[2J\\x07 done\ttab"
