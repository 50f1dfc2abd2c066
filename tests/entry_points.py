"""Run an entry point's `main(argv)` in this process, as its console script or `python -m` would.

Each entry point keeps one test that starts it as a real process (console script, `-m`, exit status); every other
case calls it here: the same argument parsing, output and exit status, without paying for a new interpreter.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock


def run_main(main: Callable[[list[str]], int | None], argv: Sequence[str], *,
             environ: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`main(argv)` with stdout and stderr captured, SystemExit turned into the exit status a process would have,
    and (when given) `environ` as the whole environment."""
    stdout, stderr = io.StringIO(), io.StringIO()
    environment = mock.patch.dict(os.environ, environ, clear=True) if environ is not None else mock.patch.dict({})
    with environment, redirect_stdout(stdout), redirect_stderr(stderr):
        try:
            status = main(list(argv)) or 0
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            if isinstance(exit.code, str):
                print(exit.code, file=stderr)
    return subprocess.CompletedProcess(list(argv), status, stdout.getvalue(), stderr.getvalue())
