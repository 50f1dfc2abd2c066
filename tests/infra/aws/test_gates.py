"""Compliance gates: cdk-nag (AwsSolutions + HIPAA Security) and cfn-lint on every template of every variant."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_rds as rds
from refarch.constructs.aws.deploy_guard import NEVER_A_REGION
from refarch.stacks.selfnest.account import ACCOUNT_STACK_NAME
from refarch.stacks.selfnest.app import SelfnestEnvironment
from refarch.stacks.selfnest.config import load_settings

from tests.run_cache import RunCache, files_digest, installed_distributions

from .assembly import Assembly, synthesize
from .conftest import DEPLOYER_ACCOUNT, VARIANTS

ROOT = Path(__file__).resolve().parents[3]


def test_cdk_nag_reports_no_unacknowledged_findings(assembly: Assembly) -> None:
    assert [f"{f.rule} at {f.path}" for f in assembly.findings] == []


def test_cdk_nag_and_cfn_lint_pass_with_every_table_provisioned(provisioned: Assembly) -> None:
    assert [f"{f.rule} at {f.path}" for f in provisioned.findings] == []
    returncode, output = cfn_lint(list(provisioned.template_files.values()), label="dev-provisioned")
    assert returncode == 0, output


def test_synth_needs_no_account_lookups(assembly: Assembly) -> None:
    """Offline and for a concrete account alike, nothing is left for the CLI to look up in the account."""
    assert assembly.missing_context == []
    # every stack of a variant is bound to the same account (the deployer's) or to none
    assert len(set(assembly.accounts.values())) == 1
    assert set(assembly.accounts.values()) <= {DEPLOYER_ACCOUNT, "unknown-account"}


def test_both_account_shapes_are_gated() -> None:
    """Every gate runs on an env-agnostic variant and on one bound to an account (what `cdk deploy` synthesizes)."""
    assert {account is None for _, _, account in VARIANTS.values()} == {True, False}


def test_cdk_nag_catches_an_unencrypted_database(tmp_path: Path) -> None:
    def store_plaintext(environment: SelfnestEnvironment) -> None:
        instance = environment.data.database.instance.node.default_child
        assert isinstance(instance, rds.CfnDBInstance)
        instance.storage_encrypted = False
        instance.kms_key_id = None

    # The data stack, with the network stack it references; CDK's built-in rules are not what this test reads.
    tampered = synthesize(load_settings("dev"), tmp_path, tamper=store_plaintext, parts={"network", "data"},
                          builtin_validation=False)
    assert set(tampered.templates) == {"network", "data"}
    rules = {(finding.plugin, finding.rule) for finding in tampered.findings}
    assert ("AwsSolutions", "AwsSolutions-RDS2") in rules
    assert ("HIPAA.Security", "HIPAA.Security-RDSStorageEncrypted") in rules
    assert all(finding.path.startswith("selfnest-dev/data/Postgres/Instance") for finding in tampered.findings)


def test_cdk_nag_catches_a_database_opened_to_the_internet(tmp_path: Path) -> None:
    def open_database(environment: SelfnestEnvironment) -> None:
        group = environment.network.security_groups.database
        group.add_ingress_rule(cdk.aws_ec2.Peer.any_ipv4(), cdk.aws_ec2.Port.tcp(5432))

    tampered = synthesize(load_settings("dev"), tmp_path, tamper=open_database, parts={"network"},
                          builtin_validation=False)
    assert set(tampered.templates) == {"network"}
    assert "AwsSolutions-EC23" in {finding.rule for finding in tampered.findings}


def test_cfn_lint_reports_no_errors_or_warnings(assembly: Assembly) -> None:
    # .cfnlintrc.yaml at the root lists every rule we switch off, with its reason.
    templates = list(assembly.template_files.values())
    expected = {"network", "data", "identity", "messaging", "chat", "web", "monitoring", "backup",
                ACCOUNT_STACK_NAME} | (
        {"dr"} if assembly.settings.dr.copy_region else set()) | (
        {"keys"} if assembly.settings.encryption.keys == "per_environment" else set())
    assert set(assembly.template_files) == expected   # the DR-region stack is linted too
    returncode, output = cfn_lint(templates, label=f"{assembly.settings.environment}-{assembly.settings.dr.tier}")
    assert returncode == 0, output


LINT_CACHE = RunCache("cfn-lint")


def cfn_lint(templates: list[Path], *, label: str) -> tuple[int, str]:
    """cfn-lint's verdict on these templates, reused across runs while the templates, the rules we switch off
    (.cfnlintrc.yaml) and every installed distribution (cfn-lint and its rule data) are unchanged."""
    inputs = {"templates": files_digest(templates, root=templates[0].parent),
              "config": files_digest([ROOT / ".cfnlintrc.yaml"], root=ROOT), "python": installed_distributions()}

    def lint(entry: Path) -> None:
        cfn_lint = Path(sys.executable).parent / "cfn-lint"
        result = subprocess.run([str(cfn_lint), *map(str, templates)], cwd=ROOT, capture_output=True, text=True,
                                check=False)
        (entry / "verdict.json").write_text(json.dumps([result.returncode, result.stdout + result.stderr]),
                                            encoding="utf-8")

    entry, _ = LINT_CACHE.get_or_build(label, inputs, lint)
    returncode, output = json.loads((entry / "verdict.json").read_text(encoding="utf-8"))
    return int(returncode), str(output)


def test_placeholders_make_cloudformation_refuse_every_stack(assembly: Assembly) -> None:
    """A direct `cdk deploy` stops at the first stack: CloudFormation checks template rules before any resource."""
    expected = assembly.settings.placeholders()
    for part, template in assembly.templates.items():
        rules = [rule for name, rule in template.get("Rules", {}).items() if name.startswith("RefuseDeploy")]
        assert [assertion["AssertDescription"] for rule in rules for assertion in rule["Assertions"]] == expected, part
        for rule in rules:
            [assertion] = rule["Assertions"]
            assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, NEVER_A_REGION]}   # never true
            assert not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", NEVER_A_REGION)


def test_the_cli_entry_point_synthesizes_clean_for_the_callers_account(tmp_path: Path) -> None:
    """What `cdk deploy` runs with credentials: the app reads CDK_DEFAULT_ACCOUNT, binds every stack to it, answers
    its lookups offline and passes cdk-nag (a finding makes synth fail, so exit 0 means none)."""
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]   # what the CLI passes on
    env = {**os.environ, "CDK_DEFAULT_ACCOUNT": DEPLOYER_ACCOUNT, "CDK_OUTDIR": str(tmp_path),
           "CDK_CONTEXT_JSON": json.dumps({**context, "env": "prod", "dr_tier": "pilot_light"})}
    result = subprocess.run([sys.executable, "-m", "refarch.stacks.selfnest"], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert "missing" not in manifest
    environments = {artifact["environment"] for artifact in manifest["artifacts"].values()
                    if artifact["type"] == "aws:cloudformation:stack"}
    settings = load_settings("prod", dr_tier="pilot_light")
    assert environments == {f"aws://{DEPLOYER_ACCOUNT}/{region}" for region in (settings.region, settings.dr.region)}
