"""Python Lambda functions packaged at synth without Docker: the handler folder plus its pip dependencies."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_

from constructs import Construct

from .encryption import EncryptedLogGroup
from .nag import GRANTS_POLICY, acknowledge

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# Wheels for the Lambda platform, not for this machine: pure-Python or manylinux aarch64 builds only.
PIP_PLATFORM = ("--platform", "manylinux2014_aarch64", "--implementation", "cp", "--python-version", "3.14",
                "--only-binary=:all:")
REQUIREMENTS_FILE = "requirements.txt"
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", "tests")
DEPENDENCY_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "lambda-dependencies"
# Where the Docker fallback mounts shared modules (`include`) before copying them into the asset root.
SHARED_MOUNT = "/asset-shared"


class PackagingError(RuntimeError):
    """pip could not install a function's requirements; raised with pip's own explanation."""


@jsii.implements(cdk.ILocalBundling)
class PipBundler:
    """Copies the source folder and any shared modules, and pip-installs requirements.txt beside them.

    `include` names modules or packages of other services that the handlers import (they land in the asset root,
    where Lambda's import path starts), so shared code is packaged from its one place instead of being copied.
    """

    def __init__(self, source: Path, include: Sequence[Path] = ()) -> None:
        self.source = source
        self.include = tuple(include)

    def try_bundle(self, output_dir: str, options: cdk.BundlingOptions) -> bool:
        output = Path(output_dir)
        shutil.copytree(self.source, output, dirs_exist_ok=True, ignore=SKIPPED)
        for shared in self.include:
            if shared.is_dir():
                shutil.copytree(shared, output / shared.name, dirs_exist_ok=True, ignore=SKIPPED)
            else:
                shutil.copy2(shared, output / shared.name)
        requirements = self.source / REQUIREMENTS_FILE
        if requirements.is_file() and _pinned_lines(requirements):
            shutil.copytree(self._installed(requirements), output, dirs_exist_ok=True)
        return True

    @staticmethod
    def _installed(requirements: Path) -> Path:
        # Every synth (and every test session) bundles again; pip would otherwise cost seconds each time.
        target = DEPENDENCY_CACHE / dependency_cache_key(requirements)
        if target.is_dir():
            return target
        # One staging folder per process: parallel synths (pytest-xdist workers) may install the same pins at once.
        staging = target.with_name(f"{target.name}.{os.getpid()}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                   "--target", str(staging), *PIP_PLATFORM, "-r", str(requirements)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PackagingError(f"pip could not install {requirements}: {result.stderr.strip()}")
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)   # another process finished the same install first
        return target


def dependency_cache_key(requirements: Path, *, installer: str | None = None) -> str:
    """What the installed dependencies depend on: the pins, the target platform and the installer's version."""
    installer = installer if installer is not None else f"pip {metadata.version('pip')}"
    inputs = [requirements.read_bytes(), " ".join(PIP_PLATFORM).encode(), installer.encode()]
    return hashlib.sha256(b"\0".join(inputs)).hexdigest()[:16]


def _pinned_lines(requirements: Path) -> list[str]:
    lines = [line.split("#")[0].strip() for line in requirements.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


@dataclass(frozen=True, kw_only=True)
class FunctionShape:
    handler: str
    description: str
    timeout_seconds: int
    memory_mib: int = 256
    environment: dict[str, str] = field(default_factory=dict)
    log_retention_days: int


class BundledPythonFunction(Construct):
    """A Python Lambda function (ARM64, latest runtime) with an encrypted log group and X-Ray tracing.

    `source` is a folder under services/; its requirements.txt (exact pins) is installed into the asset at synth,
    so deploying needs neither Docker nor a build step. `include` adds other services' modules (files) or packages
    (folders) to the asset root, for handlers that share code with them.
    """

    def __init__(self, scope: Construct, id: str, *, source: Path, shape: FunctionShape, logs_key: kms.IKey,
                 retain_data: bool, include: Sequence[Path] = ()) -> None:
        super().__init__(scope, id)
        missing = [str(path) for path in include if not path.exists()]
        if missing:
            raise PackagingError(f"{id}: shared modules to include do not exist: {', '.join(missing)}")
        self.logs = EncryptedLogGroup(self, "Logs", key=logs_key, retention_days=shape.log_retention_days,
                                      retain_data=retain_data)
        self.function = lambda_.Function(
            self, "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=shape.handler,
            description=shape.description,
            code=lambda_.Code.from_asset(str(source), bundling=cdk.BundlingOptions(
                image=RUNTIME.bundling_image,
                local=PipBundler(source, include),  # type: ignore[arg-type]  # jsii.implements is invisible to mypy
                # Only reached where local bundling is impossible; same result from the Lambda build image.
                volumes=[cdk.DockerVolume(host_path=str(path), container_path=f"{SHARED_MOUNT}/{path.name}")
                         for path in include],
                command=["bash", "-c", "cp -r /asset-input/. /asset-output && "
                         + (f"cp -r {SHARED_MOUNT}/. /asset-output && " if include else "")
                         + f"pip install -r {REQUIREMENTS_FILE} -t /asset-output"],
            )),
            timeout=cdk.Duration.seconds(shape.timeout_seconds),
            memory_size=shape.memory_mib,
            environment={"POWERTOOLS_SERVICE_NAME": id.lower(), "POWERTOOLS_LOG_LEVEL": "INFO",
                         **shape.environment},
            log_group=self.logs.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment_encryption=logs_key,
        )
        self.role: iam.IRole = self.function.role  # type: ignore[assignment]  # always set: we pass no role
        acknowledge(self.function, {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]":
                "The AWS managed basic execution role only lets the function write its own logs.",
            **GRANTS_POLICY,
            "AwsSolutions-IAM5[Resource::*]": "X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level "
                                              "permissions; every other statement names its resource.",
            "HIPAA.Security-LambdaInsideVPC": "The function reaches no VPC resource: every call it makes is an "
                                              "IAM-authorized, TLS AWS API call (SQS, DynamoDB, Cognito, API Gateway), "
                                              "or a fetch of Cognito's public signing keys.",
            "HIPAA.Security-LambdaDLQ": "Never invoked asynchronously (Cognito and API Gateway call synchronously; "
                                        "SQS consumers fail back to their queue, whose own DLQ keeps what fails).",
            "HIPAA.Security-LambdaConcurrency": "Reserved concurrency would fail to deploy in new accounts (limit 10); "
                                                "SQS event sources cap concurrent batches instead.",
        })
