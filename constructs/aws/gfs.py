"""Grandfather-father-son retention calculator: restore points in steady state, per generation and storage class.

Pure Python, typed, no CDK: docs/dr.md is generated from it (`python -m refarch.tools.retention`), and labs use it
to check a learner's arithmetic. A generation takes one backup every `every_days` days and keeps each one
`expire_after_days` days, moving it through storage classes on the way; once the oldest backup has reached its
expiry (the steady state), the count and placement of restore points no longer change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

DAYS_PER_MONTH = 365.25 / 12
# How often each generation of the Selfnest policy runs.
CADENCE_DAYS: dict[str, float] = {"daily": 1.0, "weekly": 7.0, "monthly": DAYS_PER_MONTH}


@dataclass(frozen=True, kw_only=True)
class GenerationPolicy:
    """One generation: a backup every `every_days`, stored in `first_class`, then moved by `transitions`."""

    name: str
    every_days: float
    expire_after_days: int
    transitions: tuple[tuple[str, int], ...] = ()   # (storage class, age in days when it moves there), in order
    first_class: str = "STANDARD"

    def __post_init__(self) -> None:
        if self.every_days <= 0 or self.expire_after_days <= 0:
            raise ValueError(f"{self.name}: the cadence and the expiry must be positive")
        days = [day for _, day in self.transitions]
        if days != sorted(days) or any(day >= self.expire_after_days for day in days):
            raise ValueError(f"{self.name}: transitions must be in order and before the expiry")


@dataclass(frozen=True, kw_only=True)
class GenerationFootprint:
    name: str
    restore_points: int
    points_by_class: dict[str, int] = field(default_factory=dict)
    oldest_restore_point_days: float = 0.0   # how far back this generation lets you go

    def gib_by_class(self, backup_size_gib: float) -> dict[str, float]:
        return {storage_class: count * backup_size_gib for storage_class, count in self.points_by_class.items()}


def steady_state(policy: GenerationPolicy) -> GenerationFootprint:
    """Restore points alive just after a backup, once the generation is full: the ages 0, p, 2p, ... < expiry."""
    boundaries = [(policy.first_class, 0), *policy.transitions]
    ends = [day for _, day in policy.transitions] + [policy.expire_after_days]
    points_by_class: dict[str, int] = {}
    for (storage_class, start), end in zip(boundaries, ends, strict=True):
        count = _backups_aged_before(end, policy.every_days) - _backups_aged_before(start, policy.every_days)
        points_by_class[storage_class] = points_by_class.get(storage_class, 0) + count
    total = _backups_aged_before(policy.expire_after_days, policy.every_days)
    return GenerationFootprint(name=policy.name, restore_points=total, points_by_class=points_by_class,
                               oldest_restore_point_days=(total - 1) * policy.every_days)


def steady_state_all(policies: Sequence[GenerationPolicy]) -> list[GenerationFootprint]:
    return [steady_state(policy) for policy in policies]


def storage_by_class(footprints: Iterable[GenerationFootprint], backup_size_gib: float) -> dict[str, float]:
    """GiB held in each storage class across generations, for backups of `backup_size_gib` each (full copies)."""
    totals: dict[str, float] = {}
    for footprint in footprints:
        for storage_class, gib in footprint.gib_by_class(backup_size_gib).items():
            totals[storage_class] = totals.get(storage_class, 0.0) + gib
    return totals


def _backups_aged_before(days: float, every_days: float) -> int:
    """How many of the ages 0, p, 2p, ... are below `days` (a tiny tolerance absorbs float error in p)."""
    return max(0, math.ceil(days / every_days - 1e-9))
