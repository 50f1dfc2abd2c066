"""The emulator's copy of the cloud assembly: what it leaves out, and that nothing left in still points at it."""

from __future__ import annotations

import json
from pathlib import Path

from refarch.local.assembly import NOT_EMULATED, localize
from refarch.stacks.selfnest.config import load_settings

from tests.infra.aws.assembly import synthesize


def test_the_deploy_time_migration_is_left_out_with_its_reason_and_nothing_waits_on_it(tmp_path: Path) -> None:
    """`make up` prepares the local PostgreSQL itself; the migration resource would run a container image."""
    assembly = synthesize(load_settings("dev"), tmp_path / "cdk.out")
    [(migration_id, _)] = assembly.resources("web", "Custom::SchemaMigration").items()

    omissions = localize(assembly.outdir, tmp_path / "local", emulator_url="http://localhost:4566")

    [omission] = [o for o in omissions if o.logical_id == migration_id]
    assert omission.reason == NOT_EMULATED["Custom::SchemaMigration"]
    web = json.loads((tmp_path / "local" / assembly.template_files["web"].name).read_text(encoding="utf-8"))
    assert migration_id not in web["Resources"]
    assert migration_id not in json.dumps(web)   # no DependsOn, Ref or GetAtt left pointing at it
