"""The web-tier container answers the load balancer's health check."""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

APP = Path(__file__).resolve().parents[2] / "services" / "selfnest_api" / "app.py"


def load_app() -> ModuleType:
    # The service is a container's code, not part of the refarch package: load it the way the container runs it.
    spec = importlib.util.spec_from_file_location("selfnest_api_app", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def base_url() -> Iterator[str]:
    server = load_app().serve(0)
    server.server_address = ("127.0.0.1", server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_healthz_answers_ok(base_url: str) -> None:
    with urllib.request.urlopen(f"{base_url}/healthz", timeout=5) as response:  # noqa: S310 - local test server
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok"}


def test_unknown_path_is_a_json_404(base_url: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{base_url}/nope", timeout=5)  # noqa: S310 - local test server
    assert caught.value.code == 404
    assert json.loads(caught.value.read())["error"] == "not_found"
