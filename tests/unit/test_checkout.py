"""A copied, moved or renamed checkout is noticed: `refarch` refuses to grade the old path, `make` reinstalls."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from refarch.tools.cli import checkout_mismatch

ROOT = Path(__file__).resolve().parents[2]


def test_refarch_knows_its_own_checkout_and_no_checkout() -> None:
    assert checkout_mismatch(ROOT / "labs") is None
    assert checkout_mismatch(Path("/")) is None


def test_refarch_in_another_checkout_is_one_line_naming_both_paths(tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(ROOT / "pyproject.toml", moved / "pyproject.toml")
    message = checkout_mismatch(moved)
    assert message is not None and str(ROOT) in message and str(moved) in message and "make bootstrap" in message
    result = subprocess.run([sys.executable, "-m", "refarch.tools.cli", "labs"], cwd=moved, capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_make_reinstalls_a_venv_made_for_another_path(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy(ROOT / name, copy / name)
    (copy / ".venv").symlink_to(ROOT / ".venv")   # the stamp inside names ROOT
    planned = subprocess.run(["make", "-n", "-C", str(copy), ".venv/.installed"], capture_output=True, text=True,
                             check=False, timeout=60)
    assert planned.returncode == 0, planned.stderr
    installed_for = (ROOT / ".venv" / ".installed").read_text(encoding="utf-8").strip()
    assert f"this checkout moved from {installed_for}" in planned.stdout and "--reinstall" in planned.stdout
    if installed_for == str(ROOT):
        # (In a lab test's copy, the linked .venv was made for the original checkout: there a reinstall is right.)
        here = subprocess.run(["make", "-n", "-C", str(ROOT), ".venv/.installed"], capture_output=True, text=True,
                              check=False, timeout=60)
        assert "--reinstall" not in here.stdout
