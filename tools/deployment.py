"""What deploys, read from the code: Selfnest's synthesized CloudFormation templates and BabyBloom's offline plan.

`refarch cost` and `make diagrams` both start here, so the bill and the picture describe the same resources. Neither
keeps a list of what the apps contain: they read resource types and properties, so a stack that gains a resource
shows it on the next run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOURS_PER_MONTH = 730  # AWS and Azure price calculators both bill a month as 730 hours
# Construct-path markers of CDK's own helper functions (custom-resource providers, the log-retention singleton).
CDK_HELPER_PATHS = ("CustomResourceProvider", "AutoDeleteObjects", "LogRetention",
                    "AWS679f53fac002430cb0da5b7982bd2287")


@dataclass(frozen=True)
class CfnResource:
    """One resource of a synthesized template, with the stack part (network, data...) and region it deploys to."""

    part: str
    region: str
    logical_id: str
    type: str
    properties: dict[str, Any]
    path: str  # the construct path (aws:cdk:path), e.g. selfnest-dev/web/Service/Service

    @property
    def key(self) -> str:
        return f"{self.part}/{self.logical_id}"

    @property
    def is_cdk_helper(self) -> bool:
        """CDK's own custom-resource functions: they run at deploy time, hold nothing and serve no user."""
        return any(marker in self.path for marker in CDK_HELPER_PATHS)


@dataclass(frozen=True)
class CfnDeployment:
    """Every stack of one Selfnest variant."""

    name: str  # e.g. "selfnest dev", "selfnest prod pilot_light"
    region: str  # the primary region
    templates: dict[str, dict[str, Any]]  # by stack part
    regions: dict[str, str]  # by stack part

    def resources(self, *types: str) -> Iterator[CfnResource]:
        for part, template in self.templates.items():
            for logical_id, body in template.get("Resources", {}).items():
                if not types or body["Type"] in types:
                    yield CfnResource(part, self.regions[part], logical_id, body["Type"],
                                      body.get("Properties", {}), body.get("Metadata", {}).get("aws:cdk:path", ""))

    def find(self, part: str, value: Any) -> CfnResource | None:
        """The resource a Ref / Fn::GetAtt / Fn::GetStackOutput points at (following cross-stack outputs)."""
        value = self.resolve(part, value)
        if isinstance(value, dict) and "__part__" in value:
            part, value = value["__part__"], value["value"]
        logical_id = None
        if isinstance(value, dict) and "Ref" in value:
            logical_id = value["Ref"]
        elif isinstance(value, dict) and "Fn::GetAtt" in value:
            logical_id = value["Fn::GetAtt"][0]
        body = self.templates.get(part, {}).get("Resources", {}).get(logical_id) if logical_id else None
        if body is None or logical_id is None:
            return None
        return CfnResource(part, self.regions[part], logical_id, body["Type"], body.get("Properties", {}),
                           body.get("Metadata", {}).get("aws:cdk:path", ""))

    def resolve(self, part: str, value: Any) -> Any:
        """Follow CDK's weak (Fn::GetStackOutput) and strong (Fn::ImportValue) cross-stack references."""
        if isinstance(value, dict) and "Fn::GetStackOutput" in value:
            wanted = value["Fn::GetStackOutput"]
            for other, template in self.templates.items():
                if wanted["StackName"].endswith(f"-{other}") and wanted["OutputName"] in template.get("Outputs", {}):
                    return {"__part__": other, "value": template["Outputs"][wanted["OutputName"]]["Value"]}
        if isinstance(value, dict) and "Fn::ImportValue" in value:
            for other, template in self.templates.items():
                for output in template.get("Outputs", {}).values():
                    if output.get("Export", {}).get("Name") == value["Fn::ImportValue"]:
                        return {"__part__": other, "value": output["Value"]}
        return value


