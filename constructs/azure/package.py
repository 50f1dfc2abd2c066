"""The function app's deployment package: a zip built deterministically and uploaded, with Entra ID credentials, into
the Flex Consumption deployment container, where the app runs it from (no build happens on the Azure side for a blob
deployment).

Deterministic means the same sources and requirements give byte-identical zips, whoever builds them and when:
entries are sorted, every timestamp is 1980-01-01, permissions are 0644/0755, and what differs between machines is
left out (__pycache__, compiled files, pip's RECORD/INSTALLER bookkeeping and console scripts, whose first line is
the builder's Python path). The hash then identifies the code, and Pulumi uploads only when it changes.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pulumi
from pulumi_azure_native import authorization

from .blob_upload import UploadedBlob
from .common import STORAGE_BLOB_DATA_CONTRIBUTOR, role_definition_id

FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold
# Where Azure Functions' Python worker looks for an app's dependencies inside the package.
DEPENDENCY_FOLDER = PurePosixPath(".python_packages/lib/site-packages")
# Flex Consumption runs the package it finds under this name in the deployment container (what `func publish` uploads).
PACKAGE_BLOB_NAME = "released-package.zip"
EXCLUDED_DIRECTORIES = frozenset({"__pycache__", ".venv", ".pytest_cache", ".mypy_cache"})
EXCLUDED_FILES = frozenset({"local.settings.json", "RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
# Linux x86-64 workers, Python 3.11: wheels for that platform whatever machine builds the package.
TARGET_PLATFORM = "x86_64-manylinux_2_28"


@dataclass(frozen=True, kw_only=True)
class BuiltPackage:
    path: Path
    sha256: str


APP_ROOT = PurePosixPath()


def package_entries(source: Path, *, prefix: PurePosixPath = APP_ROOT,
                    skip_top_level: frozenset[str] = frozenset()) -> Iterator[tuple[str, Path]]:
    """(name in the zip, file) for everything under `source` that belongs in a package, in sorted order."""
    for root, directories, files in os.walk(source):
        skipped = EXCLUDED_DIRECTORIES | (skip_top_level if Path(root) == source else frozenset())
        directories[:] = sorted(name for name in directories if name not in skipped)
        relative = PurePosixPath(Path(root).relative_to(source).as_posix())
        for name in sorted(files):
            if name in EXCLUDED_FILES or name.endswith(EXCLUDED_SUFFIXES):
                continue
            yield str(prefix / relative / name), Path(root) / name


def build_zip(entries: list[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIMESTAMP)
            info.create_system = 3  # Unix, so the permission bits below are honoured
            executable = path.stat().st_mode & stat.S_IXUSR
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=6)
    return buffer.getvalue()


def install_dependencies(requirements: Path, *, cache: Path) -> Path:
    """The requirements installed for the Azure worker's platform, reused while requirements.txt is unchanged."""
    uv = str(Path(sys.executable).with_name("uv"))
    target = cache / f"site-packages-{dependency_cache_key(requirements, installer=_installer_version(uv))}"
    if not target.is_dir():
        staging = cache / f".staging-{target.name.removeprefix('site-packages-')}"
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--target", str(staging),
             "--python-platform", TARGET_PLATFORM, "--python-version", "3.11", "--only-binary", ":all:",
             "--no-compile", "-r", str(requirements)],
            check=True,
        )
        staging.rename(target)
    return target


def dependency_cache_key(requirements: Path, *, installer: str) -> str:
    """What the installed dependencies depend on: the pins, the worker's platform and the installer's version."""
    inputs = [requirements.read_bytes(), TARGET_PLATFORM.encode(), installer.encode()]
    return hashlib.sha256(b"\0".join(inputs)).hexdigest()[:16]


def _installer_version(uv: str) -> str:
    return subprocess.run([uv, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def build_function_package(*, source: Path, output_dir: Path, dependencies: Path | None) -> BuiltPackage:
    entries = list(package_entries(source))
    if dependencies is not None:
        # bin/ holds console scripts, which the app never runs and whose first line names the builder's Python.
        entries += package_entries(dependencies, prefix=DEPENDENCY_FOLDER, skip_top_level=frozenset({"bin"}))
    # Compressing ~35 MB of dependencies takes most of a second; a zip built from the same inputs is reused.
    path = output_dir / f"{source.name}-{_inputs_digest(entries)[:16]}.zip"
    if not path.exists():
        output_dir.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".partial")
        staging.write_bytes(build_zip(entries))
        staging.replace(path)
    return BuiltPackage(path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def _inputs_digest(entries: list[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for name, path in sorted(entries):
        digest.update(f"{name}\0{path.stat().st_mode & stat.S_IXUSR}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass(frozen=True, kw_only=True)
class FunctionPackageArgs:
    package: BuiltPackage
    container_url: pulumi.Input[str]
    # The container's ARM id: the scope of the deployer's data-plane role.
    container_id: pulumi.Input[str]
    # Whoever runs `pulumi up` (getClientConfig's object id): user, service principal or workload identity.
    deployer_principal_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]


class FunctionPackage(pulumi.ComponentResource):
    """The built zip as a block blob in the deployment container, written by the deployer with Entra ID."""

    def __init__(self, name: str, args: FunctionPackageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("refarch:azure:FunctionPackage", name, None, opts)
        # Exactly what the upload needs (write and delete blobs), on the one container, for the deployer only.
        self.deployer_access = authorization.RoleAssignment(
            f"{name}-deployer-blob-data-contributor",
            principal_id=args.deployer_principal_id,
            role_definition_id=role_definition_id(args.subscription_id, STORAGE_BLOB_DATA_CONTRIBUTOR),
            scope=args.container_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.blob = UploadedBlob(
            f"{name}-blob",
            container_url=args.container_url,
            blob_name=PACKAGE_BLOB_NAME,
            path=str(args.package.path),
            sha256=args.package.sha256,
            content_type="application/zip",
            # Granted first (and, on destroy, the blob goes while the grant still exists).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployer_access]),
        )
        self.sha256 = args.package.sha256
        self.register_outputs({"url": self.blob.url, "sha256": self.sha256})
