"""Every HTTP function requires a verified Entra ID access token; a forged X-MS-CLIENT-PRINCIPAL opens nothing.

Tokens come from a local stand-in tenant (identity_provider.py) whose discovery document and JWKS the app fetches
over HTTP, as it does from Entra ID: the verifier under test is the deployed code, unchanged.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import azure.functions as func
import pytest
from babybloom_app import api, runtime
from babybloom_app.tokens import TokenRejectedError, TokenVerifier

from .conftest import CLIENT_ID, call, function_app, http, principal, signed_in, snapshot
from .identity_provider import LocalIdentityProvider, SigningKey

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
FUNCTION_IDS = [entry[2] + " " + entry[1] for entry in HTTP_FUNCTIONS]


def _encoded_principal(object_id: str) -> str:
    """What App Service authentication would put into X-MS-CLIENT-PRINCIPAL for an Entra ID user."""
    claims = [{"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": object_id}]
    return base64.b64encode(json.dumps({"auth_typ": "aad", "claims": claims}).encode()).decode()


def _now() -> int:
    return int(time.time())


TokenMaker = Callable[[LocalIdentityProvider], dict[str, str]]
# Requests that must be refused with 401 (the name says what is wrong).
BAD_CREDENTIALS: dict[str, TokenMaker] = {
    "no credentials": lambda idp: {},
    "forged principal header alone": lambda idp: {"X-MS-CLIENT-PRINCIPAL": _encoded_principal(str(uuid.uuid4()))},
    "principal id header alone": lambda idp: {"X-MS-CLIENT-PRINCIPAL-ID": str(uuid.uuid4())},
    "basic scheme": lambda idp: {"Authorization": "Basic " + base64.b64encode(b"ana:secret").decode()},
    "empty bearer": lambda idp: {"Authorization": "Bearer "},
    "not a JWT": lambda idp: signed_in("not.a.token"),
    "expired": lambda idp: signed_in(idp.access_token(iat=_now() - 7200, nbf=_now() - 7200, exp=_now() - 3600)),
    "not yet valid": lambda idp: signed_in(idp.access_token(nbf=_now() + 3600, iat=_now() + 3600)),
    "another audience": lambda idp: signed_in(idp.access_token(aud=str(uuid.uuid4()))),
    "another issuer": lambda idp: signed_in(idp.access_token(iss="https://login.microsoftonline.com/other/v2.0")),
    "no expiry": lambda idp: signed_in(idp.access_token(exp=None)),
    "ID token (no scp)": lambda idp: signed_in(idp.access_token(scp=None)),
    "no oid": lambda idp: signed_in(idp.access_token(oid=None)),
    # Same claims and key id as a real token, signed by a key the attacker made up.
    "forged signature": lambda idp: signed_in(SigningKey().sign(idp.claims(str(uuid.uuid4())), kid=idp.keys[-1].kid)),
    "unknown key": lambda idp: signed_in(SigningKey().sign(idp.claims(str(uuid.uuid4())))),
    "alg none": lambda idp: signed_in(
        base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=") + "."
        + base64.urlsafe_b64encode(json.dumps(idp.claims(str(uuid.uuid4()))).encode()).decode().rstrip("=") + "."),
    "HS256 with the public key": lambda idp: signed_in(_hs256_with_public_key(idp)),
}


def _hs256_with_public_key(idp: LocalIdentityProvider) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the (public) RSA key."""
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": idp.keys[-1].kid}).encode())
    payload = b64(json.dumps(idp.claims(str(uuid.uuid4()))).encode())
    secret = json.dumps(idp.keys[-1].public_jwk()).encode()
    signature = b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def _assert_refused(identity_provider: LocalIdentityProvider, database: Any, function: Any, method: str, url: str,
                    route: dict[str, str], body: bytes, credentials: TokenMaker) -> None:
    before = snapshot(database)
    request = func.HttpRequest(method, url, headers=credentials(identity_provider), route_params=route, body=body)
    response = call(function, request)
    assert response.status_code == 401
    problem = json.loads(response.get_body())
    assert problem["type"] == "urn:babybloom:problem:unauthenticated"
    assert "\n" not in problem["detail"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert snapshot(database) == before


# Every function behind the same check: the three ways in an attacker would try first.
FIRST_TRIES = ("no credentials", "forged principal header alone", "forged signature")


@pytest.mark.parametrize("attempt", FIRST_TRIES)
@pytest.mark.parametrize(("function", "method", "url", "route", "body"), HTTP_FUNCTIONS, ids=FUNCTION_IDS)
def test_without_a_verified_token_every_function_is_401(
    services: runtime.Services, identity_provider: LocalIdentityProvider, database: Any, function: Any,
    method: str, url: str, route: dict[str, str], body: bytes, attempt: str,
) -> None:
    _assert_refused(identity_provider, database, function, method, url, route, body, BAD_CREDENTIALS[attempt])


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS.values()), ids=list(BAD_CREDENTIALS))
def test_every_kind_of_bad_token_is_401_and_writes_nothing(
    services: runtime.Services, identity_provider: LocalIdentityProvider, database: Any, credentials: TokenMaker,
) -> None:
    function, method, url, route, body = HTTP_FUNCTIONS[1]  # PUT /api/profile: a write
    _assert_refused(identity_provider, database, function, method, url, route, body, credentials)


