"""Therapist directory and sessions in PostgreSQL.

Double booking is prevented by the database, not by a read-then-write check here: the partial unique indexes on
(therapist_id, starts_at) and (client_id, starts_at) over booked sessions make the second of two racing inserts
fail, and that failure becomes a 409.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import DictRow

from . import logs
from .auth import CLIENTS, THERAPISTS, Caller
from .database import Database
from .errors import ConflictError, ForbiddenError, InvalidRequestError, NotFoundError, TooManyRequestsError
from .inputs import BookingBody, TherapistProfileBody, is_on_the_hour
from .outbox import OutboxRelay, Participant, iso_utc, record_session_event
from .roster import TherapistRoster

SESSION_LENGTH = timedelta(minutes=50)
BOOKING_HORIZON = timedelta(days=90)
DIRECTORY_LIMIT = 500
GROUP_OF_PARTICIPANT: dict[Participant, str] = {"client": CLIENTS, "therapist": THERAPISTS}

# What a session looks like to either participant: the client appears only by pseudonym, never by user id.
SESSION_COLUMNS = """
    s.id, s.therapist_id, p.display_name AS therapist_display_name, s.client_pseudonym, s.starts_at, s.ends_at,
    s.status, s.cancelled_by"""
SLOT_TAKEN = {
    "sessions_therapist_slot": "starts_at: the therapist is already booked at this time",
    "sessions_client_slot": "starts_at: you already have a session at this time",
}


@dataclass(frozen=True, kw_only=True)
class BookingLimits:
    """Per-user abuse limits, from config: web.max_open_bookings_per_client, booking_changes_per_hour and
    sessions_page_size."""

    max_open_bookings: int
    changes_per_hour: int
    sessions_page_size: int


class BookingStore:
    def __init__(self, *, database: Database, outbox: OutboxRelay, roster: TherapistRoster,
                 limits: BookingLimits) -> None:
        self._database = database
        self._outbox = outbox
        self._roster = roster
        self._limits = limits

    def publish_profile(self, *, therapist: Caller, profile: TherapistProfileBody) -> tuple[dict[str, Any], bool]:
        """Create or replace the therapist's directory entry; return it and whether it was new."""
        with self._database.connection() as connection:
            row = _one(connection.execute(
                "INSERT INTO therapist_profiles AS p (therapist_id, display_name, bio, languages, specialties)"
                " VALUES (%(id)s, %(display_name)s, %(bio)s, %(languages)s, %(specialties)s)"
                " ON CONFLICT (therapist_id) DO UPDATE SET display_name = excluded.display_name, bio = excluded.bio,"
                "  languages = excluded.languages, specialties = excluded.specialties, updated_at = now()"
                " RETURNING therapist_id AS id, display_name, bio, languages, specialties, (xmax = 0) AS created",
                {"id": therapist.sub, **profile.model_dump()}))
        created = bool(row.pop("created"))
        return _json_ready(row), created

    def directory(self, *, language: str | None) -> list[dict[str, Any]]:
        with self._database.connection() as connection:
            rows = connection.execute(
                "SELECT therapist_id AS id, display_name, bio, languages, specialties FROM therapist_profiles"
                " WHERE %(language)s::text IS NULL OR languages @> ARRAY[%(language)s::text]"
                " ORDER BY display_name, therapist_id LIMIT %(limit)s",
                {"language": language, "limit": DIRECTORY_LIMIT}).fetchall()
        # Only therapists who hold their rights now: removed from the group or without MFA means unlisted.
        listed = self._roster.holding_rights([row["id"] for row in rows])
        return [_json_ready(row) for row in rows if row["id"] in listed]

    def book(self, *, client: Caller, booking: BookingBody, now: datetime) -> dict[str, Any]:
        starts_at = booking.starts_at.astimezone(UTC)
        _check_bookable(starts_at, now=now)
        if booking.therapist_id == client.sub:
            raise InvalidRequestError("therapist_id: you cannot book a session with yourself")
        with self._database.connection() as connection:
            profiled = connection.execute("SELECT 1 FROM therapist_profiles WHERE therapist_id = %s",
                                          (booking.therapist_id,)).fetchone()
        if profiled is None or not self._roster.holding_rights([booking.therapist_id]):
            raise NotFoundError("therapist_id: no therapist with this id is listed in the directory")
        session_id = uuid.uuid4()
        try:
            with self._database.connection() as connection, connection.transaction():
                self._check_limits(connection, who=client.sub, now=now, booking=True)
                stored = _one(connection.execute(
                    "INSERT INTO sessions (id, therapist_id, client_id, client_pseudonym, starts_at, ends_at, status)"
                    " VALUES (%s, %s, %s, %s, %s, %s, 'booked') RETURNING *",
                    (session_id, booking.therapist_id, client.sub, client.username, starts_at,
                     starts_at + SESSION_LENGTH)))
                event_id = record_session_event(connection, event_type="session.booked", session=stored,
                                                cancelled_by=None)
                shown = self._session_view(connection, session_id)
        except pg_errors.UniqueViolation as error:
            detail = SLOT_TAKEN.get(error.diag.constraint_name or "", "starts_at: this slot is already taken")
            raise ConflictError(detail) from None
        except pg_errors.ForeignKeyViolation:
            raise NotFoundError("therapist_id: no therapist with this id is listed in the directory") from None
        # Ids only (never the pseudonym): what ties this request's correlation id to the booking it made.
        logs.info("session_booked", session_id=str(session_id), event_id=str(event_id))
        self._outbox.publish_after_commit(event_id)
        return shown

    def sessions_of(self, *, caller: Caller, status: str | None, limit: int | None,
                    after: uuid.UUID | None) -> tuple[list[dict[str, Any]], str | None]:
        """Clients see the sessions they booked, therapists the sessions booked with them: one page, oldest start
        first, and the id to pass as `after` for the next page (None on the last)."""
        page_size = min(limit or self._limits.sessions_page_size, self._limits.sessions_page_size)
        with self._database.connection() as connection:
            rows = connection.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions s JOIN therapist_profiles p USING (therapist_id)"  # noqa: S608 - constant columns
                " WHERE ((%(as_client)s AND s.client_id = %(me)s) OR (%(as_therapist)s AND s.therapist_id = %(me)s))"
                "  AND (%(status)s::text IS NULL OR s.status = %(status)s::text)"
                "  AND (%(after)s::uuid IS NULL OR (s.starts_at, s.id) >"
                "       (SELECT starts_at, id FROM sessions WHERE id = %(after)s::uuid))"
                " ORDER BY s.starts_at, s.id LIMIT %(fetch)s",
                {"me": caller.sub, "as_client": CLIENTS in caller.groups, "as_therapist": THERAPISTS in caller.groups,
                 "status": status, "after": after, "fetch": page_size + 1}).fetchall()
        page = [_json_ready(row) for row in rows[:page_size]]
        return page, (page[-1]["id"] if len(rows) > page_size else None)

    def cancel(self, *, caller: Caller, session_id: uuid.UUID, now: datetime) -> dict[str, Any]:
        with self._database.connection() as connection:
            with connection.transaction():
                session = connection.execute(
                    "SELECT * FROM sessions WHERE id = %(id)s AND %(me)s IN (client_id, therapist_id) FOR UPDATE",
                    {"id": session_id, "me": caller.sub}).fetchone()
                if session is None:
                    # Same answer for "no such session" and "not yours": ids of other people's sessions stay secret.
                    raise NotFoundError("no session with this id among your sessions")
                if session["status"] == "cancelled":
                    raise ConflictError("the session is already cancelled")
                if session["starts_at"] <= now:
                    raise ConflictError("the session has already started and can no longer be cancelled")
                self._check_limits(connection, who=caller.sub, now=now, booking=False)
                cancelled_by: Participant = "client" if session["client_id"] == caller.sub else "therapist"
                if GROUP_OF_PARTICIPANT[cancelled_by] not in caller.groups:
                    # A therapist who lost their rights cannot cancel a client's session in that role.
                    raise ForbiddenError(f"cancelling as the {cancelled_by} needs membership of the "
                                         f"{GROUP_OF_PARTICIPANT[cancelled_by]} group")
                stored = _one(connection.execute(
                    "UPDATE sessions SET status = 'cancelled', cancelled_at = now(), cancelled_by = %s"
                    " WHERE id = %s RETURNING *", (cancelled_by, session_id)))
                event_id = record_session_event(connection, event_type="session.cancelled", session=stored,
                                                cancelled_by=cancelled_by)
            shown = self._session_view(connection, session_id)
        logs.info("session_cancelled", session_id=str(session_id), event_id=str(event_id), cancelled_by=cancelled_by)
        self._outbox.publish_after_commit(event_id)
        return shown

    def _check_limits(self, connection: psycopg.Connection[DictRow], *, who: uuid.UUID, now: datetime,
                      booking: bool) -> None:
        """Refuse (429) beyond the caller's open-bookings cap or hourly changes; one caller's requests queue on an
        advisory lock so that racing requests cannot both slip under a limit."""
        connection.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (str(who),))
        counts = _one(connection.execute(
            "SELECT count(*) FILTER (WHERE client_id = %(me)s AND status = 'booked' AND starts_at > %(now)s) AS open,"
            " count(*) FILTER (WHERE client_id = %(me)s AND booked_at > %(now)s - interval '1 hour')"
            "  + count(*) FILTER (WHERE cancelled_at > %(now)s - interval '1 hour' AND ("
            "    (client_id = %(me)s AND cancelled_by = 'client') OR (therapist_id = %(me)s AND"
            "     cancelled_by = 'therapist'))) AS changes"
            " FROM sessions WHERE %(me)s IN (client_id, therapist_id)", {"me": who, "now": now}))
        if booking and counts["open"] >= self._limits.max_open_bookings:
            raise TooManyRequestsError(f"you already hold {counts['open']} upcoming sessions, the most a client may "
                                       "book at once; cancel one or wait until one has taken place")
        if counts["changes"] >= self._limits.changes_per_hour:
            raise TooManyRequestsError(f"at most {self._limits.changes_per_hour} bookings and cancellations per "
                                       "hour; try again later", retry_after_seconds=3600)

    @staticmethod
    def _session_view(connection: psycopg.Connection[DictRow], session_id: uuid.UUID) -> dict[str, Any]:
        return _json_ready(_one(connection.execute(
            f"SELECT {SESSION_COLUMNS} FROM sessions s JOIN therapist_profiles p USING (therapist_id)"  # noqa: S608 - constant columns
            " WHERE s.id = %s", (session_id,))))


def _check_bookable(starts_at: datetime, *, now: datetime) -> None:
    if not is_on_the_hour(starts_at):
        raise InvalidRequestError("starts_at: sessions start on the hour (UTC), e.g. 2030-01-07T09:00:00Z")
    if starts_at <= now:
        raise InvalidRequestError("starts_at: must be in the future")
    if starts_at > now + BOOKING_HORIZON:
        raise InvalidRequestError(f"starts_at: must be at most {BOOKING_HORIZON.days} days ahead")


def _one(cursor: psycopg.Cursor[DictRow]) -> dict[str, Any]:
    row = cursor.fetchone()
    assert row is not None  # INSERT/UPDATE ... RETURNING and lookups of a row this transaction holds
    return row


def _json_ready(row: dict[str, Any]) -> dict[str, Any]:
    return {key: _json_value(value) for key, value in row.items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    return value

