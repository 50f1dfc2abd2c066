"""Who is calling: the Entra ID access token in `Authorization: Bearer`, verified by the app on every request.

The app does not rest on App Service authentication alone: Microsoft's Flex Consumption documentation listed it as
unsupported (unauthenticated callers were not blocked) during the preview, and a configuration change could switch it
off without the code noticing. So a request without a token that verifies (tokens.py) is 401, and the platform's
`X-MS-CLIENT-PRINCIPAL` header is never a source of identity: when App Service authentication is on
(`WEBSITE_AUTH_ENABLED`) it must name the same user as the token; when it is off, the header can only have come from
the caller, and the request is refused as forged.

The user id is a SHA-256 of the provider ("aad", as App Service names Entra ID) and the token's `oid`: stable per
person, the same across devices, and no e-mail address or name ends up as a partition key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from .problems import ProblemError, unauthenticated, unavailable
from .tokens import SigningKeysUnavailableError, TokenRejectedError, TokenVerifier

PROVIDER = "aad"
PRINCIPAL_HEADER = "x-ms-client-principal"
OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
log = logging.getLogger("babybloom.identity")


def user_id_of(object_id: str) -> str:
    return hashlib.sha256(f"{PROVIDER}\x1f{object_id}".encode()).hexdigest()


def authenticate(headers: Mapping[str, str], verifier: TokenVerifier, *, platform_authentication: bool) -> str:
    """The caller's user id; a 401 ProblemError unless the bearer token verifies (503 if keys are unreachable)."""
    token = _bearer_token(headers)
    try:
        claims = verifier.verify(token)
    except TokenRejectedError as error:
        raise unauthenticated(f"the bearer token is not accepted: {error}") from None
    except SigningKeysUnavailableError as error:
        log.error("cannot verify tokens: %s", error)
        raise unavailable("the identity provider's signing keys cannot be fetched; try again shortly") from None
    object_id: str = claims["oid"]
    principal = _header(headers, PRINCIPAL_HEADER)
    if principal:
        if not platform_authentication:
            log.warning("refused a request carrying X-MS-CLIENT-PRINCIPAL while App Service authentication is off")
            raise unauthenticated("X-MS-CLIENT-PRINCIPAL was sent, but App Service authentication is off here "
                                  "(WEBSITE_AUTH_ENABLED), so only the caller can have set it")
        if _principal_object_id(principal) != object_id:
            raise unauthenticated("X-MS-CLIENT-PRINCIPAL names another user than the bearer token")
    return user_id_of(object_id)


def _bearer_token(headers: Mapping[str, str]) -> str:
    authorization = _header(headers, "authorization")
    if not authorization:
        raise unauthenticated("missing Authorization header: send 'Authorization: Bearer <Entra ID access token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("the Authorization header must be 'Bearer <Entra ID access token>'")
    return token.strip()


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value.strip()
    return ""


def _principal_object_id(encoded: str) -> str | None:
    """The object id App Service put into X-MS-CLIENT-PRINCIPAL (base64 JSON with `claims`), or None if unreadable."""
    try:
        principal: Any = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        return None
    claims = principal.get("claims") if isinstance(principal, dict) else None
    if not isinstance(claims, list):
        return None
    found = [claim.get("val") for claim in claims if isinstance(claim, dict) and claim.get("typ") == OBJECT_ID_CLAIM]
    return found[0] if len(found) == 1 and isinstance(found[0], str) else None


__all__ = ["PRINCIPAL_HEADER", "ProblemError", "authenticate", "user_id_of"]
