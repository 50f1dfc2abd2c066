"""Shared test set-up: the project's Node 22 must be the `node` that jsii starts for in-process synths; one local
deployment shared by the run (tests/local_deployment.py), owned by the controller process, which stops it at the end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.local_deployment import claim, is_controller, local_deployment, stop_run, sweep

ROOT = Path(__file__).resolve().parents[1]
os.environ["PATH"] = os.pathsep.join([str(ROOT / "node_modules" / ".bin"), str(ROOT / ".venv" / "bin"),
                                      os.environ["PATH"]])

__all__ = ["local_deployment"]


def pytest_configure(config: pytest.Config) -> None:
    if is_controller(config):   # before any worker starts: what killed runs left behind goes, this run's is marked
        sweep()
        claim(config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if is_controller(session.config):
        stop_run(session.config)
