"""Synthesize a Selfnest environment in-process and expose its templates and validation findings to tests.

`shared_assembly(env, dr_tier)` is the one synth of a variant that every test tier reads (infra, gates, services,
labs): built once per process, and reused across runs from `.cache/tests/synth/` while none of its inputs changed
(see `synthesis_inputs`). `synthesize` builds afresh (for tampered or hand-made settings); `parts=` limits it to
the stacks a test needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import aws_cdk as cdk
from refarch.stacks.selfnest.app import SelfnestEnvironment, build_app
from refarch.stacks.selfnest.config import (
    ChatTable,
    ConfigError,
    ConsumerTable,
    SelfnestSettings,
    available_environments,
    load_settings,
)

from tests.run_cache import ROOT, RunCache, environment_values, files_digest, installed_distributions, node_version

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
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)   # by stack part, the manifest's entry

    def dependencies(self, part: str) -> set[str]:
        """Stack names `part` is deployed after (CDK passes them to the CLI as manifest dependencies)."""
        names = {artifact_id: artifact["properties"].get("stackName", artifact_id)
                 for artifact_id, artifact in self.manifest_artifacts().items()
                 if artifact["type"] == "aws:cloudformation:stack"}
        return {names[dependency] for dependency in self.artifacts[part].get("dependencies", [])
                if dependency in names}

    def manifest_artifacts(self) -> dict[str, dict[str, Any]]:
        return dict(json.loads((self.outdir / "manifest.json").read_text(encoding="utf-8"))["artifacts"])

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

    def tier_key_arn(self, part: str) -> Any:
        """The ARN, as its producing template gives it, of the one customer-managed key `part` encrypts with: its
        own, or with `encryption.keys: per_environment` the keys stack's (compare with `resolve(reference)`)."""
        [key_id] = self.resources(part, "AWS::KMS::Key") or self.resources("keys", "AWS::KMS::Key")
        return {"Fn::GetAtt": [key_id, "Arn"]}

    def key_for(self, part: str, reference: Any) -> Resource:
        """The AWS::KMS::Key a key property of a `part` resource names: `{"Fn::GetAtt": [id, "Arn"]}` in `part`, or
        a cross-stack reference to one in the producing stack."""
        producer = part
        if isinstance(reference, dict) and "Fn::GetStackOutput" in reference:
            [producer] = [other for other in self.templates
                          if self.settings.name(other) == reference["Fn::GetStackOutput"]["StackName"]]
        [key_id, _] = self.resolve(reference)["Fn::GetAtt"]
        key: Resource = self.resources(producer, "AWS::KMS::Key")[key_id]
        return key

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


def cdk_context(root: Path = ROOT) -> dict[str, Any]:
    """cdk.json's context plus what the CLI adds: construct paths (tests find resources by what they are) and asset
    paths (service tests load handlers from where they were bundled)."""
    context: dict[str, Any] = json.loads((root / "cdk.json").read_text(encoding="utf-8"))["context"]
    context["aws:cdk:enable-path-metadata"] = True
    context["aws:cdk:enable-asset-metadata"] = True
    return context


def synthesize(settings: SelfnestSettings, outdir: Path,
               tamper: Callable[[SelfnestEnvironment], None] | None = None, account: str | None = None, *,
               parts: Collection[str] | None = None, builtin_validation: bool = True) -> Assembly:
    """Synth like `cdk synth` does (same app, same cdk-nag plugins) and collect any validation findings.

    `account`: synthesize for that account, as `cdk deploy` with credentials does (CDK_DEFAULT_ACCOUNT); None is
    env-agnostic, as offline `cdk synth` is.
    `parts` keeps only those stacks (e.g. {"network"}): a test that tampers with one stack pays for that one.
    `builtin_validation=False` leaves out CDK's built-in template rules, for synths whose findings a test reads
    only for cdk-nag's verdict; cdk-nag always runs.
    """
    app, environment = build_app(settings, outdir=str(outdir), context=cdk_context(), account=account,
                                 builtin_validation=builtin_validation)
    if parts is not None:
        unknown = set(parts) - {child.node.id for child in environment.node.children}
        assert not unknown, f"no such stacks: {sorted(unknown)}"
        for child in list(environment.node.children):
            if isinstance(child, cdk.Stack) and child.node.id not in parts:
                environment.node.try_remove_child(child.node.id)
        # Stacks outside the environment (the account-wide settings) go too, unless a kept stack depends on them.
        kept = [child for child in environment.node.children if isinstance(child, cdk.Stack)]
        needed = {dependency.node.id for stack in kept for dependency in stack.dependencies}
        for child in list(app.node.children):
            if isinstance(child, cdk.Stack) and child.node.id not in parts and child.node.id not in needed:
                app.node.try_remove_child(child.node.id)
    if tamper is not None:
        tamper(environment)
    try:
        app.synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
    return read_assembly(settings, outdir)


