"""Synthesize a Selfnest environment in-process and expose its templates and validation findings to tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refarch.stacks.selfnest.app import SelfnestEnvironment, build_app
from refarch.stacks.selfnest.config import SelfnestSettings

Template = dict[str, Any]
Resource = dict[str, Any]


@dataclass
class Finding:
    plugin: str
    rule: str
    path: str


@dataclass
class Assembly:
    settings: SelfnestSettings
    outdir: Path
    templates: dict[str, Template]          # by stack part: network, data, web
    template_files: dict[str, Path]
    findings: list[Finding] = field(default_factory=list)
    regions: dict[str, str] = field(default_factory=dict)   # by stack part, from the manifest's environment
    accounts: dict[str, str] = field(default_factory=dict)  # by stack part: an account id or unknown-account
    missing_context: list[str] = field(default_factory=list)   # lookups synth could not answer offline

    def resources(self, part: str, resource_type: str) -> dict[str, Resource]:
        return {logical_id: resource for logical_id, resource in self.templates[part]["Resources"].items()
                if resource["Type"] == resource_type}

    def all_resources(self, resource_type: str) -> Iterator[tuple[str, str, Resource]]:
        for part in self.templates:
            for logical_id, resource in self.resources(part, resource_type).items():
                yield part, logical_id, resource

    def resolve(self, value: Any) -> Any:
        """Follow a cross-stack reference to the expression the producing template gives it.

        CDK's current default ("weak" references) reads producer outputs with Fn::GetStackOutput; strong references
        use exports and Fn::ImportValue. Both are followed so tests do not depend on that feature flag.
        """
        if isinstance(value, dict) and "Fn::GetStackOutput" in value:
            wanted = value["Fn::GetStackOutput"]
            for part, template in self.templates.items():
                if self.settings.name(part) == wanted["StackName"]:
                    return template["Outputs"][wanted["OutputName"]]["Value"]
            raise AssertionError(f"no stack named {wanted['StackName']}")
        if isinstance(value, dict) and "Fn::ImportValue" in value:
            for template in self.templates.values():
                for output in template.get("Outputs", {}).values():
                    if output.get("Export", {}).get("Name") == value["Fn::ImportValue"]:
                        return output["Value"]
            raise AssertionError(f"no export named {value['Fn::ImportValue']}")
        return value

    def rules(self, group_id: str, direction: str) -> list[dict[str, Any]]:
        """Every ingress or egress rule of a network-stack security group: inline and standalone, in any stack."""
        inline_key, resource_type = {"ingress": ("SecurityGroupIngress", "AWS::EC2::SecurityGroupIngress"),
                                     "egress": ("SecurityGroupEgress", "AWS::EC2::SecurityGroupEgress")}[direction]
        group = self.resources("network", "AWS::EC2::SecurityGroup")[group_id]["Properties"]
        found = list(group.get(inline_key, []))
        for _, _, rule in self.all_resources(resource_type):
            if self.resolve(rule["Properties"]["GroupId"]) == get_att(group_id, "GroupId"):
                found.append({key: value for key, value in rule["Properties"].items() if key != "GroupId"})
        return [{key: self.resolve(value) for key, value in rule.items() if key != "Description"} for rule in found]

    def at_path(self, part: str, path_suffix: str) -> tuple[str, Resource]:
        """The one resource of `part` whose construct path ends with `path_suffix`."""
        found = [(logical_id, resource) for logical_id, resource in self.templates[part]["Resources"].items()
                 if resource.get("Metadata", {}).get("aws:cdk:path", "").endswith(path_suffix)]
        assert len(found) == 1, f"expected one resource at */{path_suffix} in {part}, found {len(found)}"
        return found[0]

    def only(self, part: str, resource_type: str) -> tuple[str, Resource]:
        found = self.resources(part, resource_type)
        assert len(found) == 1, f"expected one {resource_type} in {part}, found {sorted(found)}"
        return next(iter(found.items()))


def synthesize(settings: SelfnestSettings, outdir: Path,
               tamper: Callable[[SelfnestEnvironment], None] | None = None, account: str | None = None) -> Assembly:
    """Synth like `cdk synth` does (same app, same cdk-nag plugins) and collect any validation findings.

    `account`: synthesize for that account, as `cdk deploy` with credentials does (CDK_DEFAULT_ACCOUNT); None is
    env-agnostic, as offline `cdk synth` is."""
    context = json.loads((Path(__file__).resolve().parents[3] / "cdk.json").read_text(encoding="utf-8"))["context"]
    # The CLI turns on construct-path metadata; tests use it to find resources by what they are.
    context["aws:cdk:enable-path-metadata"] = True
    context["aws:cdk:enable-asset-metadata"] = True  # aws:asset:path tells service tests where a handler was bundled
    app, environment = build_app(settings, outdir=str(outdir), context=context, account=account)
    if tamper is not None:
        tamper(environment)
    try:
        app.synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
    report = json.loads((outdir / "validation-report.json").read_text(encoding="utf-8"))
    findings = [Finding(plugin["pluginName"], violation["ruleName"], construct["constructPath"])
                for plugin in report["pluginReports"] for violation in plugin["violations"]
                for construct in violation["violatingConstructs"]]
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    files = {artifact["displayName"].split("/")[-1]: outdir / artifact["properties"]["templateFile"]
             for artifact in manifest["artifacts"].values() if artifact["type"] == "aws:cloudformation:stack"}
    templates = {part: json.loads(path.read_text(encoding="utf-8")) for part, path in files.items()}
    environments = {artifact["displayName"].split("/")[-1]: artifact["environment"].removeprefix("aws://").split("/")
                    for artifact in manifest["artifacts"].values() if artifact["type"] == "aws:cloudformation:stack"}
    return Assembly(settings, outdir, templates, files, findings,
                    regions={part: region for part, (_, region) in environments.items()},
                    accounts={part: stack_account for part, (stack_account, _) in environments.items()},
                    missing_context=[entry["key"] for entry in manifest.get("missing", [])])


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def get_att(logical_id: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def cidr_ingress(rule: dict[str, Any]) -> str | None:
    return rule.get("CidrIp") or rule.get("CidrIpv6")
