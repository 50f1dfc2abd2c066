"""Restore drill against moto: the backup bucket as synthesized, an incident, a restore, and nothing lost.

The bucket is configured from the prod template (versioning, encryption, public access block, lifecycle), not
retyped here; moto's CloudFormation would drop the lifecycle configuration, so it is translated from the
template's CloudFormation form to the S3 API form and applied directly, then read back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from .assembly import Assembly
from .test_backup import backup_bucket, template_lifecycle

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "selfnest-drill-backup"

# CloudFormation LifecycleConfiguration rule keys -> S3 API keys. A key not listed here fails the test, so a
# template change the translation does not understand cannot pass silently.
CFN_TO_S3_RULE: dict[str, Callable[[Any], dict[str, Any]]] = {
    "Id": lambda value: {"ID": value},
    "Status": lambda value: {"Status": value},
    "Prefix": lambda value: {"Filter": {"Prefix": value}},
    "ExpirationInDays": lambda value: {"Expiration": {"Days": value}},
    "Transitions": lambda value: {"Transitions": [{"Days": t["TransitionInDays"], "StorageClass": t["StorageClass"]}
                                                  for t in value]},
    "NoncurrentVersionExpiration": lambda value: {"NoncurrentVersionExpiration": {
        "NoncurrentDays": value["NoncurrentDays"]}},
    "AbortIncompleteMultipartUpload": lambda value: {"AbortIncompleteMultipartUpload": value},
}


def s3_lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    unknown = set(rule) - set(CFN_TO_S3_RULE)
    assert not unknown, f"lifecycle rule keys this drill cannot translate: {unknown}"
    translated: dict[str, Any] = {"Filter": {"Prefix": ""}}
    for key, value in rule.items():
        translated.update(CFN_TO_S3_RULE[key](value))
    return translated


@pytest.fixture
def drill(prod: Assembly) -> Iterator[tuple[S3Client, dict[str, Any]]]:
    """A moto bucket configured like the prod backup bucket; yields the client and the template's bucket."""
    _, bucket = backup_bucket(prod)
    props = bucket["Properties"]
    with mock_aws():
        region = prod.settings.region
        client: S3Client = boto3.client("s3", region_name=region)
        key_id = boto3.client("kms", region_name=region).create_key(Description="backup key")["KeyMetadata"]["KeyId"]
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration=props["VersioningConfiguration"])
        client.put_public_access_block(Bucket=BUCKET,
                                       PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
        [encryption] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        client.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
                "KMSMasterKeyID": key_id},
            "BucketKeyEnabled": encryption["BucketKeyEnabled"]}]})
        yield client, bucket


def digest(client: S3Client, key: str, version_id: str | None = None) -> str:
    extra = {"VersionId": version_id} if version_id else {}
    return hashlib.sha256(client.get_object(Bucket=BUCKET, Key=key, **extra)["Body"].read()).hexdigest()  # type: ignore[arg-type]


def test_lifecycle_from_the_template_is_accepted_and_read_back_unchanged(
        drill: tuple[S3Client, dict[str, Any]]) -> None:
    client, bucket = drill
    rules = [s3_lifecycle_rule(rule) for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]]
    client.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": rules})  # type: ignore[typeddict-item]
    read_back = client.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert sorted(read_back, key=lambda rule: rule["ID"]) == sorted(rules, key=lambda rule: rule["ID"])


def test_overwritten_and_deleted_backups_are_restored_from_earlier_versions(
        drill: tuple[S3Client, dict[str, Any]]) -> None:
    client, bucket = drill
    prefixes = [rule["Prefix"] for rule in template_lifecycle(bucket).values() if "Prefix" in rule]
    assert len(prefixes) == 3   # daily/, weekly/, monthly/ from the template

    # 1. Backups arrive: three per generation.
    originals: dict[str, str] = {}
    for prefix in prefixes:
        for index in range(3):
            key = f"{prefix}selfnest-{index}.dump"
            body = f"{key}: pg_dump contents {index}".encode() * 100
            client.put_object(Bucket=BUCKET, Key=key, Body=body)
            originals[key] = hashlib.sha256(body).hexdigest()
            assert client.head_object(Bucket=BUCKET, Key=key)["ServerSideEncryption"] == "aws:kms"
    # The inventory a restore starts from: each key's good version (S3 Inventory / the backup job's manifest).
    good_versions = {key: client.head_object(Bucket=BUCKET, Key=key)["VersionId"] for key in originals}

    # 2. The incident: one object per generation overwritten with garbage, one deleted.
    overwritten = [f"{prefix}selfnest-0.dump" for prefix in prefixes]
    deleted = [f"{prefix}selfnest-1.dump" for prefix in prefixes]
    for key in overwritten:
        client.put_object(Bucket=BUCKET, Key=key, Body=b"encrypted by ransomware")
    for key in deleted:
        client.delete_object(Bucket=BUCKET, Key=key)
    for key in deleted:
        with pytest.raises(client.exceptions.ClientError):
            client.head_object(Bucket=BUCKET, Key=key)
    assert all(digest(client, key) != originals[key] for key in overwritten)

    # 3. Restore, the two ways the runbook describes: drop the delete marker; copy the good version back on top.
    for key in deleted:
        versions = client.list_object_versions(Bucket=BUCKET, Prefix=key)
        [marker] = [m for m in versions.get("DeleteMarkers", []) if m["Key"] == key and m["IsLatest"]]
        client.delete_object(Bucket=BUCKET, Key=key, VersionId=marker["VersionId"])
    for key in overwritten:
        client.copy_object(Bucket=BUCKET, Key=key,
                           CopySource={"Bucket": BUCKET, "Key": key, "VersionId": good_versions[key]})

    # 4. Nothing is lost: every backup reads back as written, and the bad versions are kept for forensics.
    assert {key: digest(client, key) for key in originals} == originals
    assert all(digest(client, key, good_versions[key]) == originals[key] for key in originals)
    kept = client.list_object_versions(Bucket=BUCKET)["Versions"]
    for key in overwritten:
        assert len([v for v in kept if v["Key"] == key]) == 3   # good, garbage, restored copy
    for key in deleted:
        assert [v["VersionId"] for v in kept if v["Key"] == key] == [good_versions[key]]
