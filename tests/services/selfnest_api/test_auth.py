"""Only access tokens this pool issued to our app clients, unexpired and correctly signed, get in; groups decide
what a signed-in user may do."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import jwt
import pytest

from tests.services.tokens import claims_of, forged, signed_in_through, signed_with_pool_key, token_from_another_pool

from .conftest import RunningApi
from .people import Identity, Tokens, profile, slot, unique


@pytest.fixture(scope="module")
def client(identity: Identity) -> Tokens:
    return identity.client(unique("client"))


def refused(api: RunningApi, token: str | None) -> tuple[int, str, str]:
    reply = api.client.get("/therapists", token=token)
    return reply.status, reply.detail, reply.headers.get("WWW-Authenticate", "")


def test_a_valid_access_token_is_accepted(api: RunningApi, client: Tokens) -> None:
    assert api.client.get("/therapists", token=client.access_token).status == 200


def test_missing_token_is_refused_with_a_bearer_challenge(api: RunningApi) -> None:
    status, detail, challenge = refused(api, None)
    assert (status, challenge) == (401, 'Bearer realm="selfnest-api"')
    assert "Authorization header is missing" in detail


def test_other_authorization_schemes_are_refused(api: RunningApi, client: Tokens) -> None:
    reply = api.client.call("GET", "/therapists", headers={"Authorization": f"Basic {client.access_token}"})
    assert (reply.status, reply.body["error"]) == (401, "missing_token")


def test_expired_token_is_refused(api: RunningApi, client: Tokens) -> None:
    now = int(time.time())
    expired = signed_with_pool_key({**claims_of(client.access_token), "iat": now - 7200, "exp": now - 3600})
    status, detail, challenge = refused(api, expired)
    assert (status, detail) == (401, "the token has expired; refresh it and retry")
    assert challenge.startswith('Bearer realm="selfnest-api", error="invalid_token", error_description="the token')


def test_the_pool_key_signing_is_what_the_expiry_test_relies_on(api: RunningApi, client: Tokens) -> None:
    # Guards the test above: the same re-signing with a future expiry is accepted, so only `exp` was refused.
    resigned = signed_with_pool_key({**claims_of(client.access_token), "exp": int(time.time()) + 600})
    assert api.client.get("/therapists", token=resigned).status == 200


def test_forged_token_is_refused(api: RunningApi, client: Tokens) -> None:
    status, detail, _ = refused(api, forged(claims_of(client.access_token)))
    assert (status, detail) == (401, "the token's signature does not verify against the user pool's keys")


def test_tampered_claims_break_the_signature(api: RunningApi, client: Tokens) -> None:
    header, _, signature = client.access_token.split(".")
    elevated = {**claims_of(client.access_token), "cognito:groups": ["admins", "therapists"]}
    payload = jwt.utils.base64url_encode(json.dumps(elevated).encode()).decode()
    status, detail, _ = refused(api, f"{header}.{payload}.{signature}")
    assert (status, detail) == (401, "the token's signature does not verify against the user pool's keys")


def test_token_from_another_user_pool_is_refused(api: RunningApi) -> None:
    status, detail, _ = refused(api, token_from_another_pool(unique("outsider")))
    assert (status, detail) == (401, "the token was not issued by this API's user pool")


def test_token_issued_to_another_app_client_is_refused(api: RunningApi, identity: Any) -> None:
    foreign = boto3.client("cognito-idp").create_user_pool_client(
        UserPoolId=identity.pool_id, ClientName=unique("partner"), ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])
    token = signed_in_through(pool_id=identity.pool_id, client_id=foreign["UserPoolClient"]["ClientId"],
                              username=unique("partner-user"), groups=["clients"])
    status, detail, _ = refused(api, token)
    assert (status, detail) == (401, "the token was issued to an app client this API does not accept")


def test_id_token_is_refused(api: RunningApi, client: Tokens) -> None:
    status, detail, _ = refused(api, client.id_token)
    assert (status, detail) == (401, "not an access token (token_use is 'id'); send the access token")


def test_garbage_is_refused(api: RunningApi) -> None:
    status, detail, _ = refused(api, "not-a-jwt")
    assert (status, detail) == (401, "the token is malformed or uses an algorithm other than RS256")


def test_unapproved_therapist_cannot_publish_a_profile(api: RunningApi, identity: Identity) -> None:
    applicant = identity.therapist(unique("applicant"), approved=False)
    reply = api.client.put("/therapists/me", profile(), token=applicant.access_token)
    assert reply.status == 403
    assert reply.body == {"error": "forbidden", "detail": "PUT /therapists/me is for members of the therapists group"}


def test_clients_cannot_publish_profiles_and_therapists_cannot_book(api: RunningApi, identity: Identity,
                                                                    client: Tokens) -> None:
    therapist = identity.therapist(unique("therapist"))
    assert api.client.put("/therapists/me", profile(), token=client.access_token).status == 403
    reply = api.client.post("/sessions", {"therapist_id": client.sub, "starts_at": slot(hours_ahead=3)},
                            token=therapist.access_token)
    assert (reply.status, reply.body["error"]) == (403, "forbidden")


def test_admins_see_the_directory_but_have_no_sessions_of_their_own(api: RunningApi, identity: Identity) -> None:
    admin = identity.admin(unique("admin"))
    assert api.client.get("/therapists", token=admin.access_token).status == 200
    assert api.client.get("/sessions", token=admin.access_token).status == 403
