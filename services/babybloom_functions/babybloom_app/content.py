"""The weekly content shipped with the app (seed/weekly_content.json), one entry per week of pregnancy 1-42."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .pregnancy import FIRST_WEEK, LAST_WEEK

SEED_FILE = Path(__file__).resolve().parent / "seed" / "weekly_content.json"


@dataclass(frozen=True, kw_only=True)
class WeeklySeed:
    # Bumped whenever the file's text changes, so stored copies older than the app are replaced on their next read.
    version: int
    weeks: dict[int, dict[str, Any]]

    def week(self, week: int) -> dict[str, Any]:
        return self.weeks[week]


def load_seed(path: Path = SEED_FILE) -> WeeklySeed:
    document = json.loads(path.read_text(encoding="utf-8"))
    weeks = {int(entry["week"]): entry for entry in document["weeks"]}
    expected = set(range(FIRST_WEEK, LAST_WEEK + 1))
    if set(weeks) != expected:
        raise ValueError(f"{path.name}: weeks must be exactly {FIRST_WEEK}-{LAST_WEEK}, "
                         f"missing {sorted(expected - set(weeks))}, extra {sorted(set(weeks) - expected)}")
    return WeeklySeed(version=int(document["version"]), weeks=weeks)
