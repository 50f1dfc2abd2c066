"""Lab pages, challenge first: `python -m refarch.tools.labdocs` rewrites the generated parts of docs/labs/NN-*.md
from the graders themselves — the checks to make pass, one hint per check behind a click, and the walkthrough's
expected final output — so a page cannot drift from its grader (tests/labs/test_labs.py compares them).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from refarch.labs.grading import ROOT, Check, Lab

CHALLENGE = ("<!-- challenge:begin (generated: python -m refarch.tools.labdocs) -->", "<!-- challenge:end -->")
VERIFY = ("<!-- verify:begin (generated) -->", "<!-- verify:end -->")


def page(lab: Lab) -> Path:
    return ROOT / "docs" / "labs" / f"{lab.number}-{lab.slug}.md"


def challenge(lab: Lab, checks: list[Check]) -> str:
    lines = ["## The challenge", "",
             f"Work on a branch (`git switch -c lab-{lab.number}`) and make every check of `make lab LAB={lab.number}` "
             "pass. On the untouched repository:", ""]
    lines += [f"- {'PASS' if result.passed else 'FAIL'} — {result.name}" for result in checks]
    lines += ["", "Under each FAIL the grader prints what it found. Stuck? Open one hint at a time:", ""]
    for index, result in enumerate(checks, start=1):
        lines += [f"<details><summary>Hint {index}: {result.name}</summary>", "", result.hint, "", "</details>"]
    lines += ["", "Then check your understanding: `refarch quiz " + lab.number + "` (three exam-style questions)."]
    return "\n".join(lines)


def verify(lab: Lab, checks: list[Check]) -> str:
    lines = ["```", f"$ make lab LAB={lab.number}", f"Lab {lab.number}: {lab.title}"]
    lines += [f"  PASS  {result.name}" for result in checks]
    lines += [f"{len(checks)}/{len(checks)} checks pass in …s — lab complete", "```"]
    return "\n".join(lines)


def between(text: str, markers: tuple[str, str]) -> str | None:
    begin, end = markers
    if begin not in text or end not in text:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")


def _replace(text: str, markers: tuple[str, str], body: str) -> str:
    begin, end = markers
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text, count=1)


def rewrite(lab: Lab, checks: list[Check]) -> bool:
    path = page(lab)
    text = path.read_text(encoding="utf-8")
    updated = _replace(_replace(text, CHALLENGE, challenge(lab, checks)), VERIFY, verify(lab, checks))
    path.write_text(updated, encoding="utf-8")
    return updated != text


def main() -> int:
    from refarch.labs.catalog import LABS
    from refarch.labs.grading import grade

    for lab in LABS.values():
        changed = rewrite(lab, grade(lab))
        print(f"{page(lab).relative_to(ROOT)}: {'rewritten' if changed else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
