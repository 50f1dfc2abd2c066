"""A warm standby's API runs on the DR region's read replica until failover promotes it: reads are served, a change
is refused with a 503 that says why and when to retry, and the outbox relay waits instead of failing every round
(or publishing, from the replica, events the primary already published)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from psycopg import sql
from selfnest_api.database import STANDBY_REFUSAL, STANDBY_RETRY_SECONDS

from .conftest import ApiLauncher
from .people import Identity, book, listed_therapist, slot, unique
from .postgres import TemporaryPostgres


def read_only(postgres: TemporaryPostgres, database: str) -> None:
    """What a read replica is to its clients: every transaction read-only (and the open connections dropped, as a
    replica's clients reconnect)."""
    with postgres.admin() as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
            sql.Identifier(database)))
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                      " AND pid <> pg_backend_pid()", (database,))


def test_a_standby_serves_reads_and_refuses_changes_until_promoted(
        launcher: ApiLauncher, identity: Identity, postgres: TemporaryPostgres,
        capsys: pytest.CaptureFixture[str]) -> None:
    database = unique("standby").replace("-", "_")
    api = launcher.start(database=database, retry_seconds=0.1)
    therapist, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    assert book(api.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=80)).status == 201

    read_only(postgres, database)
    listed: Any = api.client.get("/sessions", token=client.access_token)
    assert listed.status == 200 and len(listed.body["sessions"]) == 1
    refused = book(api.client, who=client, therapist=therapist, starts_at=slot(hours_ahead=82))
    assert refused.status == 503
    assert refused.body == {"error": "service_unavailable", "detail": STANDBY_REFUSAL}
    assert refused.headers["Retry-After"] == STANDBY_RETRY_SECONDS

    assert api.service.database.is_read_only()
    logged, deadline = "", time.monotonic() + 30
    while '"outbox_relay_paused"' not in logged and time.monotonic() < deadline:
        logged += capsys.readouterr().out
        time.sleep(0.05)
    time.sleep(0.5)   # a few more relay rounds (0.1 s apart): each would log a failure if it tried to write
    logged += capsys.readouterr().out
    before, paused, after = logged.partition('"outbox_relay_paused"')
    assert paused, logged
    assert '"outbox_relay_failed"' not in after, after
    # A round that was on a connection when the replica dropped its clients may fail once, with the drop itself.
    failures = [line for line in before.splitlines() if '"outbox_relay_failed"' in line]
    assert all('"AdminShutdown"' in line for line in failures), failures
