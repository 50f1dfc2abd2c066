"""Restore drill against moto: the backup bucket as synthesized, an incident, a restore, and nothing lost.

The bucket is configured from the prod template (its name, versioning, encryption, public access block,
lifecycle), not retyped here; moto's CloudFormation would drop the lifecycle configuration, so it is translated from
the template's CloudFormation form to the S3 API form and applied directly, then read back. The restore runs the
runbook's own `aws s3api` commands (docs/dr.md, "Restore drill", step 1), so a wrong command there fails here.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore
import pytest
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID

from .assembly import Assembly
from .test_backup import backup_bucket, joined, template_lifecycle

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RUNBOOK = Path(__file__).resolve().parents[3] / "docs" / "dr.md"


def runbook_s3_commands() -> dict[str, str]:
    """Step 1 of the runbook's restore drill: its `aws s3api` commands, by operation (list-object-versions, ...)."""
    drill = RUNBOOK.read_text(encoding="utf-8").split("## Restore drill", 1)[1]
    step = drill.split("\n1. ", 1)[1].split("\n2. ", 1)[0]
    commands = [line.strip() for line in step.splitlines() if line.strip().startswith("aws s3api ")]
    return {shlex.split(command)[2]: command for command in commands}


def run_cli(client: Any, command: str, values: Mapping[str, str]) -> Any:
    """An `aws s3api` command line as boto3 runs it: the CLI's --kebab-case options are the operation's members;
    `values` fills the runbook's placeholders (e.g. "<bucket>")."""
    _, _, operation, *options = shlex.split(command)
    model = client.meta.service_model.operation_model(
        client.meta.method_to_api_mapping[botocore.xform_name(operation, "-").replace("-", "_")])
    members = {botocore.xform_name(member, "-"): member for member in model.input_shape.members}
    arguments = {}
    for option, value in zip(options[::2], options[1::2], strict=True):
        for placeholder, actual in values.items():
            value = value.replace(placeholder, actual)
        assert "<" not in value, f"{command}: no value for a placeholder in {value!r}"
        arguments[members[option.removeprefix("--")]] = value
    return getattr(client, botocore.xform_name(model.name))(**arguments)

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


@dataclass(frozen=True)
class Drill:
    client: S3Client
    bucket: dict[str, Any]     # the template's resource
    name: str                  # its BucketName, as CloudFormation would resolve it in moto's account


@pytest.fixture
def drill(prod: Assembly) -> Iterator[Drill]:
    """A moto bucket configured like the prod backup bucket, under the template's name."""
    _, bucket = backup_bucket(prod)
    props = bucket["Properties"]
    name = joined(props["BucketName"], account=DEFAULT_ACCOUNT_ID)
    # Neither reset moto's state on start nor wipe it on stop: a moto server of the service tests may be running in
    # this process (pytest-xdist puts any files on one worker), and it shares that state. The drill removes what it
    # made instead.
    mock = mock_aws()
    mock.start(reset=False)
    try:
        region = prod.settings.region
        client: S3Client = boto3.client("s3", region_name=region)
        key_id = boto3.client("kms", region_name=region).create_key(Description="backup key")["KeyMetadata"]["KeyId"]
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
        client.put_public_access_block(Bucket=name,
                                       PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
        [encryption] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        client.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
                "KMSMasterKeyID": key_id},
            "BucketKeyEnabled": encryption["BucketKeyEnabled"]}]})
        try:
            yield Drill(client, bucket, name)
        finally:
            versions = client.list_object_versions(Bucket=name)
            for version in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
                client.delete_object(Bucket=name, Key=version["Key"], VersionId=version["VersionId"])
            client.delete_bucket(Bucket=name)
    finally:
        mock.stop(remove_data=False)


def digest(drill: Drill, key: str, version_id: str | None = None) -> str:
    extra = {"VersionId": version_id} if version_id else {}
    body = drill.client.get_object(Bucket=drill.name, Key=key, **extra)["Body"].read()  # type: ignore[arg-type]
    return hashlib.sha256(body).hexdigest()


