"""RFC 9457 problem details: every refusal is one JSON body saying what is wrong and where, never a traceback."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from pydantic import ValidationError
from pydantic_core import ErrorDetails

# Not dereferenceable on purpose: the types are documented in docs/babybloom.md ("Errors").
PROBLEM_TYPE_BASE = "urn:babybloom:problem:"
JSON = "application/json"
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\[\]]*")
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True, kw_only=True)
class FieldError:
    field: str  # dotted path into the body ("symptoms[1]"), a query parameter, or "body" for the whole body
    message: str


class ProblemError(Exception):
    """Raised anywhere below a handler; the handler turns it into its response."""

    def __init__(self, *, status: int, slug: str, title: str, detail: str,
                 errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = tuple(errors)

    def response(self) -> func.HttpResponse:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = [{"field": error.field, "message": error.message} for error in self.errors]
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return func.HttpResponse(json.dumps(body), status_code=self.status, mimetype=PROBLEM_JSON, headers=headers)


def invalid(errors: Sequence[FieldError]) -> ProblemError:
    fields = ", ".join(dict.fromkeys(error.field for error in errors))
    return ProblemError(status=400, slug="invalid-request", title="Invalid request",
                   detail=f"The request has invalid values in: {fields}", errors=errors)


def unauthenticated(detail: str) -> ProblemError:
    return ProblemError(status=401, slug="unauthenticated", title="Not signed in", detail=detail)


def payload_too_large(size: int, limit: int) -> ProblemError:
    return ProblemError(status=413, slug="payload-too-large", title="Request body too large",
                        detail=f"The request body is {size} bytes; the limit is {limit} bytes ({limit // 1024} KiB).")


def unavailable(detail: str) -> ProblemError:
    return ProblemError(status=503, slug="unavailable", title="Temporarily unavailable", detail=detail)


def not_found(detail: str) -> ProblemError:
    return ProblemError(status=404, slug="not-found", title="Not found", detail=detail)


def from_validation_error(error: ValidationError) -> ProblemError:
    return invalid([_field_error(detail) for detail in error.errors(include_url=False)])


def _field_error(detail: ErrorDetails) -> FieldError:
    if detail["type"] == "json_invalid":
        return FieldError(field="body", message=f"not valid JSON ({detail['ctx'].get('error', 'unparseable')})")
    if detail["type"] in {"model_type", "model_attributes_type"}:
        return FieldError(field="body", message="must be a JSON object")
    field = _dotted(detail["loc"]) or "body"
    if detail["type"] == "extra_forbidden":
        return FieldError(field=field, message="unknown field")
    if detail["type"] == "missing":
        return FieldError(field=field, message="required")
    message = detail["msg"].removeprefix("Value error, ")
    # Checks across fields (model validators) have no location of their own; they start their message with it.
    named, separator, rest = message.partition(": ")
    if not detail["loc"] and separator and _FIELD_NAME.fullmatch(named):
        return FieldError(field=named, message=rest)
    return FieldError(field=field, message=message)


def _dotted(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


def json_response(body: Any, *, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype=JSON)
