"""Request bodies and query strings: strict shapes, limits, and 400s that name the offending field."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from .errors import InvalidRequestError

LANGUAGE_TAG = r"^[a-z]{2,3}(-[A-Z]{2})?$"  # BCP 47 language (+ region), e.g. "de", "pt-BR"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

LanguageTag = Annotated[str, StringConstraints(pattern=LANGUAGE_TAG)]
Specialty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


def _distinct(items: list[str]) -> list[str]:
    if len(set(items)) != len(items):
        raise ValueError("List should not repeat an entry")
    return items


class StrictBody(BaseModel):
    # Unknown fields are refused rather than ignored: a typo must not silently book the wrong thing.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TherapistProfileBody(StrictBody):
    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
    bio: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""
    languages: Annotated[list[LanguageTag], Field(min_length=1, max_length=10), AfterValidator(_distinct)]
    specialties: Annotated[list[Specialty], Field(max_length=20), AfterValidator(_distinct)] = []


class BookingBody(StrictBody):
    therapist_id: uuid.UUID
    starts_at: AwareDatetime


class TherapistQuery(StrictBody):
    language: LanguageTag | None = None


class SessionQuery(StrictBody):
    status: Literal["booked", "cancelled"] | None = None
    limit: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,2}$")] | None = None   # 1-999, capped by config
    after: Annotated[str, StringConstraints(pattern=UUID_PATTERN)] | None = None   # the last session id seen


Body = TypeVar("Body", bound=StrictBody)


def parse_body(model: type[Body], body: bytes) -> Body:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise InvalidRequestError(_first_problem(error, where="request body")) from None


def parse_query(model: type[Body], query: Mapping[str, list[str]]) -> Body:
    repeated = sorted(name for name, values in query.items() if len(values) > 1)
    if repeated:
        raise InvalidRequestError(f"{repeated[0]}: query parameter given more than once")
    try:
        return model.model_validate({name: values[0] for name, values in query.items()})
    except ValidationError as error:
        raise InvalidRequestError(_first_problem(error, where="query string")) from None


def _first_problem(error: ValidationError, *, where: str) -> str:
    problem = error.errors(include_url=False, include_context=False, include_input=False)[0]
    field = ".".join(str(part) for part in problem["loc"]) or where
    explanation = {
        "extra_forbidden": "unknown field",
        "missing": "required field is missing",
        "json_invalid": "not valid JSON",
        "model_type": "expected a JSON object",
        "timezone_aware": "needs a timezone offset, e.g. 2030-01-07T09:00:00Z",
    }.get(problem["type"], problem["msg"])
    if problem["type"] == "extra_forbidden" and where == "query string":
        explanation = "unknown query parameter"
    return f"{field}: {explanation}"


def is_on_the_hour(moment: datetime) -> bool:
    """On a UTC hour: slots are compared by start time, so every start must sit on the same grid."""
    in_utc = moment.astimezone(UTC)
    return in_utc.minute == 0 and in_utc.second == 0 and in_utc.microsecond == 0
