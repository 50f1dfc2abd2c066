"""Test people and slots: every test signs up its own users, so tests sharing one API never share a slot."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .api_client import ApiClient


class Tokens(Protocol):
    """A signed-in person (the moto harness's Tokens, or the local deployment's refarch.local.demo.Person)."""

    @property
    def username(self) -> str: ...
    @property
    def sub(self) -> str: ...
    @property
    def access_token(self) -> str: ...
    @property
    def id_token(self) -> str: ...


class Identity(Protocol):
    """The `identity` fixture: a user pool the API trusts, and people signed in to it."""

    pool_id: str
    region: str
    issuer: str
    jwks_url: str
    api_client_ids: list[str]

    def client(self, pseudonym: str) -> Tokens: ...
    def therapist(self, username: str, *, approved: bool = True, mfa: bool = True) -> Tokens: ...
    def admin(self, username: str) -> Tokens: ...
    def enable_totp(self, username: str) -> None: ...
    cognito: Any


class SessionEvents(Protocol):
    """The `session_events` fixture: the topic the API publishes to, and what reached it since the last drain."""

    topic_arn: str

    def drain(self) -> list[dict[str, Any]]: ...


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def slot(*, hours_ahead: int) -> str:
    """A bookable start: on a UTC hour, `hours_ahead` (>= 2) hours after the current hour began."""
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return (this_hour + timedelta(hours=hours_ahead)).isoformat().replace("+00:00", "Z")


def profile(**changes: Any) -> dict[str, Any]:
    return {"display_name": "Dr. Ada Calm", "bio": "Cognitive behavioural therapy.", "languages": ["en", "de"],
            "specialties": ["anxiety"], **changes}


def listed_therapist(identity: Identity, client: ApiClient, **profile_changes: Any) -> Tokens:
    """An approved therapist with a published directory profile."""
    therapist = identity.therapist(unique("therapist"))
    reply = client.put("/therapists/me", profile(**profile_changes), token=therapist.access_token)
    assert reply.status == 201, reply.body
    return therapist


def book(client: ApiClient, *, who: Tokens, therapist: Tokens, starts_at: str) -> Any:
    return client.post("/sessions", {"therapist_id": therapist.sub, "starts_at": starts_at}, token=who.access_token)
