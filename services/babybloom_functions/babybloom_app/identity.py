"""Who is calling, from the header App Service authentication adds after it has signed the user in.

The platform strips any X-MS-CLIENT-PRINCIPAL a client sends and sets its own, so the header is trustworthy only
behind App Service authentication with "require authentication" on; without a valid header the answer is 401.
The user id is a hash of the identity provider and its subject claim: stable per person, the same across devices,
and no e-mail address or name ends up as a partition key (partition keys show up in logs and metrics).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .problems import ProblemError, unauthenticated

PRINCIPAL_HEADER = "x-ms-client-principal"
SUBJECT_CLAIMS = (
    "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
    "sub",
)


def user_id(headers: Mapping[str, str]) -> str:
    """The caller's user id; raises a 401 ProblemError when the header is missing or malformed."""
    encoded = _header(headers, PRINCIPAL_HEADER)
    if not encoded:
        raise unauthenticated(f"missing {PRINCIPAL_HEADER.upper()} header: sign in through App Service authentication")
    principal = _decode(encoded)
    provider = principal.get("auth_typ")
    claims = principal.get("claims")
    if not isinstance(provider, str) or not provider or not isinstance(claims, list):
        raise _malformed("it needs auth_typ and claims")
    values = {claim.get("typ"): claim.get("val") for claim in claims if isinstance(claim, dict)}
    subject = next((values[name] for name in SUBJECT_CLAIMS if isinstance(values.get(name), str) and values[name]),
                   None)
    if subject is None:
        raise _malformed("no subject claim (objectidentifier, nameidentifier or sub)")
    return hashlib.sha256(f"{provider}\x1f{subject}".encode()).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value.strip()
    return ""


def _decode(encoded: str) -> dict[str, Any]:
    try:
        principal = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        raise _malformed("it is not base64-encoded JSON") from None
    if not isinstance(principal, dict):
        raise _malformed("it is not a JSON object")
    return principal


def _malformed(why: str) -> ProblemError:
    return unauthenticated(f"malformed {PRINCIPAL_HEADER.upper()} header: {why}")
