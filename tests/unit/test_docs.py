"""docs/dr.md quotes the retention calculator for the configured prod policy; the two must not drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from refarch.stacks.selfnest.config import load_settings
from refarch.tools.retention import markdown

ROOT = Path(__file__).resolve().parents[2]


def test_dr_doc_shows_the_calculators_steady_state_for_prod() -> None:
    text = (ROOT / "docs" / "dr.md").read_text(encoding="utf-8")
    quoted = text.split("<!-- retention:prod -->\n", 1)[1].split("\n<!-- /retention:prod -->", 1)[0]
    assert quoted == markdown(load_settings("prod")).rstrip("\n")


def test_every_test_the_security_page_cites_exists() -> None:
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    cited = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text))
    assert cited, "docs/security.md cites no tests"
    missing = [f"{path}::{name}" for path, name in sorted(cited)
               if not re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.MULTILINE)]
    assert missing == []
