"""The HTTP server under the API: bounded, time-limited, refusing oversized bodies unread, hardened headers."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from selfnest_api import api as api_module
from selfnest_api import http as http_module

from .conftest import ApiLauncher, RunningApi
from .people import Identity, Tokens, unique


@pytest.fixture(scope="module")
def client(identity: Identity) -> Tokens:
    return identity.client(unique("client"))


@contextmanager
def raw_connection(api: RunningApi) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", api.service.port), timeout=15) as connection:
        yield connection


def status_and_headers(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(":") for line in header_lines)}
    while len(rest) < int(headers.get("content-length", 0)):
        chunk = connection.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(status_line.split()[1]), headers, rest


def test_responses_carry_nosniff_hsts_and_no_server_banner(api: RunningApi, client: Tokens) -> None:
    for reply in (api.client.get("/healthz"), api.client.get("/therapists", token=client.access_token),
                  api.client.get("/nope")):
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.headers.get("Server") is None


def test_an_unauthenticated_body_is_refused_without_being_read(api: RunningApi) -> None:
    # Headers promise a body that never comes: the answer must not wait for it (the caller is not signed in).
    with raw_connection(api) as connection:
        connection.sendall(b"POST /sessions HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 16000\r\n\r\n")
        status, headers, _ = status_and_headers(connection)
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="selfnest-api"'


def test_an_oversized_declared_body_is_refused_before_it_is_sent(api: RunningApi, client: Tokens) -> None:
    with raw_connection(api) as connection:
        connection.sendall(f"POST /sessions HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
                           f"Authorization: Bearer {client.access_token}\r\nContent-Length: 50000000\r\n\r\n"
                           .encode())
        status, _, body = status_and_headers(connection)
    assert status == 413
    assert b"the limit is 16384" in body


def test_a_body_that_trickles_in_times_out(api: RunningApi, client: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_module, "BODY_READ_SECONDS", 0.5)
    with raw_connection(api) as connection:
        connection.sendall(f"POST /sessions HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
                           f"Authorization: Bearer {client.access_token}\r\nContent-Length: 100\r\n\r\n{{\"ther"
                           .encode())
        status, _, body = status_and_headers(connection)
    assert status == 408
    assert b"did not arrive within 0.5 seconds" in body


def test_access_logs_keep_no_query_string_or_path_ids(api: RunningApi, client: Tokens,
                                                      capsys: pytest.CaptureFixture[str],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    marker = uuid.uuid4().hex
    capsys.readouterr()
    api.client.get(f"/sessions?status={marker}", token=client.access_token)
    api.client.delete(f"/sessions/{marker}", token=client.access_token)
    logged = capsys.readouterr().out + caplog.text
    assert marker not in logged
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    assert {(line["method"], line["route"]) for line in lines if line["event"] == "request"} == {
        ("GET", "/sessions"), ("DELETE", "/sessions/{session_id}")}


def test_connections_beyond_the_limit_get_a_503_at_once(launcher: ApiLauncher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_module, "MAX_CONNECTIONS", 2)
    limited = launcher.start(database="selfnest_limits")
    with raw_connection(limited), raw_connection(limited), raw_connection(limited) as third:
        # Two idle connections fill the server: the third is answered 503 (uvicorn's own plain-text refusal).
        third.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
        status, _, _ = status_and_headers(third)
        assert status == 503
    assert limited.client.get("/healthz").status == 200
