"""Who is calling: a Cognito access token, verified against the user pool's published keys (JWKS).

Checked: RS256 signature by a key of the pool, issuer (this pool), `token_use` (access, not id), `client_id` (one
of our app clients), expiry, and the claims we rely on. Only the public JWKS is fetched: the API never calls Cognito.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import jwt

from .errors import InvalidTokenError, MissingTokenError, ServiceUnavailableError

CLIENTS = "clients"
THERAPISTS = "therapists"
ADMINS = "admins"
CLOCK_SKEW_SECONDS = 30
JWKS_TIMEOUT_SECONDS = 5
# How long a fetched key set is trusted before it is fetched again: a key Cognito rotated out stops verifying
# tokens within this time (an unknown key id refetches at once).
JWKS_CACHE_SECONDS = 300


@dataclass(frozen=True, kw_only=True)
class Caller:
    """The signed-in user: Cognito `sub`, the username (for clients: the pseudonym they chose), their groups, and
    when the token that says so expires (epoch seconds)."""

    sub: uuid.UUID
    username: str
    groups: frozenset[str]
    expires_at: int


class TokenVerifier:
    def __init__(self, *, issuer: str, client_ids: Collection[str], jwks_url: str,
                 keys_cache_seconds: float = JWKS_CACHE_SECONDS) -> None:
        self._issuer = issuer
        self._client_ids = frozenset(client_ids)
        # The key *set* is cached for keys_cache_seconds, and an unknown `kid` (a new key) refetches it at once. No
        # per-key cache (cache_keys): it would trust a key for the process's lifetime, even after its removal.
        self._keys = jwt.PyJWKClient(jwks_url, cache_keys=False, cache_jwk_set=True, lifespan=keys_cache_seconds,
                                     timeout=JWKS_TIMEOUT_SECONDS)

    def caller_from_header(self, authorization: str | None) -> Caller:
        if not authorization:
            raise MissingTokenError("the Authorization header is missing; send 'Authorization: Bearer <access token>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MissingTokenError("the Authorization header must be 'Bearer <access token>'")
        return self.caller_from_token(token.strip())

    def caller_from_token(self, token: str) -> Caller:
        claims = self._verified_claims(token)
        if claims.get("token_use") != "access":
            token_use = claims.get("token_use")
            raise InvalidTokenError(f"not an access token (token_use is {token_use!r}); send the access token")
        if claims.get("client_id") not in self._client_ids:
            raise InvalidTokenError("the token was issued to an app client this API does not accept")
        username, groups = claims.get("username"), claims.get("cognito:groups", [])
        if not isinstance(username, str) or not username:
            raise InvalidTokenError("the token has no username claim")
        if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
            raise InvalidTokenError("the token's cognito:groups claim is not a list of group names")
        try:
            sub = uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise InvalidTokenError("the token's sub claim is not a Cognito user id") from None
        return Caller(sub=sub, username=username, groups=frozenset(groups), expires_at=int(claims["exp"]))

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            signing_key = self._keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, signing_key, algorithms=["RS256"], issuer=self._issuer, leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iat", "iss", "sub", "token_use"], "verify_aud": False})
        except jwt.PyJWKClientConnectionError:
            raise ServiceUnavailableError("the user pool's signing keys cannot be fetched; try again shortly") from None
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("the token has expired; refresh it and retry") from None
        except jwt.InvalidIssuerError:
            raise InvalidTokenError("the token was not issued by this API's user pool") from None
        except jwt.InvalidSignatureError:
            raise InvalidTokenError("the token's signature does not verify against the user pool's keys") from None
        except jwt.PyJWKClientError:
            raise InvalidTokenError("the token is not signed by any key of the user pool") from None
        except jwt.MissingRequiredClaimError as error:
            raise InvalidTokenError(f"the token has no {error.claim} claim") from None
        except jwt.ImmatureSignatureError:
            raise InvalidTokenError("the token is not valid yet (iat or nbf is in the future)") from None
        except jwt.InvalidTokenError:
            raise InvalidTokenError("the token is malformed or uses an algorithm other than RS256") from None
        return claims