def read_assembly(settings: SelfnestSettings, outdir: Path) -> Assembly:
    """The templates, regions and validation findings of a cloud assembly that `synthesize` wrote."""
    report_file = outdir / "validation-report.json"
    report = json.loads(report_file.read_text(encoding="utf-8")) if report_file.is_file() else {"pluginReports": []}
    findings = [Finding(plugin["pluginName"], violation["ruleName"], construct["constructPath"])
                for plugin in report["pluginReports"] for violation in plugin["violations"]
                for construct in violation["violatingConstructs"]]
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    files = {artifact["displayName"].split("/")[-1]: outdir / artifact["properties"]["templateFile"]
             for artifact in manifest["artifacts"].values() if artifact["type"] == "aws:cloudformation:stack"}
    templates = {part: json.loads(path.read_text(encoding="utf-8")) for part, path in files.items()}
    environments = {artifact["displayName"].split("/")[-1]: artifact["environment"].removeprefix("aws://").split("/")
                    for artifact in manifest["artifacts"].values() if artifact["type"] == "aws:cloudformation:stack"}
    artifacts = {artifact["displayName"].split("/")[-1]: artifact for artifact in manifest["artifacts"].values()
                 if artifact["type"] == "aws:cloudformation:stack"}
    return Assembly(settings, outdir, templates, files, findings,
                    regions={part: region for part, (_, region) in environments.items()},
                    accounts={part: stack_account for part, (stack_account, _) in environments.items()},
                    missing_context=[entry["key"] for entry in manifest.get("missing", [])], artifacts=artifacts)


# What the synthesized assembly is made from. Folders: the app, its constructs, the Lambda and container sources
# its assets copy, the config. Files: CDK context, lock files, project metadata, and this module (the synth recipe).
SYNTH_SOURCES = ("stacks", "constructs", "services", "config", "cdk.json", "cdk.context.json", "requirements.lock",
                 "package-lock.json", "pyproject.toml", "tests/infra/aws/assembly.py", "tests/run_cache.py")
# Environment variables the app reads (CDK_DEFAULT_ACCOUNT in stacks/selfnest/app.py), and every variable CDK
# and jsii read (CDK_VALIDATION, CDK_CONTEXT_JSON, JSII_*...).
SYNTH_ENVIRONMENT = ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")
SYNTH_ENVIRONMENT_PREFIXES = ("CDK_", "JSII_")
SYNTH_CACHE = RunCache("synth")


