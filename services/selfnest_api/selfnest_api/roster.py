"""Who holds therapist rights right now, asked of Cognito rather than read from anyone's token.

A therapist's own tokens say what they may do; but whether a *client* may find and book them must not wait for the
therapist to sign in again. So the directory and booking ask the user pool: members of the `therapists` group whose
account is enabled, whose email is verified and who sign in with an authenticator app (TOTP) — the rule the
pre-token-generation trigger applies to the therapist's own tokens (services/selfnest_identity/triggers.py).

The answer is cached for `cache_seconds` (a removal takes effect within that time). Ids not in the cached roster
force one re-read, unless the last re-read already found exactly those missing: a therapist admitted a moment ago is
listed at once, while a removed one does not cost a Cognito read per request. Callers pass only ids that have a
directory profile (rows of our own database), never ids straight from a request.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .auth import THERAPISTS

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

TOTP_MFA = "SOFTWARE_TOKEN_MFA"


@dataclass(frozen=True)
class _MfaAnswer:
    uses_totp: bool
    checked_at: float


class TherapistRoster:
    def __init__(self, *, cognito: CognitoIdentityProviderClient, user_pool_id: str, cache_seconds: float) -> None:
        self._cognito = cognito
        self._pool_id = user_pool_id
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._members: frozenset[uuid.UUID] = frozenset()
        self._known_outside: frozenset[uuid.UUID] = frozenset()   # missing at the last re-read
        self._read_at: float | None = None
        self._mfa: dict[str, _MfaAnswer] = {}

    def holding_rights(self, therapist_ids: Collection[uuid.UUID]) -> frozenset[uuid.UUID]:
        """Those of `therapist_ids` who hold therapist rights now."""
        with self._lock:
            now = time.monotonic()
            wanted = frozenset(therapist_ids)
            stale = self._read_at is None or now - self._read_at >= self._cache_seconds
            newly_missing = wanted - self._members - self._known_outside
            if stale or newly_missing:
                self._members = self._read(now)
                self._read_at = now
                self._known_outside = frozenset()
            self._known_outside |= wanted - self._members
            return self._members & wanted

    def _read(self, now: float) -> frozenset[uuid.UUID]:
        members = set()
        for page in self._cognito.get_paginator("list_users_in_group").paginate(UserPoolId=self._pool_id,
                                                                              GroupName=THERAPISTS):
            for user in page["Users"]:
                attributes = {item["Name"]: item["Value"] for item in user.get("Attributes", [])}
                if user.get("Enabled", True) and attributes.get("email_verified") == "true" and \
                        self._uses_totp(user["Username"], now):
                    members.add(uuid.UUID(attributes["sub"]))
        return frozenset(members)

    def _uses_totp(self, username: str, now: float) -> bool:
        known = self._mfa.get(username)
        if known is None or now - known.checked_at >= self._cache_seconds:
            user = self._cognito.admin_get_user(UserPoolId=self._pool_id, Username=username)
            known = _MfaAnswer(uses_totp=TOTP_MFA in user.get("UserMFASettingList", []), checked_at=now)
            self._mfa[username] = known
        return known.uses_totp
