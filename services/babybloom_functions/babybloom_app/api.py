"""HTTP handlers: authenticate, cap the body, validate, then touch the database; every refusal is a problem body.

Every handler runs behind `endpoint`, so none can forget authentication or the body limit. Validation happens
completely before any write, so a refused request changes nothing.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import azure.functions as func
from pydantic import ValidationError

from . import identity
from .models import JournalEntryInput, JournalRangeQuery, ProfileInput
from .pregnancy import (
    FIRST_WEEK,
    LAST_WEEK,
    ImplausibleDateError,
    check_due_date,
    check_last_period,
    due_date_from_last_period,
    last_period_from_due_date,
    status_on,
)
from .problems import (
    FieldError,
    ProblemError,
    from_validation_error,
    invalid,
    json_response,
    not_found,
    payload_too_large,
)
from .repository import InvalidCursorError, JournalCursor
from .runtime import Services
from .settings import ConfigError

# Time zones east of UTC are already on the next day while UTC is not: allow an entry dated one day ahead.
JOURNAL_FUTURE_GRACE = timedelta(days=1)
JOURNAL_OLDEST = timedelta(days=366)
ENTRY_ID = re.compile(r"[0-9a-f]{32}")
# The largest body any endpoint needs is a journal entry: 2,000 characters of notes (up to 8,000 bytes as UTF-8, more
# when JSON-escaped) plus the symptom list. 16 KiB leaves room for that and refuses anything built to exhaust memory.
MAX_BODY_BYTES = 16 * 1024
log = logging.getLogger("babybloom.api")

Handler = Callable[[func.HttpRequest, Services, str], func.HttpResponse]
Endpoint = Callable[[func.HttpRequest, Services], func.HttpResponse]


def endpoint(handler: Handler) -> Endpoint:
    """Authenticate (the caller's user id is the handler's third argument), cap the body, and turn every refusal
    into its problem response and anything unexpected into a 500 without internals."""

    @functools.wraps(handler)
    def wrapper(request: func.HttpRequest, services: Services) -> func.HttpResponse:
        try:
            user = identity.authenticate(request.headers, services.verifier,
                                         platform_authentication=services.platform_authentication)
            _check_body_size(request)
            return handler(request, services, user)
        except ProblemError as problem:
            return problem.response()
        except ValidationError as error:
            return from_validation_error(error).response()
        except ConfigError as error:
            log.error("misconfigured: %s", error)
            return _server_error().response()
        except Exception:
            log.exception("unhandled error in %s", handler.__name__)
            return _server_error().response()

    return wrapper


def _check_body_size(request: func.HttpRequest) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise payload_too_large(int(declared), MAX_BODY_BYTES)
    size = len(request.get_body() or b"")
    if size > MAX_BODY_BYTES:
        raise payload_too_large(size, MAX_BODY_BYTES)


def _server_error() -> ProblemError:
    return ProblemError(status=500, slug="server-error", title="Something went wrong",
                   detail="The request could not be completed; nothing was changed by the failed step. Try again.")


@endpoint
def read_profile(request: func.HttpRequest, services: Services, user: str) -> func.HttpResponse:
    profile = services.repository.get_profile(user)
    if profile is None:
        raise not_found("no profile yet: PUT /api/profile with dueDate or lastMenstrualPeriod")
    return json_response(_profile_view(profile, today=services.today()))


@endpoint
def save_profile(request: func.HttpRequest, services: Services, user: str) -> func.HttpResponse:
    given = ProfileInput.model_validate_json(request.get_body())
    today = services.today()
    try:
        if given.due_date is not None:
            check_due_date(given.due_date, today=today)
            due, basis = given.due_date, "dueDate"
        else:
            assert given.last_menstrual_period is not None  # the model requires exactly one
            check_last_period(given.last_menstrual_period, today=today)
            due, basis = due_date_from_last_period(given.last_menstrual_period), "lastMenstrualPeriod"
    except ImplausibleDateError as error:
        raise invalid([FieldError(field=basis_of(given), message=str(error))]) from None
    saved = services.repository.save_profile(user, {
        "dueDate": due.isoformat(),
        "lastMenstrualPeriod": last_period_from_due_date(due).isoformat(),
        "datedBy": basis,
        "updatedAt": _now(),
    })
    return json_response(_profile_view(saved, today=today))


def basis_of(given: ProfileInput) -> str:
    return "dueDate" if given.due_date is not None else "lastMenstrualPeriod"


def _profile_view(profile: dict[str, Any], *, today: date) -> dict[str, Any]:
    status = status_on(today, due=date.fromisoformat(profile["dueDate"]))
    return {
        "dueDate": profile["dueDate"],
        "lastMenstrualPeriod": profile["lastMenstrualPeriod"],
        "datedBy": profile["datedBy"],
        "updatedAt": profile["updatedAt"],
        "today": today.isoformat(),
        # None past 42 weeks: the dates no longer describe an ongoing pregnancy and need updating.
        "pregnancy": status.as_json() if status is not None else None,
    }


@endpoint
def weekly_content(request: func.HttpRequest, services: Services, user: str) -> func.HttpResponse:
    # Content is not secret, but the API is for signed-in users only (`endpoint` has checked the caller).
    raw = request.route_params.get("week", "")
    if not raw.isdigit() or not FIRST_WEEK <= int(raw) <= LAST_WEEK:
        raise invalid([FieldError(field="week", message=f"{raw!r} is not a week of pregnancy "
                                                        f"(allowed: {FIRST_WEEK} to {LAST_WEEK})")])
    return json_response(services.repository.weekly_content(int(raw), seed=services.seed))


@endpoint
def current_week_content(request: func.HttpRequest, services: Services, user: str) -> func.HttpResponse:
    profile = services.repository.get_profile(user)
    if profile is None:
        raise not_found("no profile yet: PUT /api/profile with dueDate or lastMenstrualPeriod")
    status = status_on(services.today(), due=date.fromisoformat(profile["dueDate"]))
    if status is None:
        raise not_found("the profile's dates are past 42 weeks: update them with PUT /api/profile")
    content = services.repository.weekly_content(status.week_of_pregnancy, seed=services.seed)
    return json_response({**content, "pregnancy": status.as_json()})


@endpoint
def add_journal_entry(request: func.HttpRequest, services: Services, user: str) -> func.HttpResponse:
    entry = JournalEntryInput.model_validate_json(request.get_body())
    today = services.today()
    earliest, latest = today - JOURNAL_OLDEST, today + JOURNAL_FUTURE_GRACE
    if not earliest <= entry.entry_date <= latest:
        raise invalid([FieldError(field="date", message=f"{entry.entry_date.isoformat()} is out of range "
                                                        f"(allowed: {earliest.isoformat()} to {latest.isoformat()})")])
    saved = services.repository.add_entry(user, {
        "date": entry.entry_date.isoformat(),
        "mood": entry.mood,
        "symptoms": list(entry.symptoms),
        "notes": entry.notes,
        "createdAt": _now(),
    })
    return json_response(_entry_view(saved), status=201)


@endpoint
def list_journal_entries(request: func.HttpRequest, services: Services, user: str) -> func.HttpResponse:
    query = JournalRangeQuery.model_validate(dict(request.params))
    try:
        cursor = (None if query.continuation is None
                  else JournalCursor.decode(query.continuation, start=query.start, end=query.end))
        page = services.repository.list_entries(user, start=query.start, end=query.end, limit=query.limit,
                                                cursor=cursor)
    except InvalidCursorError as error:
        raise invalid([FieldError(field="continuation", message=str(error))]) from None
    return json_response({"items": [_entry_view(item) for item in page.items], "continuation": page.continuation})


@endpoint
def delete_journal_entry(request: func.HttpRequest, services: Services, user: str) -> func.HttpResponse:
    entry_id = request.route_params.get("entry_id", "")
    # Ids are ours (uuid4 hex); anything else cannot exist, and is not passed on into a database path.
    if not ENTRY_ID.fullmatch(entry_id) or not services.repository.delete_entry(user, entry_id):
        raise not_found(f"no journal entry {entry_id!r}")
    return func.HttpResponse(status_code=204)


def _entry_view(item: dict[str, Any]) -> dict[str, Any]:
    return {key: item[key] for key in ("id", "date", "mood", "symptoms", "notes", "createdAt")}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
