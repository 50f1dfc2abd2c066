"""Compliance gates: cdk-nag (AwsSolutions + HIPAA Security) and cfn-lint on every template of every variant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_rds as rds
from refarch.stacks.selfnest.app import SelfnestEnvironment
from refarch.stacks.selfnest.config import load_settings

from .assembly import Assembly, synthesize

ROOT = Path(__file__).resolve().parents[3]


def test_cdk_nag_reports_no_unacknowledged_findings(assembly: Assembly) -> None:
    assert [f"{f.rule} at {f.path}" for f in assembly.findings] == []


def test_cdk_nag_catches_an_unencrypted_database(tmp_path: Path) -> None:
    def store_plaintext(environment: SelfnestEnvironment) -> None:
        instance = environment.data.database.instance.node.default_child
        assert isinstance(instance, rds.CfnDBInstance)
        instance.storage_encrypted = False
        instance.kms_key_id = None

    tampered = synthesize(load_settings("dev"), tmp_path, tamper=store_plaintext)
    rules = {(finding.plugin, finding.rule) for finding in tampered.findings}
    assert ("AwsSolutions", "AwsSolutions-RDS2") in rules
    assert ("HIPAA.Security", "HIPAA.Security-RDSStorageEncrypted") in rules
    assert all(finding.path.startswith("selfnest-dev/data/Postgres/Instance") for finding in tampered.findings)


def test_cdk_nag_catches_a_database_opened_to_the_internet(tmp_path: Path) -> None:
    def open_database(environment: SelfnestEnvironment) -> None:
        group = environment.network.security_groups.database
        group.add_ingress_rule(cdk.aws_ec2.Peer.any_ipv4(), cdk.aws_ec2.Port.tcp(5432))

    tampered = synthesize(load_settings("dev"), tmp_path, tamper=open_database)
    assert "AwsSolutions-EC23" in {finding.rule for finding in tampered.findings}


def test_cfn_lint_reports_no_errors_or_warnings(assembly: Assembly) -> None:
    # .cfnlintrc.yaml at the root lists every rule we switch off, with its reason.
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    templates = [str(path) for path in assembly.template_files.values()]
    expected = {"network", "data", "identity", "messaging", "chat", "web", "backup"} | (
        {"dr"} if assembly.settings.dr.copy_region else set())
    assert set(assembly.template_files) == expected   # the DR-region stack is linted too
    result = subprocess.run([str(cfn_lint), *templates], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cdk_nag_acknowledgements_hold_when_the_account_is_known(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`cdk deploy` with credentials synthesizes with the account filled in (CDK_DEFAULT_ACCOUNT): findings then
    spell it out instead of <AWS::AccountId>, and every acknowledgement must still match."""
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "111122223333")
    synthesized = synthesize(load_settings("dev"), tmp_path)
    assert [f"{f.rule} at {f.path}" for f in synthesized.findings] == []
