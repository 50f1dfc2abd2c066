"""Signing keys follow the pool's published set: a key Cognito rotated out stops verifying, a new one starts."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from selfnest_api.auth import TokenVerifier
from selfnest_api.errors import InvalidTokenError

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Rotation1"
CLIENT_ID = "rotationclient"
CACHE_SECONDS = 0.3


class SigningKey:
    def __init__(self) -> None:
        self.kid = uuid.uuid4().hex
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def token(self) -> str:
        now = int(time.time())
        return jwt.encode({"iss": ISSUER, "sub": str(uuid.uuid4()), "token_use": "access", "client_id": CLIENT_ID,
                           "username": "rotating-otter", "iat": now, "exp": now + 600,
                           "cognito:groups": ["clients"]}, self.private, algorithm="RS256",
                          headers={"kid": self.kid})


class PublishedKeys:
    """The pool's JWKS endpoint: serves whatever keys are published right now, and counts the fetches."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.fetches = 0
        published = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                published.fetches += 1
                body = json.dumps({"keys": [key.public_jwk() for key in published.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"


@pytest.fixture
def published() -> Iterator[PublishedKeys]:
    keys = PublishedKeys()
    thread = threading.Thread(target=keys.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield keys
    finally:
        keys.server.shutdown()
        keys.server.server_close()


def test_a_rotated_out_key_stops_verifying_once_the_key_set_is_refetched(published: PublishedKeys) -> None:
    old, new = SigningKey(), SigningKey()
    published.keys = [old]
    verifier = TokenVerifier(issuer=ISSUER, client_ids=[CLIENT_ID], jwks_url=published.url,
                             keys_cache_seconds=CACHE_SECONDS)
    assert verifier.caller_from_token(old.token()).username == "rotating-otter"

    published.keys = [new]                       # Cognito rotated: the old key is no longer published
    time.sleep(CACHE_SECONDS * 2)                # the cached set ages out
    with pytest.raises(InvalidTokenError, match="not signed by any key of the user pool"):
        verifier.caller_from_token(old.token())
    assert verifier.caller_from_token(new.token()).username == "rotating-otter"


def test_the_key_set_is_not_fetched_for_every_token(published: PublishedKeys) -> None:
    key = SigningKey()
    published.keys = [key]
    verifier = TokenVerifier(issuer=ISSUER, client_ids=[CLIENT_ID], jwks_url=published.url)
    for _ in range(5):
        verifier.caller_from_token(key.token())
    assert published.fetches == 1
