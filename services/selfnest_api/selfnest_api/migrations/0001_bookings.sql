-- Therapist directory, sessions and the transactional outbox of session events.
-- People are Cognito users: their id is the user pool's `sub`. For clients we keep nothing but that id and the
-- pseudonym they signed up with (no email, phone or address), so a therapist can only ever see the pseudonym.

CREATE TABLE therapist_profiles (
    therapist_id uuid PRIMARY KEY,
    display_name text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 80),
    bio text NOT NULL CHECK (char_length(bio) <= 2000),
    languages text[] NOT NULL CHECK (cardinality(languages) BETWEEN 1 AND 10),
    specialties text[] NOT NULL CHECK (cardinality(specialties) <= 20),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX therapist_profiles_languages ON therapist_profiles USING gin (languages);

CREATE TABLE sessions (
    id uuid PRIMARY KEY,
    therapist_id uuid NOT NULL REFERENCES therapist_profiles (therapist_id),
    client_id uuid NOT NULL,
    client_pseudonym text NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('booked', 'cancelled')),
    booked_at timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz,
    cancelled_by text CHECK (cancelled_by IN ('client', 'therapist')),
    CHECK (extract(epoch FROM starts_at) % 3600 = 0),
    CHECK (ends_at = starts_at + interval '50 minutes'),
    CHECK (client_id <> therapist_id),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL AND cancelled_by IS NOT NULL))
);
-- No double booking, decided by PostgreSQL even when requests race: every session starts on a (UTC) hour and
-- lasts less than one, so "same person, same start" is exactly "overlapping". Cancelled sessions free their slot.
CREATE UNIQUE INDEX sessions_therapist_slot ON sessions (therapist_id, starts_at) WHERE status = 'booked';
CREATE UNIQUE INDEX sessions_client_slot ON sessions (client_id, starts_at) WHERE status = 'booked';
CREATE INDEX sessions_by_client ON sessions (client_id, starts_at);
CREATE INDEX sessions_by_therapist ON sessions (therapist_id, starts_at);

-- Written in the same transaction as the session change, published to SNS afterwards (at least once; consumers
-- deduplicate on event_id). `message` is the exact SNS message body.
CREATE TABLE outbox_events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    event_type text NOT NULL,
    message text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    publish_attempts integer NOT NULL DEFAULT 0,
    last_error text
);
CREATE INDEX outbox_events_pending ON outbox_events (position) WHERE published_at IS NULL;
