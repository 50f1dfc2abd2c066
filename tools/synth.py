"""`make synth`: validate the environment's config, run `cdk synth` for it, and summarize what was written.

Config mistakes are reported in one line before the CDK toolchain starts, so a typo costs no synth time and shows
no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from refarch.stacks.selfnest.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


@dataclass(frozen=True)
class StackSummary:
    name: str
    resources: int
    template: Path


def tool_environment() -> dict[str, str]:
    """PATH with the project's Node 22 and CDK CLI first (jsii warns and may misbehave on an end-of-life Node)."""
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    return env


def synthesize(environment: str, outdir: Path, dr_tier: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(CDK), "synth", "--quiet", "--context", f"env={environment}", "--output", str(outdir)]
    if dr_tier is not None:
        command += ["--context", f"dr_tier={dr_tier}"]
    return subprocess.run(command, cwd=ROOT, env=tool_environment(), text=True, check=False)


def summarize(outdir: Path) -> list[StackSummary]:
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    summaries = []
    for artifact_id, artifact in manifest["artifacts"].items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        template_path = outdir / artifact["properties"]["templateFile"]
        template = json.loads(template_path.read_text(encoding="utf-8"))
        # The manifest omits stackName when it equals the artifact id (a stack directly under the app).
        summaries.append(StackSummary(artifact["properties"].get("stackName", artifact_id),
                                      len(template.get("Resources", {})), template_path))
    return summaries


def unacknowledged_findings(outdir: Path) -> int:
    report = outdir / "validation-report.json"
    if not report.is_file():
        return 0
    plugins = json.loads(report.read_text(encoding="utf-8"))["pluginReports"]
    return sum(len(plugin["violations"]) for plugin in plugins)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="dev", help="environment: a file name in config/ (default dev)")
    parser.add_argument("--output", default="cdk.out", help="cloud assembly directory (default cdk.out)")
    parser.add_argument("--dr-tier", default=None, help="override config's dr.tier (backup_restore, pilot_light)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.env, dr_tier=args.dr_tier or None)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    outdir = (ROOT / args.output).resolve()
    started = time.perf_counter()
    result = synthesize(args.env, outdir, args.dr_tier or None)
    if result.returncode != 0:
        print(f"error: cdk synth failed for env={args.env} (see the messages above)", file=sys.stderr)
        return result.returncode
    elapsed = time.perf_counter() - started

    stacks = summarize(outdir)
    width = max(len(stack.name) for stack in stacks)
    findings = unacknowledged_findings(outdir)
    print(f"\nSelfnest {args.env} (DR tier {settings.dr.tier}): {len(stacks)} stacks synthesized in {elapsed:.1f}s; "
          f"{findings} unacknowledged validation findings (cdk-nag AwsSolutions + HIPAA Security)")
    # Paths as the caller gave them: --output may be absolute and outside the repository.
    for stack in stacks:
        print(f"  {stack.name:<{width}}  {stack.resources:>4} resources  "
              f"{Path(args.output) / stack.template.relative_to(outdir)}")
    for placeholder in settings.placeholders():
        print(f"deploy refuses until replaced: {placeholder}")
    tier = f" -c dr_tier={args.dr_tier}" if args.dr_tier else ""
    print(f"Templates and assets: {args.output.rstrip('/')}/  ·  deploy: npx cdk deploy --all -c env={args.env}{tier}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
