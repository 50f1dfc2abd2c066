"""What `make down` relies on: every process `make up` records is stopped with its whole process group, and a
recorded PID that now belongs to another program is never signalled."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from refarch.local import postgres
from refarch.local.processes import LocalError, Registry


def test_stop_all_stops_each_process_and_what_it_spawned(tmp_path: Path):
    registry = Registry(tmp_path)
    child_pid_file = tmp_path / "child.pid"
    script = ("import subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', 'import time; "
              f"time.sleep(600)']); open({str(child_pid_file)!r}, 'w').write(str(child.pid)); time.sleep(600)")
    parent = registry.spawn("parent", [sys.executable, "-c", script], env=dict(os.environ))
    deadline = time.monotonic() + 20
    while not child_pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    child_pid = int(child_pid_file.read_text())
    assert [process.name for process in registry.running()] == ["parent"]
    stopped = registry.stop_all()
    assert [process.pid for process in stopped] == [parent.pid]
    assert registry.running() == []
    assert not _alive(child_pid)


def test_a_recorded_pid_now_used_by_another_program_is_left_alone(tmp_path: Path):
    registry = Registry(tmp_path)
    ours = registry.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"], env=dict(os.environ))
    # Pretend the record is from a crashed run: same PID, but another start time (the PID was reused).
    records = json.loads(registry.path.read_text())
    records[0]["started"] = "1"
    registry.path.write_text(json.dumps(records))
    try:
        assert registry.running() == []
        assert registry.stop_all() == []
        assert _alive(ours.pid)
    finally:
        os.killpg(ours.pid, 9)
        os.waitpid(ours.pid, 0)


def test_a_missing_postgresql_is_one_line(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr("glob.glob", lambda pattern: [])
    with pytest.raises(LocalError) as missing:
        postgres.find_binary("initdb")
    assert str(missing.value) == ("PostgreSQL's initdb is not installed: run `make postgres-server` "
                                  "(apt package postgresql), then `make up` again")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