@pytest.mark.parametrize(("function", "method", "url", "route", "body"), HTTP_FUNCTIONS, ids=FUNCTION_IDS)
def test_a_verified_token_is_let_through(
    services: runtime.Services, function: Any, method: str, url: str, route: dict[str, str], body: bytes,
) -> None:
    response = call(function, func.HttpRequest(method, url, headers=signed_in(principal()), route_params=route,
                                               body=body))
    # Whatever the function answers (404 for a new user's profile is fine), identity is not the reason.
    assert response.status_code not in (401, 403, 500, 503)


def test_both_audience_forms_are_accepted(services: runtime.Services, identity_provider: LocalIdentityProvider) -> None:
    for audience in (CLIENT_ID, f"api://{CLIENT_ID}"):
        token = identity_provider.access_token(aud=audience)
        response = call(function_app.read_profile, func.HttpRequest("GET", "/api/profile", headers=signed_in(token),
                                                                    body=b""))
        assert response.status_code == 404  # signed in; no profile yet


@pytest.fixture
def platform_authentication(services: runtime.Services) -> Iterator[Callable[[bool], None]]:
    def switch(enabled: bool) -> None:
        runtime.install(dataclasses.replace(services, platform_authentication=enabled))

    yield switch
    runtime.install(services)


def _read_profile(headers: dict[str, str]) -> func.HttpResponse:
    return http(function_app.read_profile, func.HttpRequest("GET", "/api/profile", headers=headers, body=b""))


def test_a_principal_header_without_platform_authentication_is_forged(
    platform_authentication: Callable[[bool], None],
) -> None:
    object_id = str(uuid.uuid4())
    platform_authentication(False)
    # Even naming the token's own user: with App Service authentication off only the caller can have set it.
    forged = _encoded_principal(object_id)
    response = _read_profile({**signed_in(principal(object_id)), "X-MS-CLIENT-PRINCIPAL": forged})
    assert response.status_code == 401
    assert "WEBSITE_AUTH_ENABLED" in json.loads(response.get_body())["detail"]


def test_behind_platform_authentication_the_header_must_name_the_token_user(
    platform_authentication: Callable[[bool], None],
) -> None:
    object_id = str(uuid.uuid4())
    platform_authentication(True)
    token = principal(object_id)
    genuine = _encoded_principal(object_id)
    assert _read_profile({**signed_in(token), "X-MS-CLIENT-PRINCIPAL": genuine}).status_code == 404
    other = _read_profile({**signed_in(token), "X-MS-CLIENT-PRINCIPAL": _encoded_principal(str(uuid.uuid4()))})
    assert other.status_code == 401
    assert "another user" in json.loads(other.get_body())["detail"]
    # The header never stands in for the token, platform authentication or not.
    assert _read_profile({"X-MS-CLIENT-PRINCIPAL": _encoded_principal(object_id)}).status_code == 401


