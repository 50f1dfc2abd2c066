"""S3 lifecycle and AWS Backup retention rules, checked against AWS's minimums before anything is synthesized.

Pure Python (no CDK imports): the config validator uses it on every load, and the same functions answer
`refarch calc lifecycle --transition CLASS:DAYS ... [--expire DAYS]` later. Each problem is one line that names the
rule that breaks and the minimum it breaks, so the caller only has to say where the rule came from.

Sources: Amazon S3 User Guide, "Transitioning objects using Amazon S3 Lifecycle" (constraints and minimum storage
durations) and the AWS Backup API reference, `Lifecycle` (cold storage is kept at least 90 days).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class StorageClass(StrEnum):
    """S3 storage classes a lifecycle rule may move objects into, in S3's waterfall order (only ever downwards)."""

    STANDARD_IA = "STANDARD_IA"
    ONEZONE_IA = "ONEZONE_IA"
    GLACIER_IR = "GLACIER_IR"
    GLACIER = "GLACIER"
    DEEP_ARCHIVE = "DEEP_ARCHIVE"


# Days an object is billed for in each class even if it leaves sooner (deleted, overwritten or moved on).
MINIMUM_STORAGE_DAYS: dict[StorageClass, int] = {
    StorageClass.STANDARD_IA: 30,
    StorageClass.ONEZONE_IA: 30,
    StorageClass.GLACIER_IR: 90,
    StorageClass.GLACIER: 90,
    StorageClass.DEEP_ARCHIVE: 180,
}
# S3 refuses lifecycle transitions into the infrequent-access classes for objects younger than this.
INFREQUENT_ACCESS_EARLIEST_DAY = 30
INFREQUENT_ACCESS = frozenset({StorageClass.STANDARD_IA, StorageClass.ONEZONE_IA})
WATERFALL = tuple(StorageClass)
READABLE_NAMES: dict[StorageClass, str] = {
    StorageClass.STANDARD_IA: "Standard-IA",
    StorageClass.ONEZONE_IA: "One Zone-IA",
    StorageClass.GLACIER_IR: "Glacier Instant Retrieval",
    StorageClass.GLACIER: "Glacier Flexible Retrieval",
    StorageClass.DEEP_ARCHIVE: "Glacier Deep Archive",
}

# AWS Backup: a recovery point moved to cold storage must stay there at least this long.
BACKUP_COLD_STORAGE_MINIMUM_DAYS = 90


@dataclass(frozen=True, kw_only=True)
class Transition:
    """Move objects to `storage_class` once they are `after_days` days old."""

    storage_class: StorageClass
    after_days: int

    def __str__(self) -> str:
        return f"{self.storage_class.value} at day {self.after_days}"


@dataclass(frozen=True, kw_only=True)
class LifecycleCheck:
    valid: bool
    problems: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"valid": self.valid, "problems": list(self.problems)}


def parse_transition(text: str) -> Transition:
    """`GLACIER_IR:30` -> Transition(GLACIER_IR, 30); ValueError with the allowed classes otherwise."""
    name, separator, days = text.partition(":")
    allowed = ", ".join(WATERFALL)
    if not separator or not days.strip().isdigit():
        raise ValueError(f"{text!r} is not CLASS:DAYS, e.g. GLACIER_IR:30 (classes: {allowed})")
    try:
        storage_class = StorageClass(name.strip().upper())
    except ValueError:
        raise ValueError(f"{name!r} is not a lifecycle storage class (allowed: {allowed})") from None
    return Transition(storage_class=storage_class, after_days=int(days))


def lifecycle_problems(transitions: Sequence[Transition], expire_after_days: int | None) -> list[str]:
    """Every way one S3 lifecycle rule (its transitions, in order, and its expiry) breaks S3's rules or minimums."""
    problems: list[str] = []
    previous: Transition | None = None
    for transition in transitions:
        problems.extend(_transition_problems(transition, previous))
        previous = transition
    if expire_after_days is not None:
        if expire_after_days < 1:
            problems.append(f"expiry at day {expire_after_days}: S3 expires objects 1 day old or older")
        elif previous is not None:
            earliest = previous.after_days + MINIMUM_STORAGE_DAYS[previous.storage_class]
            if expire_after_days < earliest:
                problems.append(
                    f"expiry at day {expire_after_days} after {previous}: {_minimum(previous.storage_class)} "
                    f"(expire at day {earliest} or later)")
    return problems


def check_lifecycle(transitions: Sequence[Transition], expire_after_days: int | None) -> LifecycleCheck:
    problems = lifecycle_problems(transitions, expire_after_days)
    return LifecycleCheck(valid=not problems, problems=tuple(problems))


def backup_rule_problems(*, move_to_cold_storage_after_days: int | None, delete_after_days: int) -> list[str]:
    """AWS Backup's lifecycle rule: cold storage lasts at least 90 days, so deletion comes no sooner."""
    if delete_after_days < 1:
        return [f"deletion at day {delete_after_days}: recovery points are kept at least 1 day"]
    if move_to_cold_storage_after_days is None:
        return []
    earliest = move_to_cold_storage_after_days + BACKUP_COLD_STORAGE_MINIMUM_DAYS
    if delete_after_days < earliest:
        return [f"deletion at day {delete_after_days} after cold storage at day {move_to_cold_storage_after_days}: "
                f"AWS Backup keeps cold recovery points at least {BACKUP_COLD_STORAGE_MINIMUM_DAYS} days "
                f"(delete at day {earliest} or later)"]
    return []


def _transition_problems(transition: Transition, previous: Transition | None) -> list[str]:
    storage_class, day = transition.storage_class, transition.after_days
    if day < 0:
        return [f"{transition}: days cannot be negative"]
    if storage_class in INFREQUENT_ACCESS and day < INFREQUENT_ACCESS_EARLIEST_DAY:
        return [f"{transition}: S3 moves objects to {READABLE_NAMES[storage_class]} only once they are at least "
                f"{INFREQUENT_ACCESS_EARLIEST_DAY} days old (move at day {INFREQUENT_ACCESS_EARLIEST_DAY} or later)"]
    if previous is None:
        return []
    if WATERFALL.index(storage_class) <= WATERFALL.index(previous.storage_class):
        order = " -> ".join(WATERFALL)
        return [f"{transition} after {previous}: S3 only moves objects down the waterfall {order}"]
    earliest = previous.after_days + MINIMUM_STORAGE_DAYS[previous.storage_class]
    if day < earliest:
        return [f"{transition} after {previous}: {_minimum(previous.storage_class)} "
                f"(move at day {earliest} or later)"]
    return []


def _minimum(storage_class: StorageClass) -> str:
    return (f"{READABLE_NAMES[storage_class]} has a {MINIMUM_STORAGE_DAYS[storage_class]}-day minimum storage "
            f"duration")
