"""A cache that outlives one test run, for results that cost seconds and depend only on files and tools here.

Every entry is keyed on all the inputs that can change its result, listed by the caller as named parts
(sources, config, lock files, context, environment variables, tool versions), so a change to any of them misses
the cache and computes afresh: a stale entry would be a green that proves nothing. Entries live under `.cache/`
(git-ignored). Each label (a variant, e.g. `dev`) keeps its most recently used entries, up to `keep_per_label`:
one run may want several entries under one label (the committed tree's `dev` and each lab solution's patched
`dev`), and all of them must still be there on the next run, or a warm run misses every time; older ones are
evicted, so the folder stays bounded (labels x `keep_per_label` entries) run after run. Parallel test workers
that want the same entry wait for the first one to write it (a lock per entry), and an entry a process is reading
is never evicted (that process holds a shared lock on it until it exits).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
CACHE_ROOT = ROOT / ".cache" / "tests"
# Build debris that never feeds a result (compiled bytecode, tool caches).
IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
COMPLETE = ".complete"
KEY_LENGTH = 20
# Entries kept per label: a warm run of the lab tests uses up to 10 under one label (the committed tree's `dev` and each
# lab solution's); room to spare for more labs and a second branch, and at most ~0.4 GiB of synths a label.
KEEP_PER_LABEL = 16


def files_digest(paths: Iterable[Path], *, root: Path = ROOT) -> str:
    """Names and contents of every file in `paths` (files or folders, recursively), bytecode and tool caches aside."""
    digest = hashlib.sha256()
    for path in sorted(_files(paths)):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            for child in path.rglob("*"):
                if child.is_file() and not IGNORED_PARTS.intersection(child.parts) and child.suffix != ".pyc":
                    yield child


# Once per process (a test run installs nothing; ~0.2 s and a `node` start a call, and every key asks for both).
@functools.cache
def installed_distributions() -> str:
    """Every installed Python distribution with its version, and the interpreter's own version."""
    found = sorted({f"{dist.metadata['Name']}=={dist.version}" for dist in metadata.distributions()})
    return json.dumps([sys.version, *found])


@functools.cache
def node_version() -> str:
    """The `node` that jsii starts (the project's Node 22 comes first on PATH)."""
    node = shutil.which("node")
    if node is None:
        return "no node"
    return subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()


def environment_values(names: Iterable[str], prefixes: Iterable[str],
                       environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    prefixes = tuple(prefixes)
    wanted = {name: environ[name] for name in environ if name in set(names) or name.startswith(prefixes)}
    return json.dumps(sorted(wanted.items()))


def key_of(parts: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(parts.items())).encode()).hexdigest()[:KEY_LENGTH]


@dataclass(frozen=True)
class RunCache:
    """Entries of one kind (e.g. `synth`): each a folder named `<label>-<key>` holding what `build` wrote."""

    kind: str
    root: Path = CACHE_ROOT
    keep_per_label: int = KEEP_PER_LABEL

    @property
    def folder(self) -> Path:
        return self.root / self.kind

    def entry(self, label: str, parts: Mapping[str, str]) -> Path:
        return self.folder / f"{label}-{key_of(parts)}"

    def get_or_build(self, label: str, parts: Mapping[str, str], build: Callable[[Path], None]) -> tuple[Path, bool]:
        """The entry's folder, built by `build(folder)` if it is missing; and whether it was built now.

        The folder stays readable for the rest of this process: it is marked in use until the process exits. Every
        use is recorded (the `.complete` marker's time), so eviction keeps what runs still ask for.
        """
        entry = self.entry(label, parts)
        if entry in _IN_USE:
            return entry, False
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = _lock_file(entry).open("a")
        fcntl.flock(handle, fcntl.LOCK_SH)
        built = False
        try:
            if not (entry / COMPLETE).is_file():
                # Readers hold the lock shared, a builder exclusive: a worker that finds the entry missing waits
                # for one that is building it, then uses what it built.
                fcntl.flock(handle, fcntl.LOCK_UN)
                fcntl.flock(handle, fcntl.LOCK_EX)
                if not (entry / COMPLETE).is_file():
                    shutil.rmtree(entry, ignore_errors=True)   # a build that died half-way
                    entry.mkdir()
                    build(entry)
                    (entry / "inputs.json").write_text(json.dumps(dict(parts), indent=1, sort_keys=True),
                                                       encoding="utf-8")
                    _mark_used(entry)
                    built = True
                fcntl.flock(handle, fcntl.LOCK_SH)
            if not built:
                _mark_used(entry)   # used now: the last of its label to be evicted
        except BaseException:
            handle.close()
            raise
        _IN_USE[entry] = handle   # held shared until this process exits: the entry is not evicted under it
        if built:
            self._evict_older(label, keep=entry)
        return entry, built

    @staticmethod
    def release(entry: Path) -> None:
        """Stop marking `entry` in use, as if this process had exited."""
        handle = _IN_USE.pop(entry, None)
        if handle is not None:
            handle.close()

    def _evict_older(self, label: str, *, keep: Path) -> None:
        """Remove the least recently used entries of `label` beyond `keep_per_label` (never `keep`, never one that
        a process reads or builds)."""
        others = [other for other in self.folder.glob(f"{label}-*")
                  if other != keep and other.is_dir()
                  and re.fullmatch(rf"{re.escape(label)}-[0-9a-f]{{{KEY_LENGTH}}}", other.name)]
        others.sort(key=_last_used, reverse=True)
        for other in others[max(self.keep_per_label - 1, 0):]:
            with _locked(_lock_file(other), blocking=False) as unused:
                if unused:     # no process reads it (readers hold a shared lock) and none builds it
                    # Unmarked first and moved aside at once, so a half-finished removal never looks complete.
                    (other / COMPLETE).unlink(missing_ok=True)
                    trash = other.with_name(f".removing-{other.name}-{os.getpid()}")
                    other.rename(trash)
                    shutil.rmtree(trash, ignore_errors=True)
                    _lock_file(other).unlink(missing_ok=True)


def _mark_used(entry: Path) -> None:
    # The clock's own nanoseconds: the file system stamps "now" in coarse ticks, which would tie quick uses.
    now = time.time_ns()
    (entry / COMPLETE).touch()
    os.utime(entry / COMPLETE, ns=(now, now))


def _last_used(entry: Path) -> int:
    """When a run last built or read `entry` (an entry left half-built counts as never used)."""
    try:
        return (entry / COMPLETE).stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _lock_file(entry: Path) -> Path:
    return entry.with_name(entry.name + ".lock")


# Open handles holding a shared lock on each entry this process reads; closed (and released) when it exits.
_IN_USE: dict[Path, IO[str]] = {}


@contextmanager
def _locked(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive lock on `path`; with blocking=False, yields False at once if anyone holds it."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
