"""The caller's Entra ID access token, verified by the app itself (pyjwt), whatever sits in front of it.

Checked: RS256 signature by a key the tenant publishes (its JWKS, found through the issuer's OpenID Connect discovery
document), issuer (exactly the configured tenant), audience (this API's client id or its `api://` URI), expiry and
not-before (with a small clock skew), and that it is a delegated access token for a user: `scp` (scopes; ID tokens
have none) and `oid` (the user's object id, stable across apps of the tenant). Keys are cached and re-fetched when a
token names a key id the cache does not hold, so the tenant's key rotation needs no restart.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Collection
from typing import Any

import jwt

CLOCK_SKEW_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 5
# How long a fetched key set is trusted before it is fetched again even without an unknown key id.
KEY_SET_LIFESPAN_SECONDS = 3600
# At most one forced re-fetch per this many seconds for tokens naming an unknown key id, so a flood of made-up key
# ids cannot turn the app into a client hammering the tenant (Entra ID publishes new keys well before signing).
KEY_REFRESH_COOLDOWN_SECONDS = 30.0
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "oid", "scp")
DISCOVERY_PATH = "/.well-known/openid-configuration"


class TokenRejectedError(Exception):
    """The token does not prove who the caller is; the message says why, for the caller (no secrets in it)."""


class SigningKeysUnavailableError(Exception):
    """The tenant's discovery document or keys cannot be fetched right now (the caller may retry)."""


class TokenVerifier:
    def __init__(self, *, issuer: str, audiences: Collection[str],
                 refresh_cooldown_seconds: float = KEY_REFRESH_COOLDOWN_SECONDS) -> None:
        self.issuer = issuer
        self.audiences = tuple(audiences)
        self.refresh_cooldown_seconds = refresh_cooldown_seconds
        self._keys: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims once every check passed; TokenRejectedError or SigningKeysUnavailableError otherwise."""
        try:
            signing_key = self._key_client().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, signing_key, algorithms=["RS256"], audience=self.audiences, issuer=self.issuer,
                leeway=CLOCK_SKEW_SECONDS, options={"require": list(REQUIRED_CLAIMS)})
        except jwt.PyJWKClientConnectionError:
            raise SigningKeysUnavailableError("the tenant's signing keys cannot be fetched") from None
        except jwt.ExpiredSignatureError:
            raise TokenRejectedError("the token has expired; get a new one and retry") from None
        except jwt.InvalidIssuerError:
            raise TokenRejectedError("the token was not issued by this API's Entra ID tenant") from None
        except jwt.InvalidAudienceError:
            raise TokenRejectedError("the token was issued for another application (aud)") from None
        except jwt.MissingRequiredClaimError as error:
            hint = " (an ID token is not accepted: send an access token for this API)" if error.claim == "scp" else ""
            raise TokenRejectedError(f"the token has no {error.claim} claim{hint}") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejectedError("the token is not valid yet (nbf or iat is in the future)") from None
        except jwt.InvalidSignatureError:
            raise TokenRejectedError("the token's signature does not verify against the tenant's keys") from None
        except jwt.PyJWKClientError:
            raise TokenRejectedError("the token is not signed by any key of the tenant") from None
        except jwt.InvalidTokenError:
            raise TokenRejectedError("the token is malformed or not signed with RS256") from None
        if not isinstance(claims["oid"], str) or not claims["oid"]:
            raise TokenRejectedError("the token's oid claim is not a user object id")
        return claims

    def _key_client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._keys is None:
                self._keys = jwt.PyJWKClient(self._jwks_uri(), cache_keys=True, lifespan=KEY_SET_LIFESPAN_SECONDS,
                                             timeout=HTTP_TIMEOUT_SECONDS,
                                             cooldown_duration=self.refresh_cooldown_seconds)
            return self._keys

    def _jwks_uri(self) -> str:
        url = self.issuer.rstrip("/") + DISCOVERY_PATH
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310 - https issuer
                document = json.load(response)
        except (urllib.error.URLError, TimeoutError, ValueError) as error:
            raise SigningKeysUnavailableError(f"the OpenID configuration at {url} cannot be read: {error}") from None
        # OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer it was fetched for.
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            raise SigningKeysUnavailableError(f"the OpenID configuration at {url} is for another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise SigningKeysUnavailableError(f"the OpenID configuration at {url} has no jwks_uri")
        return jwks_uri
