"""The function app's deployment package: deterministic, complete, uploaded where Flex Consumption runs it from, and
configured by settings that hold no secrets and match what the app reads."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

from babybloom_app import settings as app_settings
from refarch.constructs.azure import package
from refarch.policies.rules import CREDENTIAL_MARKERS
from refarch.stacks.babybloom import program

from .conftest import Plan, pulumi_test

UPLOAD = "pulumi-python:dynamic:Resource"
WEB_APP = "azure-native:web:WebApp"
ROOT = Path(__file__).resolve().parents[3]


def _copy_app(destination: Path) -> Path:
    source = destination / "babybloom_functions"
    shutil.copytree(program.APP_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    return source


def _app_settings(plan: Plan) -> dict[str, Any]:
    return {item["name"]: item["value"] for item in plan.one(WEB_APP).inputs["siteConfig"]["appSettings"]}


def _built(plan: Plan) -> Path:
    return Path(plan.one(UPLOAD).inputs["path"])


@pulumi_test
def test_same_sources_give_the_same_bytes_whenever_and_wherever_built(tmp_path: Path) -> None:
    first_source, second_source = _copy_app(tmp_path / "a"), _copy_app(tmp_path / "b")
    # Different modification times and stray build litter must not matter.
    os.utime(second_source / "host.json", (1_000_000_000, 1_000_000_000))
    (second_source / "babybloom_app" / "__pycache__").mkdir()
    (second_source / "babybloom_app" / "__pycache__" / "api.cpython-311.pyc").write_bytes(b"compiled")
    (second_source / "local.settings.json").write_text("{}")
    first = package.build_function_package(source=first_source, output_dir=tmp_path / "out-a", dependencies=None)
    second = package.build_function_package(source=second_source, output_dir=tmp_path / "out-b", dependencies=None)
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()


@pulumi_test
def test_a_changed_source_gives_another_hash(tmp_path: Path) -> None:
    source = _copy_app(tmp_path)
    before = package.build_function_package(source=source, output_dir=tmp_path / "out", dependencies=None)
    (source / "host.json").write_text((source / "host.json").read_text() + " ")
    after = package.build_function_package(source=source, output_dir=tmp_path / "out", dependencies=None)
    assert after.sha256 != before.sha256
    (source / "host.json").chmod(0o755)  # a mode change is a change too
    assert package.build_function_package(source=source, output_dir=tmp_path / "out",
                                          dependencies=None).sha256 != after.sha256


@pulumi_test
def test_entries_are_sorted_with_fixed_times_and_modes(plans: dict[str, Plan]) -> None:
    with zipfile.ZipFile(_built(plans["dev"])) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {package.FIXED_TIMESTAMP}
    assert {info.external_attr >> 16 for info in infos} <= {0o100644, 0o100755}


@pulumi_test
def test_the_package_holds_the_app_its_seed_and_its_dependencies(plan: Plan) -> None:
    with zipfile.ZipFile(_built(plan)) as archive:
        names = set(archive.namelist())
    expected_app = {"function_app.py", "host.json", "requirements.txt", "babybloom_app/seed/weekly_content.json",
                    "babybloom_app/repository.py"}
    assert expected_app <= names
    site = str(package.DEPENDENCY_FOLDER)
    for module in ("azure/cosmos/__init__.py", "azure/functions/__init__.py", "azure/identity/__init__.py",
                   "azure/storage/queue/__init__.py", "pydantic/__init__.py"):
        assert f"{site}/{module}" in names
    assert any(name.startswith(f"{site}/pydantic_core/") and name.endswith("x86_64-linux-gnu.so") for name in names)
    assert not [name for name in names if "__pycache__" in name or name.endswith((".pyc", "/RECORD"))]
    assert not [name for name in names if name.startswith(f"{site}/bin/")]
    assert "local.settings.json" not in names


@pulumi_test
def test_the_package_is_uploaded_to_the_deployment_container_and_pins_the_app(plan: Plan) -> None:
    upload = plan.one(UPLOAD).inputs
    container = plan.one("azure-native:storage:BlobContainer")
    blob_endpoint = plan.deployment_storage().outputs["primaryEndpoints"]["blob"]
    assert upload["container_url"] == blob_endpoint + container.outputs["name"]
    assert upload["blob_name"] == package.PACKAGE_BLOB_NAME
    assert upload["content_type"] == "application/zip"
    digest = hashlib.sha256(_built(plan).read_bytes()).hexdigest()
    assert upload["sha256"] == digest
    assert _app_settings(plan)[program.PACKAGE_HASH_SETTING] == digest
    deployment = plan.one(WEB_APP).inputs["functionAppConfig"]["deployment"]["storage"]
    assert deployment["value"] == upload["container_url"]
    assert deployment["authentication"] == {"type": "SystemAssignedIdentity"}
    # The order that makes the first `pulumi up` work: grant the deployer, then upload, then create the app on it.
    grant = next(item for item in plan.all("azure-native:authorization:RoleAssignment")
                 if item.name.endswith("-deployer-blob-data-contributor"))
    assert grant.name in plan.one(UPLOAD).depends_on
    assert plan.one(UPLOAD).name in plan.one(WEB_APP).depends_on
    # Nothing is written with the account key: azure-native's storage.Blob (which signs with it) is not used.
    assert plan.all("azure-native:storage:Blob") == []


@pulumi_test
def test_app_settings_hold_no_secrets(plan: Plan) -> None:
    for name, value in _app_settings(plan).items():
        assert not any(marker in str(value) for marker in CREDENTIAL_MARKERS), f"{name} holds a credential"
        assert not re.search(r"(account|access|master|primary|emulator)_?key|password|secret", name, re.I), name
    assert app_settings.COSMOS_EMULATOR_KEY not in _app_settings(plan)
    assert app_settings.REMINDERS_CONNECTION not in _app_settings(plan)  # the connection-string form


@pulumi_test
def test_the_app_reads_exactly_what_the_program_sets(plan: Plan) -> None:
    settings = _app_settings(plan)
    assert set(app_settings.AZURE_SETTINGS) <= set(settings)
    config = app_settings.load_config(settings)
    assert config.cosmos.endpoint == plan.one("azure-native:cosmosdb:DatabaseAccount").outputs["documentEndpoint"]
    assert config.cosmos.database == plan.one("azure-native:cosmosdb:SqlResourceSqlDatabase").inputs["databaseName"]
    assert config.cosmos.emulator_key is None
    storage = plan.host_storage().outputs
    assert config.reminders.service_uri == storage["primaryEndpoints"]["queue"]
    assert config.reminders.queue_name == plan.one("azure-native:storage:Queue").inputs["queueName"]
    assert settings[app_settings.REMINDERS_CREDENTIAL] == "managedidentity"


@pulumi_test
def test_deployed_requirements_match_the_tested_lock() -> None:
    locked = {
        line.split("==")[0].lower(): line.strip()
        for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line and not line.startswith("#")
    }
    shipped = [line.strip() for line in (program.APP_SOURCE / "requirements.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert shipped
    for pin in shipped:
        assert pin == locked.get(pin.split("==")[0].lower()), f"{pin} differs from requirements.lock"