def test_rotated_keys_are_fetched_without_a_restart(identity_provider: LocalIdentityProvider) -> None:
    verifier = TokenVerifier(issuer=identity_provider.issuer, audiences=(CLIENT_ID,), refresh_cooldown_seconds=0)
    object_id = str(uuid.uuid4())
    assert verifier.verify(identity_provider.access_token(object_id))["oid"] == object_id
    fetches = identity_provider.key_set_fetches
    identity_provider.rotate()
    assert verifier.verify(identity_provider.access_token(object_id))["oid"] == object_id
    assert identity_provider.key_set_fetches == fetches + 1  # one re-fetch for the unknown key id


def test_made_up_key_ids_cannot_make_the_app_hammer_the_tenant(identity_provider: LocalIdentityProvider) -> None:
    verifier = TokenVerifier(issuer=identity_provider.issuer, audiences=(CLIENT_ID,))
    verifier.verify(identity_provider.access_token())
    fetches = identity_provider.key_set_fetches
    for _ in range(20):
        with pytest.raises(TokenRejectedError):
            verifier.verify(SigningKey().sign(identity_provider.claims(str(uuid.uuid4()))))
    assert identity_provider.key_set_fetches <= fetches + 1  # within the cooldown: at most one forced re-fetch


def test_unreachable_tenant_is_503_not_401(services: runtime.Services) -> None:
    unreachable = TokenVerifier(issuer="http://127.0.0.1:9/tenant/v2.0", audiences=(CLIENT_ID,))
    runtime.install(dataclasses.replace(services, verifier=unreachable))
    try:
        response = _read_profile(signed_in(principal()))
    finally:
        runtime.install(services)
    assert response.status_code == 503
    assert json.loads(response.get_body())["type"] == "urn:babybloom:problem:unavailable"


@pytest.mark.parametrize(("function", "method", "url", "route", "body"),
                         [entry for entry in HTTP_FUNCTIONS if entry[4]], ids=[
                             entry[2] + " " + entry[1] for entry in HTTP_FUNCTIONS if entry[4]])
def test_bodies_over_the_limit_are_413_naming_it(
    services: runtime.Services, database: Any, function: Any, method: str, url: str, route: dict[str, str],
    body: bytes,
) -> None:
    before = snapshot(database)
    oversized = body[:-1] + b', "notes": "' + b"x" * api.MAX_BODY_BYTES + b'"}'
    for headers in ({}, {"Content-Length": str(len(oversized))}):
        response = call(function, func.HttpRequest(method, url, headers={**signed_in(principal()), **headers},
                                                   route_params=route, body=oversized))
        assert response.status_code == 413
        problem = json.loads(response.get_body())
        assert problem["type"] == "urn:babybloom:problem:payload-too-large"
        assert f"the limit is {api.MAX_BODY_BYTES} bytes" in problem["detail"]
        assert str(len(oversized)) in problem["detail"]
    # A declared length over the limit is refused before the body is looked at.
    response = call(function, func.HttpRequest(method, url, route_params=route, body=b"{}", headers={
        **signed_in(principal()), "Content-Length": str(api.MAX_BODY_BYTES + 1)}))
    assert response.status_code == 413
    assert snapshot(database) == before


def test_a_body_at_the_limit_is_not_refused_for_its_size(services: runtime.Services) -> None:
    body = b'{"dueDate": "2026-06-01"' + b" " * (api.MAX_BODY_BYTES - 25) + b"}"
    assert len(body) == api.MAX_BODY_BYTES
    response = call(function_app.save_profile, func.HttpRequest("PUT", "/api/profile", headers=signed_in(principal()),
                                                                body=body))
    assert response.status_code == 200
