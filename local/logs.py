"""`python -m refarch.local follow ID` (`make follow ID=...`): every log line of one booking, in time order.

`make up`'s logs are in two places: the processes it starts write to `.local/logs/<name>.log` (the booking API's
JSON lines among them), and MiniStack writes what each Lambda function logs to its CloudWatch Logs group, as AWS
does. `gather` brings both together — it also copies each function's group into `.local/logs/lambda/<function>.log`
(so does `make down`, before it stops the emulator, whose logs live in memory), so everything is in one folder for
grep and can still be followed after `make down` — and `follow` picks the lines of one booking: given a booking
(session) id it finds the correlation ids of the requests that booked or cancelled it, and prints every line
carrying any of them, from the API and from each consumer, oldest first. Given a correlation id, the lines of that
one request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .processes import LocalError
from .selfnest import Endpoints, aws_client

# What a booking id (a UUID) or a correlation id looks like (services/selfnest_api/selfnest_api/correlation.py).
FOLLOWABLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
LAMBDA_LOGS = "lambda"
# Keys every line has or that say nothing about the booking; left out of `follow`'s output to keep lines short.
ROUTINE_KEYS = frozenset({"time", "timestamp", "level", "event", "message", "location", "service", "cold_start",
                          "function_name", "function_memory_size", "function_arn", "function_request_id",
                          "sampling_rate", "xray_trace_id"})

# Control characters a logged value may carry (JSON decodes escapes): shown escaped, never sent to the terminal.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    return CONTROL_CHARACTERS.sub(lambda found: repr(found.group())[1:-1], text)


@dataclass(frozen=True, kw_only=True)
class LogLine:
    at: datetime
    source: str                    # a process (selfnest-api) or a Lambda function (its Powertools service name)
    text: str
    fields: dict[str, Any] | None  # the JSON object, for structured lines

    def describe(self) -> str:
        if self.fields is None:
            return self.text
        what = self.fields.get("event") or self.fields.get("message") or ""
        extra = " ".join(f"{key}={value}" for key, value in self.fields.items()
                         if key not in ROUTINE_KEYS and value is not None)
        return f"{str(self.fields.get('level', '')).lower():<7} {what}  {extra}".rstrip()


def gather(state: Path) -> list[LogLine]:
    """Every line `make up`'s processes and the emulator's functions have logged. While it is up, the functions'
    groups are read from the emulator and copied to `.local/logs/lambda/`; after `make down`, from that copy."""
    logs = state / "logs"
    lines = [line for path in sorted(logs.glob("*.log")) for line in _file_lines(path)]
    if (state / "endpoints.json").is_file():
        return lines + save_function_logs(state)
    saved = sorted((logs / LAMBDA_LOGS).glob("*.log"))
    if not saved:
        raise LocalError("nothing is running here and no function logs were kept: `make up` and `make demo` first")
    return lines + [line for path in saved for line in _saved_function_lines(path)]


def save_function_logs(state: Path) -> list[LogLine]:
    """The functions' lines from the emulator, also written to `.local/logs/lambda/<function>.log` (one line each:
    time, the label `follow` shows, the line as logged)."""
    folder = state / "logs" / LAMBDA_LOGS
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for function, function_lines in _function_lines(Endpoints.load(state)).items():
        (folder / f"{function}.log").write_text(
            "".join(f"{line.at.isoformat()} {line.source} {line.text}\n" for line in function_lines),
            encoding="utf-8")
        lines += function_lines
    return lines


def follow(identifier: str, lines: Iterable[LogLine]) -> list[LogLine]:
    """The lines of the booking or request `identifier`, oldest first."""
    check_followable(identifier)
    every = list(lines)
    mentioning = [line for line in every if identifier in line.text]
    wanted = {identifier, *(str(line.fields["correlation_id"]) for line in mentioning
                            if line.fields and line.fields.get("correlation_id"))}
    return sorted((line for line in every if any(one in line.text for one in wanted)), key=lambda line: line.at)


def check_followable(identifier: str) -> None:
    if FOLLOWABLE_ID.fullmatch(identifier) is None:
        raise LocalError(f"follow: {identifier!r} is not a booking id or a correlation id "
                         "(8 to 128 letters, digits, '.', '_', ':' or '-')")


def print_followed(identifier: str, state: Path, *, say: Callable[[str], None] = print) -> int:
    check_followable(identifier)   # before anything is read: a typo is one line even when nothing is up
    followed = follow(identifier, gather(state))
    if not followed:
        raise LocalError(f"no log line mentions {identifier} (looked in {state / 'logs'} and the emulator's "
                         "function logs); `make demo` prints a booking to follow")
    width = max(len(line.source) for line in followed)
    for line in followed:
        say(f"{line.at.strftime('%H:%M:%S.%f')[:-3]}  {line.source:<{width}}  {printable(line.describe())}")
    correlation_ids = sorted({str(line.fields["correlation_id"]) for line in followed
                              if line.fields and line.fields.get("correlation_id")})
    say(f"{len(followed)} lines from {len({line.source for line in followed})} sources; correlation ids: "
        f"{', '.join(correlation_ids) or 'none'}")
    return 0


def _file_lines(path: Path) -> list[LogLine]:
    """A process's structured (JSON) lines; other lines have no time of their own to be ordered by."""
    found = []
    for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = _json_object(text)
        at = _timestamp(fields) if fields else None
        if fields is not None and at is not None:
            found.append(LogLine(at=at, source=path.stem, text=text, fields=fields))
    return found


def function_labels(endpoints: Endpoints) -> dict[str, tuple[str, str]]:
    """Each deployed function's log group → (function name, the short label `follow` shows: its Powertools service
    name, e.g. notificationsconsumer, else the function name)."""
    lambda_ = aws_client("lambda", endpoint=endpoints.emulator, region=endpoints.region)
    labels = {}
    for page in lambda_.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            name = function["FunctionName"]
            variables = (function.get("Environment") or {}).get("Variables") or {}
            group = (function.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{name}"
            labels[group] = (name, variables.get("POWERTOOLS_SERVICE_NAME") or name)
    return labels


def _saved_function_lines(path: Path) -> list[LogLine]:
    found = []
    for saved in path.read_text(encoding="utf-8", errors="replace").splitlines():
        at, source, text = [*saved.split(" ", 2), "", ""][:3]
        try:
            found.append(LogLine(at=datetime.fromisoformat(at), source=source, text=text, fields=_json_object(text)))
        except ValueError:
            continue   # not a line this module wrote
    return found


def _function_lines(endpoints: Endpoints) -> dict[str, list[LogLine]]:
    """Each deployed function's log lines from the emulator's CloudWatch Logs, keyed by function name."""
    logs = aws_client("logs", endpoint=endpoints.emulator, region=endpoints.region)
    existing = {group["logGroupName"] for page in logs.get_paginator("describe_log_groups").paginate()
                for group in page["logGroups"]}
    found: dict[str, list[LogLine]] = {}
    for group, (function, label) in sorted(function_labels(endpoints).items()):
        if group not in existing:
            continue   # never invoked yet
        lines = found.setdefault(function, [])
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
            for event in page["events"]:
                text = event["message"].rstrip("\n")
                lines.append(LogLine(at=datetime.fromtimestamp(event["timestamp"] / 1000, UTC), source=label,
                                     text=text, fields=_json_object(text)))
    return found


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _timestamp(fields: dict[str, Any]) -> datetime | None:
    value = fields.get("time") or fields.get("timestamp")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
