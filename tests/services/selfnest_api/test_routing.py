"""The load balancer's checks, and what unknown paths and methods get."""

from __future__ import annotations

from .conftest import RunningApi


def test_health_check_answers_without_sign_in(api: RunningApi) -> None:
    reply = api.client.get("/healthz")
    assert (reply.status, reply.body) == (200, {"status": "ok"})


def test_readiness_checks_the_database(api: RunningApi) -> None:
    reply = api.client.get("/readyz")
    assert (reply.status, reply.body) == (200, {"status": "ready"})


def test_unknown_path_is_a_json_404_naming_it(api: RunningApi) -> None:
    reply = api.client.get("/nope")
    assert reply.status == 404
    assert reply.body == {"error": "not_found", "detail": "no route for GET /nope"}


def test_wrong_method_is_a_405_listing_the_allowed_ones(api: RunningApi) -> None:
    reply = api.client.call("PATCH", "/sessions")
    assert (reply.status, reply.body["detail"]) == (501, "method PATCH is not supported")
    reply = api.client.call("PUT", "/sessions", json_body={})
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, POST"
    assert reply.body["error"] == "method_not_allowed"
