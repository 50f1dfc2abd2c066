"""Lab 11 — S3 versioning and cross-region replication: dev's backup bucket gets a replica in a second region.

The grader reads the source bucket's replication configuration and the replica bucket the DR-region stack creates,
checking what S3 itself requires (versioning on both sides, a role S3 can assume with the replication actions, a
destination key for SSE-KMS objects in the destination's region) and what the backups need (another region, deletes
not replicated, the replica's own lifecycle, since S3 does not replicate lifecycle actions).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from refarch.stacks.selfnest.config import load_settings

from .grading import Check, Resource, check, resources, synth_parts

REPLICATION_ACTIONS = {"s3:ReplicateObject", "s3:GetObjectVersionForReplication"}


def _backup_bucket(template: dict[str, Any]) -> Resource:
    buckets = [bucket["Properties"] for bucket in resources(template, "AWS::S3::Bucket").values()
               if any((rule.get("Prefix") or rule.get("Filter", {}).get("Prefix")) == "weekly/"
                      for rule in bucket["Properties"].get("LifecycleConfiguration", {}).get("Rules", []))]
    return buckets[0] if buckets else {}


def _actions(template: dict[str, Any]) -> set[str]:
    granted: set[str] = set()
    for policy in resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            granted.update([actions] if isinstance(actions, str) else actions)
    return granted


def grade(root: Path) -> list[Check]:
    settings = load_settings("dev", root / "config")
    region = settings.dr.copy_region
    templates = synth_parts(settings, ["backup", "dr"] if region else ["backup"])
    source = _backup_bucket(templates["backup"])
    replica = _backup_bucket(templates["dr"]) if "dr" in templates else {}
    rules = source.get("ReplicationConfiguration", {}).get("Rules", [])
    enabled = [rule for rule in rules if rule.get("Status") == "Enabled"]
    destination = json.dumps([rule.get("Destination", {}) for rule in enabled])
    trusted = any("s3.amazonaws.com" in json.dumps(role["Properties"].get("AssumeRolePolicyDocument"))
                  for role in resources(templates["backup"], "AWS::IAM::Role").values())
    missing_actions = REPLICATION_ACTIONS - _actions(templates["backup"])

    def versioning(bucket: Resource) -> str:
        return str(bucket.get("VersioningConfiguration", {}).get("Status", "not versioned"))

    replica_expiries = sorted(rule.get("ExpirationInDays", 0) for rule in
                              replica.get("LifecycleConfiguration", {}).get("Rules", []))
    source_expiries = sorted(rule.get("ExpirationInDays", 0) for rule in
                             source.get("LifecycleConfiguration", {}).get("Rules", []))
    return [
        check("the backup bucket is versioned", versioning(source) == "Enabled",
              "replication requires versioning on the source bucket (and it makes overwrites recoverable).",
              found=versioning(source)),
        check("a replication rule is enabled, to a bucket in another region",
              bool(enabled) and region is not None and region != settings.region,
              "cross-region replication copies every new object version to a bucket in another region: set "
              "dr.region in config/dev.yaml. A regional outage then leaves a copy; same-region replication does not.",
              found=f"{len(enabled)} enabled rules; DR region {region}, primary {settings.region}"),
        check("the replica bucket is versioned too", versioning(replica) == "Enabled",
              "S3 refuses a replication rule whose destination bucket is not versioned.",
              found=versioning(replica) if replica else "no replica bucket"),
        check("S3 may assume a role allowed to read versions and replicate them", trusted and not missing_actions,
              "the replication role trusts s3.amazonaws.com and grants s3:GetObjectVersionForReplication on the "
              "source and s3:ReplicateObject on the destination.",
              found=f"trusted by S3: {trusted}; missing: {sorted(missing_actions) or 'nothing'}"),
        check("SSE-KMS objects replicate, re-encrypted with a key of the DR region",
              bool(enabled) and all(rule.get("SourceSelectionCriteria", {}).get("SseKmsEncryptedObjects", {})
                                    .get("Status") == "Enabled" for rule in enabled)
              and f"kms:{region}:" in destination,
              "S3 skips KMS-encrypted objects unless SourceSelectionCriteria opts them in, and KMS keys are regional: "
              "the destination needs ReplicaKmsKeyID, a key in its own region.",
              found=destination if enabled else "no rule"),
        check("deletes are not replicated (the replica survives a mistaken delete)",
              bool(enabled) and all(rule.get("DeleteMarkerReplication", {}).get("Status", "Disabled") == "Disabled"
                                    for rule in enabled),
              "with delete-marker replication on, a delete in the source hides the object in the replica too.",
              found=[rule.get("DeleteMarkerReplication") for rule in enabled]),
        check("the replica expires objects like the source (lifecycle is not replicated)",
              bool(replica) and replica_expiries == source_expiries,
              "S3 replicates objects, not lifecycle actions: the replica bucket needs its own rules, or it keeps "
              "everything forever.", found=f"replica expiries {replica_expiries}, source {source_expiries}"),
    ]

