"""Local servers the tests start (Azurite, cosmosdb-server, ...): each in its own process group, its output kept so
a failed start-up can be shown, stopped by process group at the end."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path


class ServerProcess:
    """A server in its own process group, with its output collected so start-up failures can be shown."""

    def __init__(self, name: str, command: list[str], *, cwd: Path) -> None:
        self.name = name
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], deadline: float) -> re.Match[str]:
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if found := pattern.search(line):
                return found
        raise RuntimeError(f"{self.name} did not start (exit code {self.process.poll()}):\n{''.join(self.output)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def wait_until(check: Callable[[], object], deadline: float, what: str) -> None:
    while True:
        try:
            check()
            return
        except Exception as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer: {error}") from error
            time.sleep(0.1)
