"""Background processes that `make up` starts and `make down` stops, by PID, recorded under .local/.

Each process leads its own session (process group), so stopping it also stops what it spawned (the emulator's
Lambda workers, PostgreSQL's backends). The record keeps each PID with its start time: a PID the system has since
given to another program is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class LocalError(Exception):
    """A situation the user must act on; the message is the one line they need."""


@dataclass(frozen=True)
class Process:
    name: str
    pid: int
    started: str   # /proc/<pid>/stat start time: tells this process from a later one that got the same PID
    log: str


class Registry:
    """.local/processes.json: what is running on behalf of `make up`."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.path = state / "processes.json"

    def load(self) -> list[Process]:
        if not self.path.is_file():
            return []
        return [Process(**entry) for entry in json.loads(self.path.read_text(encoding="utf-8"))]

    def running(self) -> list[Process]:
        return [process for process in self.load() if _alive(process)]

    def _save(self, processes: list[Process]) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps([process.__dict__ for process in processes], indent=1), encoding="utf-8")

    def spawn(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None) -> Process:
        log = self.state / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            child = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdout=output, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        process = Process(name=name, pid=child.pid, started=_start_time(child.pid) or "", log=str(log))
        self._save([*self.load(), process])
        return process

    def stop_all(self, *, grace_seconds: float = 10.0) -> list[Process]:
        """SIGTERM every recorded process group (newest first), SIGKILL what is left after the grace period."""
        stopped = []
        for process in reversed(self.load()):
            if _alive(process):
                _signal_group(process.pid, signal.SIGTERM)
                stopped.append(process)
        deadline = time.monotonic() + grace_seconds
        while any(_group_running(process.pid) for process in stopped) and time.monotonic() < deadline:
            time.sleep(0.1)
        for process in stopped:
            if _group_running(process.pid):
                _signal_group(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + grace_seconds   # SIGKILL is delivered asynchronously too
        while any(_group_running(process.pid) for process in stopped) and time.monotonic() < deadline:
            time.sleep(0.05)
        for process in stopped:   # reap our own children, so none is left as a zombie
            with contextlib.suppress(ChildProcessError):
                os.waitpid(process.pid, os.WNOHANG)
        self.path.unlink(missing_ok=True)
        return stopped


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if fields[0] != "Z" else None   # field 22 of stat: starttime; a zombie counts as gone


def _alive(process: Process) -> bool:
    return _start_time(process.pid) == process.started and process.started != ""


def _group_running(group: int) -> bool:
    """Whether any process of the process group `group` (each spawned process leads its own) has not exited: what
    a recorded process started lives on after it unless the whole group is gone."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except OSError:
            continue   # exited while we looked
        if fields[2] == str(group) and fields[0] != "Z":   # fields 3 and 5 of stat: state, process group
            return True
    return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for(check: object, *, what: str, seconds: float, log: str) -> None:
    """Poll `check()` until it is true; else one line naming what did not come up and where its log is."""
    assert callable(check)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise LocalError(f"{what} did not become ready within {seconds:.0f}s; see {log}")