def synthesis_inputs(settings: SelfnestSettings, *, builtin_validation: bool = True, account: str | None = None,
                     root: Path = ROOT, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every input that can change what `synthesize(settings)` writes, as the cache key's named parts."""
    return {
        "settings": settings.model_dump_json(),
        "account": str(account),
        "sources": files_digest([root / name for name in SYNTH_SOURCES], root=root),
        "context": json.dumps(cdk_context(root), sort_keys=True),
        "environment": environment_values(SYNTH_ENVIRONMENT, SYNTH_ENVIRONMENT_PREFIXES, environ),
        "python": installed_distributions(),
        "node": node_version(),
        "builtin_validation": str(builtin_validation),
    }


_SHARED: dict[str, Assembly] = {}


def cached_synthesis(settings: SelfnestSettings, *, label: str | None = None, account: str | None = None,
                     builtin_validation: bool = True, root: Path = ROOT, cache: RunCache = SYNTH_CACHE) -> Assembly:
    """`synthesize(settings, account=account)`, once per process and reused across runs while every input is
    unchanged.

    `root`: the checkout whose sources the key names — another only when its synth sources other than config are
    this checkout's (a lab's solved copy of a config answer), so the entry is the one a test run there shares.
    `cache`: where entries live and how many a label keeps (the same folder as SYNTH_CACHE shares entries with it).
    Read-only: tests must not write into the returned assembly's folder (it is the cache entry).
    """
    inputs = synthesis_inputs(settings, builtin_validation=builtin_validation, account=account, root=root)
    label = label or settings.environment
    memo = f"{label}:{cache.entry(label, inputs).name}"
    if memo not in _SHARED:
        def build(entry: Path) -> None:
            synthesize(settings, entry / "cdk.out", account=account, builtin_validation=builtin_validation)

        entry, _ = cache.get_or_build(label, inputs, build)
        _SHARED[memo] = read_assembly(settings, entry / "cdk.out")
    return _SHARED[memo]


# An account as the CLI would pass it (any 12 digits; no AWS call is made).
DEPLOYER_ACCOUNT = "123456789012"
# The variants every test tier shares: name -> (environment, DR tier, account), derived from config/ so a new
# environment is gated without editing a list. Each environment with its configured DR tier; one with a DR region
# also with its replica tiers named explicitly (its file's own dr.tier, which labs 08 and 15 switch, changes no
# variant): pilot light and warm standby where config holds what they need; those for a concrete
# account, as `cdk deploy` with credentials does (the CLI sets CDK_DEFAULT_ACCOUNT), so both shapes pass every gate.
# The others synthesize env-agnostic (offline `cdk synth`).
def _variants() -> dict[str, tuple[str, str | None, str | None]]:
    variants: dict[str, tuple[str, str | None, str | None]] = {}
    for environment in available_environments():
        if load_settings(environment).dr.region is None:
            variants[environment] = (environment, None, None)
        else:
            variants[environment] = (environment, "backup_restore", None)
            for tier in ("pilot_light", "warm_standby"):
                try:
                    load_settings(environment, dr_tier=tier)
                except ConfigError:
                    # This file lacks what the tier needs (a DR network, dr.failover): config refuses it, as a
                    # deploy would; e.g. dev with only a copy region (lab 11). Nothing to gate.
                    continue
                variants[f"{environment}-{tier}"] = (environment, tier, DEPLOYER_ACCOUNT)
    return variants


VARIANTS: dict[str, tuple[str, str | None, str | None]] = _variants()


def provisioned_settings(environment: str = "dev") -> SelfnestSettings:
    """`environment` with every table config may provision (lab 07's knob) provisioned, each with its own units,
    validated like a config file; the lists come from the config model, so a table a fork adds is included."""
    settings = load_settings(environment).model_dump(mode="json")
    for offset, (section, tables) in enumerate((("messaging", get_args(ConsumerTable)), ("chat", get_args(ChatTable)))):
        settings[section]["provisioned_tables"] = {
            table: {"read_units": 2 + 10 * offset + index, "write_units": 1 + 10 * offset + index}
            for index, table in enumerate(tables)}
    return SelfnestSettings.model_validate(settings)


PROVISIONED = "dev-provisioned"


def shared_assembly(variant: str) -> Assembly:
    """The one synth of a variant (a key of VARIANTS, or PROVISIONED) for this test run, with the compliance gates'
    findings."""
    if variant == PROVISIONED:
        return cached_synthesis(provisioned_settings(), label=variant)
    environment, tier, account = VARIANTS[variant]
    return cached_synthesis(load_settings(environment, dr_tier=tier), label=variant, account=account)


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def get_att(logical_id: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def cidr_ingress(rule: dict[str, Any]) -> str | None:
    return rule.get("CidrIp") or rule.get("CidrIpv6")


def pool_triggers(lambda_config: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """A user pool's LambdaConfig as trigger -> (function logical id, event version).

    Most triggers are a bare ARN (version 1 events); PreTokenGenerationConfig names its LambdaArn and LambdaVersion.
    """
    triggers = {}
    for trigger, target in lambda_config.items():
        arn, version = (target["LambdaArn"], target["LambdaVersion"]) if "LambdaArn" in target else (target, "V1_0")
        triggers[trigger.removesuffix("Config")] = (arn["Fn::GetAtt"][0], version)
    return triggers


def service_task_definition(assembly: Assembly) -> dict[str, Any]:
    """The API service's task definition (the web stack also holds the one-off migration task's)."""
    _, service = assembly.only("web", "AWS::ECS::Service")
    task_id = service["Properties"]["TaskDefinition"]["Ref"]
    task: dict[str, Any] = assembly.templates["web"]["Resources"][task_id]
    return task