@dataclass(frozen=True)
class PlannedResource:
    """One registration of the BabyBloom program under mocks (type, name, parent component, inputs)."""

    type: str
    name: str
    parent: str | None
    inputs: dict[str, Any]


@dataclass(frozen=True)
class PulumiDeployment:
    name: str  # e.g. "babybloom dev"
    region: str
    resources: list[PlannedResource]

    def of_type(self, *types: str) -> list[PlannedResource]:
        return [resource for resource in self.resources if resource.type in types]


def read_cloud_assembly(outdir: Path, name: str, primary_region: str) -> CfnDeployment:
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    templates: dict[str, dict[str, Any]] = {}
    regions: dict[str, str] = {}
    for artifact in manifest["artifacts"].values():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        part = artifact["displayName"].split("/")[-1]
        templates[part] = json.loads((outdir / artifact["properties"]["templateFile"]).read_text(encoding="utf-8"))
        region = artifact["environment"].rsplit("/", 1)[-1]
        regions[part] = primary_region if region == "unknown-region" else region
    return CfnDeployment(name, primary_region, templates, regions)


def selfnest_deployment(env: str, dr_tier: str | None = None, outdir: Path | None = None) -> CfnDeployment:
    """Synthesize one Selfnest variant in this process (the app `cdk synth` runs, with cdk.json's context).

    A bad config raises refarch.stacks.selfnest.config.ConfigError; callers turn it into one line.
    """
    from refarch.stacks.selfnest.config import load_settings

    settings = load_settings(env, dr_tier=dr_tier)  # before the CDK loads: a config mistake costs no time
    # jsii starts `node` from PATH: the project's Node 22 first (jsii warns loudly on an end-of-life Node).
    os.environ["PATH"] = os.pathsep.join([str(ROOT / "node_modules" / ".bin"), os.environ.get("PATH", "")])
    from refarch.stacks.selfnest.app import build_app

    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    context["aws:cdk:enable-path-metadata"] = True
    with tempfile.TemporaryDirectory(prefix="refarch-synth-") as scratch:
        target = outdir or Path(scratch)
        app, _ = build_app(settings, outdir=str(target), context=context)
        app.synth()
        return read_cloud_assembly(target, variant_name("selfnest", env, settings.dr.tier), settings.region)


def variant_name(app: str, env: str, dr_tier: str | None = None) -> str:
    """`selfnest prod pilot_light`; the default tier (backup_restore) is not named."""
    return " ".join(part for part in (app, env, None if dr_tier in (None, "backup_restore") else dr_tier) if part)


def babybloom_deployment(stack: str) -> PulumiDeployment:
    """The offline plan of one BabyBloom stack, run in a child process (Pulumi's mocks hold one stack per process).

    A bad stack file ends the child with exit code 2 and its one-line message, raised here as ValueError.
    """
    with tempfile.TemporaryDirectory(prefix="refarch-plan-") as scratch:
        result = subprocess.run([sys.executable, "-m", "refarch.tools.plan_azure", "--stack", stack, "--out", scratch],
                                cwd=ROOT, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ValueError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else
                             f"plan-azure --stack {stack} failed with exit code {result.returncode}")
        planned = json.loads((Path(scratch) / f"babybloom-{stack}.json").read_text(encoding="utf-8"))
    return pulumi_deployment(stack, planned)


def pulumi_deployment(stack: str, planned: list[dict[str, Any]]) -> PulumiDeployment:
    """From the plan's JSON (`as_json` of each registration), as written by `make plan-azure`."""
    # Sorted: registrations finish in any order, and the bill and the diagram must read the same every time.
    resources = sorted((PlannedResource(item["type"], item["name"], item["parent"], item["inputs"])
                        for item in planned), key=lambda resource: (resource.type, resource.name))
    groups = [resource for resource in resources if resource.type == "azure-native:resources:ResourceGroup"]
    region = str(groups[0].inputs.get("location", "")) if groups else ""
    return PulumiDeployment(f"babybloom {stack}", region, resources)