def test_lifecycle_from_the_template_is_accepted_and_read_back_unchanged(drill: Drill) -> None:
    rules = [s3_lifecycle_rule(rule) for rule in drill.bucket["Properties"]["LifecycleConfiguration"]["Rules"]]
    drill.client.put_bucket_lifecycle_configuration(Bucket=drill.name, LifecycleConfiguration={"Rules": rules})  # type: ignore[typeddict-item]
    read_back = drill.client.get_bucket_lifecycle_configuration(Bucket=drill.name)["Rules"]
    assert sorted(read_back, key=lambda rule: rule["ID"]) == sorted(rules, key=lambda rule: rule["ID"])


def test_the_runbook_names_the_synthesized_bucket(drill: Drill) -> None:
    commands = runbook_s3_commands()
    assert set(commands) == {"list-object-versions", "delete-object", "copy-object"}
    listed = shlex.split(commands["list-object-versions"])
    named = listed[listed.index("--bucket") + 1].replace("<account>", DEFAULT_ACCOUNT_ID)
    assert named == drill.name


def test_overwritten_and_deleted_backups_are_restored_from_earlier_versions(drill: Drill) -> None:
    client = drill.client
    # The generations' prefixes are the template's (the backup job writes its files under them).
    prefixes = [rule["Prefix"] for rule in template_lifecycle(drill.bucket).values() if "Prefix" in rule]
    assert prefixes, "the template's lifecycle rules name the generations' prefixes"

    # 1. Backups arrive: three per generation.
    originals: dict[str, str] = {}
    for prefix in prefixes:
        for index in range(3):
            key = f"{prefix}selfnest-{index}.dump"
            body = f"{key}: pg_dump contents {index}".encode() * 100
            client.put_object(Bucket=drill.name, Key=key, Body=body)
            originals[key] = hashlib.sha256(body).hexdigest()
            assert client.head_object(Bucket=drill.name, Key=key)["ServerSideEncryption"] == "aws:kms"
    # The inventory a restore starts from: each key's good version (S3 Inventory / the backup job's manifest).
    good_versions = {key: client.head_object(Bucket=drill.name, Key=key)["VersionId"] for key in originals}

    # 2. The incident: one object per generation overwritten with garbage, one deleted.
    overwritten = [f"{prefix}selfnest-0.dump" for prefix in prefixes]
    deleted = [f"{prefix}selfnest-1.dump" for prefix in prefixes]
    for key in overwritten:
        client.put_object(Bucket=drill.name, Key=key, Body=b"encrypted by ransomware")
    for key in deleted:
        client.delete_object(Bucket=drill.name, Key=key)
    for key in deleted:
        with pytest.raises(client.exceptions.ClientError):
            client.head_object(Bucket=drill.name, Key=key)
    assert all(digest(drill, key) != originals[key] for key in overwritten)

    # 3. Restore with the runbook's commands: list the versions, drop the delete marker; copy the good version back.
    runbook = runbook_s3_commands()
    for key in deleted + overwritten:
        values = {"<account>": DEFAULT_ACCOUNT_ID, "<bucket>": drill.name, "daily/<file>": key}
        versions = run_cli(client, runbook["list-object-versions"], values)
        markers = [m for m in versions.get("DeleteMarkers", []) if m["Key"] == key and m["IsLatest"]]
        if key in deleted:
            [marker] = markers
            run_cli(client, runbook["delete-object"], {**values, "<delete-marker-version>": marker["VersionId"]})
        else:
            assert markers == []
            assert good_versions[key] in {v["VersionId"] for v in versions["Versions"] if v["Key"] == key}
            run_cli(client, runbook["copy-object"], {**values, "<good>": good_versions[key]})

    # 4. Nothing is lost: every backup reads back as written, and the bad versions are kept for forensics.
    assert {key: digest(drill, key) for key in originals} == originals
    assert all(digest(drill, key, good_versions[key]) == originals[key] for key in originals)
    kept = client.list_object_versions(Bucket=drill.name)["Versions"]
    for key in overwritten:
        assert len([v for v in kept if v["Key"] == key]) == 3   # good, garbage, restored copy
    for key in deleted:
        assert [v["VersionId"] for v in kept if v["Key"] == key] == [good_versions[key]]
