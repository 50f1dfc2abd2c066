"""`$connect` admits only access tokens this pool issued to our app clients, unexpired and correctly signed."""

from __future__ import annotations

import importlib
import time

import pytest

from tests.services.cognito import Identity, Tokens
from tests.services.tokens import claims_of, forged, signed_with_pool_key, token_from_another_pool

from .conftest import Tables, unique
from .websocket import Refusal, Socket, WebSocketGateway


@pytest.fixture(scope="module")
def client(identity: Identity) -> Tokens:
    return identity.client(unique("client"))


def refusal_reason(gateway: WebSocketGateway, token: str | None) -> str:
    refusal = gateway.connect(token)
    assert isinstance(refusal, Refusal) and refusal.status == 403, refusal
    assert refusal.authorizer_answer is not None
    assert refusal.authorizer_answer["principalId"] == "anonymous"
    reason: str = refusal.authorizer_answer["context"]["reason"]
    return reason


def test_a_signed_in_client_connects_and_the_connection_is_stored(gateway: WebSocketGateway, client: Tokens,
                                                                  tables: Tables) -> None:
    socket = gateway.connect(client.access_token)
    assert isinstance(socket, Socket)
    expires_at = claims_of(client.access_token)["exp"]
    assert socket.authorized == {"sub": client.sub, "username": client.username, "groups": "clients",
                                 "expiresAt": expires_at, "principalId": client.sub}
    assert socket.subprotocol == "selfnest.v1"      # echoed, or a browser drops the handshake
    [stored] = tables.connections.items(**{tables.connections.keys[0]: socket.connection_id})
    assert stored["user_id"] == client.sub
    assert (stored["groups"], int(str(stored["token_expires_at"]))) == ([{"S": "clients"}], expires_at)
    assert int(str(stored[tables.connections.expiry_attribute])) <= expires_at   # swept once the token is dead
    assert "session_id" not in stored               # not in any session until it joins one
    assert client.username not in stored.values()  # the pseudonym is never stored with the chat


def test_a_therapist_connects_with_their_group(gateway: WebSocketGateway, identity: Identity) -> None:
    therapist = identity.therapist(unique("therapist"))
    socket = gateway.connect(therapist.access_token)
    assert isinstance(socket, Socket) and socket.authorized["groups"] == "therapists"


def test_a_handshake_without_a_token_never_reaches_the_authorizer(gateway: WebSocketGateway) -> None:
    assert gateway.connect(None) == Refusal(status=401)


def test_an_empty_token_is_denied(gateway: WebSocketGateway) -> None:
    assert refusal_reason(gateway, "") == "offer exactly one access token beside the 'selfnest.v1' subprotocol"


def test_the_token_is_taken_only_beside_the_selfnest_subprotocol(gateway: WebSocketGateway, client: Tokens) -> None:
    refusal = gateway.connect(None, subprotocols=f"chat, {client.access_token}")
    assert isinstance(refusal, Refusal) and refusal.authorizer_answer is not None
    assert refusal.authorizer_answer["context"]["reason"] == \
        "no token: connect with the subprotocols 'selfnest.v1' and the access token"
    two = gateway.connect(None, subprotocols=f"selfnest.v1, {client.access_token}, {client.access_token}")
    assert isinstance(two, Refusal) and two.status == 403


def test_an_expired_token_is_denied(gateway: WebSocketGateway, client: Tokens) -> None:
    now = int(time.time())
    expired = signed_with_pool_key({**claims_of(client.access_token), "iat": now - 7200, "exp": now - 3600})
    assert refusal_reason(gateway, expired) == "the token has expired; refresh it and retry"


def test_the_same_re_signing_with_a_future_expiry_is_allowed(gateway: WebSocketGateway, client: Tokens) -> None:
    # Guards the test above: only `exp` made the difference.
    resigned = signed_with_pool_key({**claims_of(client.access_token), "exp": int(time.time()) + 600})
    assert isinstance(gateway.connect(resigned), Socket)


def test_a_forged_token_is_denied(gateway: WebSocketGateway, client: Tokens) -> None:
    assert refusal_reason(gateway, forged(claims_of(client.access_token))) == \
        "the token's signature does not verify against the user pool's keys"


def test_a_token_from_another_user_pool_is_denied(gateway: WebSocketGateway) -> None:
    assert refusal_reason(gateway, token_from_another_pool(unique("outsider"))) == \
        "the token was not issued by this API's user pool"


def test_an_id_token_is_denied(gateway: WebSocketGateway, client: Tokens) -> None:
    assert refusal_reason(gateway, client.id_token) == \
        "not an access token (token_use is 'id'); send the access token"


def test_garbage_is_denied(gateway: WebSocketGateway) -> None:
    assert refusal_reason(gateway, "not-a-jwt") == "the token is malformed or uses an algorithm other than RS256"


def test_unreachable_signing_keys_fail_the_handshake_with_500_not_a_denial(gateway: WebSocketGateway,
                                                                           client: Tokens) -> None:
    authorizer = gateway.routes["$connect"].authorizer
    assert authorizer is not None
    module = importlib.import_module(authorizer.handler_name.rsplit(".", 1)[0])
    working_url = authorizer.environment["COGNITO_JWKS_URL"]
    module.verifier.cache_clear()
    authorizer.environment["COGNITO_JWKS_URL"] = "http://127.0.0.1:9/jwks.json"   # nothing listens on port 9
    try:
        refusal = gateway.connect(client.access_token)
    finally:
        authorizer.environment["COGNITO_JWKS_URL"] = working_url
        module.verifier.cache_clear()
    assert isinstance(refusal, Refusal) and refusal.status == 500
    assert "signing keys cannot be fetched" in str(refusal.error)
