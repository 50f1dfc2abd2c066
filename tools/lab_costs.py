"""`make lab-costs`: what each lab's change does to the bill, written into its page (docs/labs/NN-*.md).

For every lab, the reference solution is applied in a scratch copy of the repository and `refarch cost --json` runs
there and here, for each environment or stack the solution touches; the difference goes into the lab page between
markers. The lab tests (tests/labs) recompute the same figures in their solved copies and fail when a page drifts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .deployment import ROOT

COMMAND = "make lab-costs"
BEGIN = f"<!-- begin generated bill impact ({COMMAND}) -->"
END = f"<!-- end generated bill impact ({COMMAND}) -->"
SHARED = (".venv", "node_modules", ".cache", ".build")  # linked into a copy, not copied


@dataclass(frozen=True)
class Target:
    """One deployment a lab changes: Selfnest environment or BabyBloom stack."""

    app: str  # "selfnest" | "babybloom"
    name: str  # environment or stack

    @property
    def cost_args(self) -> list[str]:
        return ["--env", self.name] if self.app == "selfnest" else ["--azure", "--stack", self.name]

    @property
    def title(self) -> str:
        return f"{'Selfnest' if self.app == 'selfnest' else 'BabyBloom'} {self.name}"


def targets(patch: Path) -> list[Target]:
    """From the files a solution patch touches: a config file names its environment, code changes count for dev."""
    files = re.findall(r"^\+\+\+ b/(\S+)", patch.read_text(encoding="utf-8"), flags=re.MULTILINE)
    found: list[Target] = []
    for name in files:
        if match := re.fullmatch(r"config/(\w+)\.yaml", name):
            found.append(Target("selfnest", match.group(1)))
        elif match := re.fullmatch(r"Pulumi\.(\w+)\.yaml", name):
            found.append(Target("babybloom", match.group(1)))
    if not found:
        app = "babybloom" if any("babybloom" in name or "/azure/" in name for name in files) else "selfnest"
        found.append(Target(app, "dev"))
    return sorted(set(found), key=lambda target: (target.app, target.name))


def copy_repository(destination: Path) -> Path:
    """The repository's files (tracked and new, not ignored), with the environments and caches linked."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree but not yet in the index
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    for name in SHARED:
        (ROOT / name).mkdir(exist_ok=True)
        (destination / name).symlink_to(ROOT / name)
    return destination


def in_copy(copy: Path, *args: str, timeout: int = 600,
            environ: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Python in `copy`, importing refarch.* from the copy (its .typecheck symlink tree), not the editable install;
    in `environ` (default: this process's environment)."""
    environment = {**(os.environ if environ is None else environ), "PYTHONPATH": os.pathsep.join(
        [str(copy / ".typecheck"), str(copy / "services" / "babybloom_functions")])}
    return subprocess.run([sys.executable, *args], cwd=copy, env=environment, capture_output=True, text=True,
                          check=False, timeout=timeout)


def bill(repository: Path, target: Target, *,
         run: Callable[..., subprocess.CompletedProcess[str]] = in_copy) -> dict[str, Any]:
    """`refarch cost --json` for `target`, run in `repository` by `run` (the lab tests pass one that keeps results)."""
    result = run(repository, "-m", "refarch.tools.cli", "cost", *target.cost_args, "--json")
    if result.returncode != 0:
        raise RuntimeError(f"refarch cost {' '.join(target.cost_args)} failed in {repository}: "
                           f"{result.stderr.strip()[-2000:]}")
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def impact(target: Target, before: dict[str, Any], after: dict[str, Any]) -> str:
    """Markdown: the always-on and usage totals before and after, and every line whose amount changes."""
    def totals(found: dict[str, Any]) -> dict[tuple[str, str, str], float]:
        summed: dict[tuple[str, str, str], float] = {}
        for line in found["lines"]:
            key = (line["item"], line["region"], "always on" if line["always_on"] else "usage")
            summed[key] = summed.get(key, 0.0) + line["monthly"]
        return summed

    old, new = totals(before), totals(after)
    rows = []
    for key in sorted(set(old) | set(new)):
        delta = new.get(key, 0.0) - old.get(key, 0.0)
        if abs(delta) >= 0.005:
            item, region, kind = key
            rows.append(f"| {item} ({region}, {kind}) | {_money(old.get(key, 0.0))} | {_money(new.get(key, 0.0))} | "
                        f"{_signed(delta)} |")
    change = after["always_on_monthly"] - before["always_on_monthly"]
    out = [f"**{target.title}**, from `refarch cost {' '.join(target.cost_args)}` before and after the reference "
           f"solution: always on {_money(before['always_on_monthly'])} → {_money(after['always_on_monthly'])} a "
           f"month ({_signed(change)}; idle {_money(before['idle_per_day'])} → {_money(after['idle_per_day'])} a "
           f"day); usage at the assumed volumes {_money(before['usage_monthly_at_assumed_volumes'])} → "
           f"{_money(after['usage_monthly_at_assumed_volumes'])}."]
    if rows:
        out += ["", "| line | before | after | change |", "|---|---|---|---|", *rows]
    else:
        out += ["", "No line of the bill changes: this lab changes behaviour, not what is billed."]
    return "\n".join(out)


def _money(amount: float) -> str:
    return f"${amount:,.2f}"


def _signed(amount: float) -> str:
    return f"{'+' if amount >= 0 else '−'}${abs(amount):,.2f}/month"


def block(sections: list[str]) -> str:
    return "\n".join([BEGIN, *("\n\n".join(sections).splitlines()), END])


def with_block(page_text: str, generated: str) -> str:
    """Replace the page's generated block, or put one at the start of its cost section (after the heading)."""
    if BEGIN in page_text and END in page_text:
        head, rest = page_text.split(BEGIN, 1)
        return head + generated + rest.split(END, 1)[1]
    heading = re.search(r"^## What it would cost[^\n]*\n\n", page_text, flags=re.MULTILINE)
    if heading is None:
        raise ValueError("no '## What it would cost ...' section to put the bill impact in")
    return page_text[:heading.end()] + generated + "\n\n" + page_text[heading.end():]


def page_of(number: str) -> Path:
    (page,) = (ROOT / "docs" / "labs").glob(f"{number}-*.md")
    return page


def main(argv: list[str] | None = None) -> int:
    from refarch.labs.catalog import LABS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("labs", nargs="*", help="lab numbers (default: all)")
    args = parser.parse_args(argv)
    before: dict[Target, dict[str, Any]] = {}
    for number in args.labs or list(LABS):
        lab = LABS[number.zfill(2)]
        sections = []
        with tempfile.TemporaryDirectory(prefix=f"refarch-lab{lab.number}-") as scratch:
            copy = copy_repository(Path(scratch) / "repo")
            subprocess.run(["git", "apply", str(lab.solution.relative_to(ROOT))], cwd=copy, check=True)
            for target in targets(lab.solution):
                if target not in before:
                    before[target] = bill(ROOT, target)
                sections.append(impact(target, before[target], bill(copy, target)))
        page = page_of(lab.number)
        page.write_text(with_block(page.read_text(encoding="utf-8"), block(sections)), encoding="utf-8")
        print(f"lab {lab.number}: bill impact written to {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
