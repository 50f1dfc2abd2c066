"""Which config changes a deployed Selfnest environment can take as an in-place CloudFormation update.

Variants are every supported combination of environment x DR tier x one lab's config knob (read from the lab's
reference solution, so a new lab is covered without editing a list). What an update may not do to a stateful
resource is refarch.tools.update_safety's to judge (lab 14 grades with the same checker).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from refarch.labs.catalog import LABS
from refarch.stacks.selfnest.config import (
    CONFIG_DIR,
    DR_TIERS,
    ConfigError,
    SelfnestSettings,
    available_environments,
    load_settings,
)

_REMOVED = object()   # a knob that deletes a config key


@dataclass(frozen=True)
class Variant:
    environment: str
    tier: str
    knob: str | None          # the lab whose config change is applied, or None for the file as shipped

    @property
    def name(self) -> str:
        return f"{self.environment}:{self.tier}" + (f"+lab{self.knob}" if self.knob else "")


def _leaves(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*prefix, str(key)))
    else:
        yield prefix, node


def _config_change(before: dict[str, Any], after: dict[str, Any]) -> dict[tuple[str, ...], Any]:
    old, new = dict(_leaves(before)), dict(_leaves(after))
    return {**{path: value for path, value in new.items() if old.get(path, _REMOVED) != value},
            **{path: _REMOVED for path in old if path not in new}}


@cache
def lab_knobs() -> dict[str, dict[tuple[str, ...], Any]]:
    """Lab number -> the config change its reference solution makes (key path -> new value), for labs that change
    config. The solution's config hunks are applied to a copy of config/ with `git apply`."""
    knobs: dict[str, dict[tuple[str, ...], Any]] = {}
    for number, lab in LABS.items():
        with tempfile.TemporaryDirectory(prefix="refarch-knob-") as scratch:
            shutil.copytree(CONFIG_DIR, Path(scratch) / "config")
            subprocess.run(["git", "apply", "--include=config/*", str(lab.solution)], cwd=scratch, check=True,
                           capture_output=True)
            change: dict[tuple[str, ...], Any] = {}
            for path in sorted(CONFIG_DIR.glob("*.yaml")):
                change.update(_config_change(yaml.safe_load(path.read_text(encoding="utf-8")),
                                             yaml.safe_load((Path(scratch) / "config" / path.name).read_text(
                                                 encoding="utf-8"))))
        if change:
            knobs[number] = change
    return knobs


def _with_change(raw: dict[str, Any], change: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(raw))   # a deep copy
    for path, value in change.items():
        node = config
        for part in path[:-1]:
            node = node.setdefault(part, {})
        if value is _REMOVED:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return config


def variant_settings(variant: Variant, config_dir: Path) -> SelfnestSettings:
    """The variant's settings, validated like config/<env>.yaml; its config file is written under `config_dir`."""
    raw = yaml.safe_load((CONFIG_DIR / f"{variant.environment}.yaml").read_text(encoding="utf-8"))
    if variant.knob is not None:
        raw = _with_change(raw, lab_knobs()[variant.knob])
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / f"{variant.environment}.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return load_settings(variant.environment, config_dir=config_dir, dr_tier=variant.tier)


@cache
def supported_variants() -> tuple[Variant, ...]:
    """Every environment x DR tier x (no knob | one lab's knob) that config accepts, without duplicates."""
    found: dict[str, Variant] = {}
    with tempfile.TemporaryDirectory(prefix="refarch-variants-") as scratch:
        for environment in available_environments():
            for tier in DR_TIERS:
                for knob in (None, *lab_knobs()):
                    variant = Variant(environment, tier, knob)
                    try:
                        settings = variant_settings(variant, Path(scratch) / variant.name)
                    except ConfigError:
                        continue   # a combination config refuses (dev has no DR region for pilot light)
                    found.setdefault(settings.model_dump_json(), variant)
    return tuple(found.values())
