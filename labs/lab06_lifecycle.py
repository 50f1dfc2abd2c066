"""Lab 06 — S3 versioning, lifecycle and grandfather-father-son retention within the minimum storage durations."""

from __future__ import annotations

from pathlib import Path

from refarch.constructs.aws.gfs import CADENCE_DAYS, GenerationPolicy, steady_state
from refarch.constructs.aws.lifecycle import MINIMUM_STORAGE_DAYS, StorageClass, Transition
from refarch.stacks.selfnest.backup import BackupStack
from refarch.stacks.selfnest.config import load_settings

from .grading import Check, check, resources, synth_stack

WANTED_TRANSITIONS = [Transition(storage_class=StorageClass.STANDARD_IA, after_days=30),
                      Transition(storage_class=StorageClass.GLACIER_IR, after_days=60)]
WEEKLY_RESTORE_POINTS = 20


def grade(root: Path) -> list[Check]:
    settings = load_settings("dev", root / "config")
    bucket = settings.backup.bucket
    weekly = bucket.weekly
    last = weekly.transition_list[-1] if weekly.transition_list else None
    first_legal_expiry = last.after_days + MINIMUM_STORAGE_DAYS[last.storage_class] if last else 1
    policy = GenerationPolicy(name="weekly", every_days=CADENCE_DAYS["weekly"],
                              expire_after_days=weekly.expire_after_days,
                              transitions=tuple((t.storage_class.value, t.after_days)
                                                for t in weekly.transition_list))
    points = steady_state(policy).restore_points
    template = synth_stack(settings, BackupStack, "backup")
    buckets = resources(template, "AWS::S3::Bucket")
    rules_by_bucket = {bucket_id: {rule.get("Prefix") or rule.get("Filter", {}).get("Prefix"): rule
                                   for rule in bucket["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])}
                       for bucket_id, bucket in buckets.items()}
    backup_bucket_id, rules = next(((bucket_id, rules) for bucket_id, rules in rules_by_bucket.items()
                                    if "weekly/" in rules), ("", {}))
    backup_bucket = buckets.get(backup_bucket_id, {"Properties": {}})
    shown = ", ".join(f"{t.storage_class.value} at day {t.after_days}" for t in weekly.transition_list) or "none"
    weekly_rule = rules.get("weekly/", {})
    synthesized = [(transition["StorageClass"], transition["TransitionInDays"])
                   for transition in weekly_rule.get("Transitions", [])]
    return [
        check("weekly/ moves to Standard-IA as early as S3 allows, then to Glacier Instant Retrieval as early as "
              "Standard-IA's minimum allows",
              weekly.transition_list == WANTED_TRANSITIONS,
              "S3 moves objects to Standard-IA only once they are 30 days old, and Standard-IA bills 30 days "
              "minimum: the next transition can come at day 30 + 30. Try `refarch calc lifecycle --transition "
              "STANDARD_IA:30 --transition GLACIER_IR:45`.", found=f"transitions: {shown}"),
        check(f"weekly/ keeps at least {WEEKLY_RESTORE_POINTS} restore points in steady state",
              points >= WEEKLY_RESTORE_POINTS,
              "one backup a week kept E days leaves ceil(E / 7) restore points.",
              found=f"{points} restore points (expire after {weekly.expire_after_days} days)"),
        check("weekly/ expires at the first day that keeps both promises",
              weekly.expire_after_days == max(first_legal_expiry, WEEKLY_RESTORE_POINTS * 7 - 6)
              and points >= WEEKLY_RESTORE_POINTS,
              f"Glacier Instant Retrieval bills 90 days minimum: expiring before day {first_legal_expiry} pays for "
              "days you never keep, expiring later stores more than asked.",
              found=f"expire after {weekly.expire_after_days} days"),
        check("the synthesized weekly/ rule matches the config",
              synthesized == [(t.storage_class.value, t.after_days) for t in weekly.transition_list]
              and weekly_rule.get("ExpirationInDays") == weekly.expire_after_days,
              "the bucket construct writes one lifecycle rule per generation prefix from config.",
              found=f"synthesized {synthesized}, expiry {weekly_rule.get('ExpirationInDays')}"),
        check("the bucket is versioned with noncurrent versions expiring",
              backup_bucket["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled"
              and any("NoncurrentVersionExpiration" in rule for rule in rules.values()),
              "versioning makes overwrites and deletes recoverable; replication (prod) requires it.",
              found=backup_bucket["Properties"].get("VersioningConfiguration", {}).get("Status", "not versioned")),
    ]

