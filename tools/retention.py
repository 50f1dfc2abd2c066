"""`python -m refarch.tools.retention --env prod`: the environment's GFS policy in steady state, as Markdown.

docs/dr.md embeds this output (a test keeps the two equal). Backups are assumed full and as large as the database's
allocated storage unless `--backup-gib` says otherwise.
"""

from __future__ import annotations

import argparse
import sys

from refarch.constructs.aws.gfs import (
    CADENCE_DAYS,
    GenerationFootprint,
    GenerationPolicy,
    steady_state,
    storage_by_class,
)
from refarch.stacks.selfnest.config import ConfigError, SelfnestSettings, load_settings


def bucket_policies(settings: SelfnestSettings) -> list[GenerationPolicy]:
    return [GenerationPolicy(name=name, every_days=CADENCE_DAYS[name], expire_after_days=generation.expire_after_days,
                             transitions=tuple((t.storage_class.value, t.after_days)
                                               for t in generation.transition_list))
            for name, generation in settings.backup.bucket.generations.items()]


def plan_policies(settings: SelfnestSettings) -> list[GenerationPolicy]:
    plan = settings.backup.plan
    if plan is None:
        return []
    return [GenerationPolicy(name=name, every_days=CADENCE_DAYS[name], expire_after_days=rule.delete_after_days,
                             first_class="warm",
                             transitions=() if rule.move_to_cold_storage_after_days is None
                             else (("cold", rule.move_to_cold_storage_after_days),))
            for name, rule in plan.generations.items()]


def table(title: str, policies: list[GenerationPolicy], backup_gib: float) -> list[str]:
    footprints: list[GenerationFootprint] = [steady_state(policy) for policy in policies]
    lines = [f"**{title}** (steady state, {backup_gib:g} GiB per backup)", "",
             "| generation | kept (days) | restore points | oldest (days back) | where they are |",
             "|---|---:|---:|---:|---|"]
    for policy, footprint in zip(policies, footprints, strict=True):
        where = ", ".join(f"{count} in {storage_class}" for storage_class, count in footprint.points_by_class.items())
        lines.append(f"| {policy.name} | {policy.expire_after_days} | {footprint.restore_points} | "
                     f"{footprint.oldest_restore_point_days:.0f} | {where} |")
    total = sum(footprint.restore_points for footprint in footprints)
    storage = ", ".join(f"{gib:,.0f} GiB {storage_class}"
                        for storage_class, gib in storage_by_class(footprints, backup_gib).items())
    lines += [f"| **total** | | **{total}** | | {storage} |", ""]
    return lines


def markdown(settings: SelfnestSettings, backup_gib: float | None = None) -> str:
    size = float(backup_gib if backup_gib is not None else settings.database.allocated_storage_gib)
    lines = table(f"S3 backup bucket, {settings.environment}", bucket_policies(settings), size)
    if settings.backup.plan is not None:
        lines += table(f"AWS Backup plan, {settings.environment}", plan_policies(settings), size)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="prod")
    parser.add_argument("--backup-gib", type=float, default=None)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.env)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(markdown(settings, args.backup_gib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
