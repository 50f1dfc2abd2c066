"""Every HTTP function requires the App Service principal header; without a valid one it is 401 and nothing runs."""

from __future__ import annotations

import base64
import json
from typing import Any

import azure.functions as func
import pytest
from babybloom_app import runtime

from .conftest import call, function_app, snapshot

# (function, method, url, route params, body): one valid-looking request per HTTP function.
HTTP_FUNCTIONS = [
    (function_app.read_profile, "GET", "/api/profile", {}, b""),
    (function_app.save_profile, "PUT", "/api/profile", {}, b'{"dueDate": "2026-06-01"}'),
    (function_app.weekly_content, "GET", "/api/content/weeks/12", {"week": "12"}, b""),
    (function_app.current_week_content, "GET", "/api/content/current", {}, b""),
    (function_app.add_journal_entry, "POST", "/api/journal", {}, b'{"date": "2026-03-01", "mood": 3}'),
    (function_app.list_journal_entries, "GET", "/api/journal", {}, b""),
    (function_app.delete_journal_entry, "DELETE", "/api/journal/" + "a" * 32, {"entry_id": "a" * 32}, b""),
]


def _encoded(value: object) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


BAD_HEADERS = {
    "missing": {},
    "empty": {"X-MS-CLIENT-PRINCIPAL": ""},
    "not base64": {"X-MS-CLIENT-PRINCIPAL": "not base64!"},
    "base64 of non-JSON": {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"hello").decode()},
    "JSON list": {"X-MS-CLIENT-PRINCIPAL": _encoded([1, 2])},
    "no provider": {"X-MS-CLIENT-PRINCIPAL": _encoded({"claims": []})},
    "no subject claim": {"X-MS-CLIENT-PRINCIPAL": _encoded(
        {"auth_typ": "aad", "claims": [{"typ": "name", "val": "Ana"}]})},
    # App Service sends the id in its own header too, but only the signed principal counts.
    "id header alone": {"X-MS-CLIENT-PRINCIPAL-ID": "someone"},
}


@pytest.mark.parametrize("headers", list(BAD_HEADERS.values()), ids=list(BAD_HEADERS))
@pytest.mark.parametrize(("function", "method", "url", "route", "body"), HTTP_FUNCTIONS,
                         ids=[entry[2] + " " + entry[1] for entry in HTTP_FUNCTIONS])
def test_without_a_valid_principal_every_function_is_401(
    services: runtime.Services, database: Any, function: Any, method: str, url: str, route: dict[str, str],
    body: bytes, headers: dict[str, str],
) -> None:
    before = snapshot(database)
    response = call(function, func.HttpRequest(method, url, headers=headers, route_params=route, body=body))
    assert response.status_code == 401
    problem = json.loads(response.get_body())
    assert problem["type"] == "urn:babybloom:problem:unauthenticated"
    assert "X-MS-CLIENT-PRINCIPAL" in problem["detail"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert snapshot(database) == before
