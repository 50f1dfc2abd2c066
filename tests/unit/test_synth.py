"""`make synth`'s summary names where the templates went, wherever --output points."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from refarch.tools import synth

from tests.entry_points import run_main


def write_assembly(outdir: Path, *, stacks: dict[str, int]) -> None:
    """What `cdk synth` leaves in `outdir`: a manifest naming each stack's template, and the templates."""
    outdir.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    for name, resources in stacks.items():
        (outdir / f"{name}.template.json").write_text(json.dumps(
            {"Resources": {f"Thing{index}": {"Type": "AWS::SNS::Topic"} for index in range(resources)}}))
        artifacts[name] = {"type": "aws:cloudformation:stack", "properties": {"templateFile": f"{name}.template.json"}}
    (outdir / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))


@pytest.mark.parametrize("inside_repository", [False, True], ids=["absolute path elsewhere", "relative path"])
def test_the_summary_prints_the_output_folder_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       inside_repository: bool) -> None:
    output = str(tmp_path / "assembly") if not inside_repository else f".cache/tests/synth-output-{tmp_path.name}"
    stacks = {"selfnest-dev-network": 3, "selfnest-dev-data": 5}

    def fake_synthesize(environment: str, outdir: Path, dr_tier: str | None = None) -> subprocess.CompletedProcess[str]:
        assert outdir == (synth.ROOT / output).resolve()
        write_assembly(outdir, stacks=stacks)
        return subprocess.CompletedProcess([], 0)

    monkeypatch.setattr(synth, "synthesize", fake_synthesize)
    try:
        finished = run_main(synth.main, ["--env", "dev", "--output", output])
    finally:
        if inside_repository:
            for path in sorted((synth.ROOT / output).glob("*")):
                path.unlink()
            (synth.ROOT / output).rmdir()
    assert (finished.returncode, finished.stderr) == (0, "")
    width = max(len(name) for name in stacks)
    for name, resources in stacks.items():
        assert f"{name:<{width}}  {resources:>4} resources  {Path(output) / f'{name}.template.json'}" in finished.stdout
    assert f"Templates and assets: {output}/  ·" in finished.stdout
