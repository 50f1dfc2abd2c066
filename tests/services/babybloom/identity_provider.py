"""A local stand-in for an Entra ID tenant: an OpenID discovery document and a JWKS served over HTTP on 127.0.0.1,
and access tokens signed with the tenant's (throwaway) RSA key, so the app's verifier runs its real code path.

It can rotate its key (a new key id the app has never seen) and counts how often the key set is fetched.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

TOKEN_LIFETIME_SECONDS = 3600


@dataclass
class SigningKey:
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": kid or self.kid, "typ": "JWT"})


class LocalIdentityProvider:
    def __init__(self, *, tenant_id: str, client_id: str) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.keys = [SigningKey()]
        self.key_set_fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == f"/{provider.tenant_id}/v2.0/.well-known/openid-configuration":
                    body: dict[str, Any] = {"issuer": provider.issuer, "jwks_uri": provider.jwks_uri,
                                            "id_token_signing_alg_values_supported": ["RS256"]}
                elif self.path == f"/{provider.tenant_id}/discovery/v2.0/keys":
                    provider.key_set_fetches += 1
                    body = {"keys": [key.public_jwk() for key in provider.keys]}
                else:
                    self.send_error(404)
                    return
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return f"{self.base}/{self.tenant_id}/v2.0"

    @property
    def jwks_uri(self) -> str:
        return f"{self.base}/{self.tenant_id}/discovery/v2.0/keys"

    def claims(self, object_id: str, **overrides: Any) -> dict[str, Any]:
        """What Entra ID puts into a delegated access token for this API (v2.0 format)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.client_id, "tid": self.tenant_id, "oid": object_id,
            "sub": uuid.uuid5(uuid.NAMESPACE_OID, object_id).hex, "scp": "journal.readwrite",
            "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME_SECONDS, "ver": "2.0",
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def access_token(self, object_id: str | None = None, **overrides: Any) -> str:
        """A valid access token for a user (a new one unless `object_id` is given); overrides spoil single claims."""
        return self.keys[-1].sign(self.claims(object_id or str(uuid.uuid4()), **overrides))

    def rotate(self) -> SigningKey:
        """Publish a new key (old ones stay published, as Entra ID does during a rollover) and sign with it."""
        self.keys.append(SigningKey())
        return self.keys[-1]

    @contextmanager
    def running(self) -> Iterator[LocalIdentityProvider]:
        self._thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
