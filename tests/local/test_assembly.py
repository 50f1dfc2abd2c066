"""The local assembly leaves out what the emulator cannot create, and everything that reads it — in the same stack, or
in another one through a published output (Fn::GetStackOutput) — and says so; the rest is deployed as synthesized."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from refarch.local.assembly import NOT_EMULATED, NOT_EMULATED_WITH, localize
from refarch.stacks.selfnest.config import load_settings

from tests.infra.aws.assembly import synthesize

UNSUPPORTED_TYPE = next(iter(NOT_EMULATED))
REFUSED_SHAPE, (REFUSED_PROPERTY, _) = next(iter(NOT_EMULATED_WITH.items()))


def write_assembly(directory: Path, stacks: dict[str, dict[str, Any]]) -> None:
    """A cloud assembly of `stacks` (name -> template); one stack's artifact id differs from its name."""
    directory.mkdir()
    artifacts = {}
    for number, (name, template) in enumerate(stacks.items()):
        (directory / f"{name}.template.json").write_text(json.dumps(template))
        properties: dict[str, Any] = {"templateFile": f"{name}.template.json",
                                      "stackTemplateAssetObjectUrl": f"s3://bucket/{name}-hash{number}.json"}
        if number == 0:
            properties["stackName"] = name
            artifacts[f"{name}Artifact"] = {"type": "aws:cloudformation:stack", "properties": properties}
        else:
            artifacts[name] = {"type": "aws:cloudformation:stack", "properties": properties}
    (directory / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))


def test_readers_of_a_left_out_resource_are_left_out_across_stacks(tmp_path: Path):
    producer = {"Resources": {
        "Service": {"Type": UNSUPPORTED_TYPE, "Properties": {}},
        "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {}},
        "MathAlarm": {"Type": REFUSED_SHAPE, "Properties": {REFUSED_PROPERTY: []}},
        "PlainAlarm": {"Type": REFUSED_SHAPE, "Properties": {"MetricName": "Errors"}},
    }, "Outputs": {
        "ServiceName": {"Value": {"Fn::GetAtt": ["Service", "Name"]}},
        "ClusterName": {"Value": {"Ref": "Cluster"}},
    }}

    def reads(output: str) -> dict[str, Any]:
        return {"Fn::GetStackOutput": {"StackName": "producer", "Region": "eu-west-1", "OutputName": output}}

    consumer = {"Resources": {
        "ServiceAlarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Dimensions": [
            {"Name": "ClusterName", "Value": reads("ClusterName")},
            {"Name": "ServiceName", "Value": reads("ServiceName")}]}},
        "ComposedOfIt": {"Type": "AWS::SNS::Topic", "Properties": {"Name": {"Ref": "ServiceAlarm"}}},
        "ClusterAlarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Dimensions": [
            {"Name": "ClusterName", "Value": reads("ClusterName")}]}},
    }}
    write_assembly(tmp_path / "synth", {"producer": producer, "consumer": consumer})

    omissions = localize(tmp_path / "synth", tmp_path / "local", emulator_url="http://localhost:4566")

    left_out = {(item.stack, item.logical_id) for item in omissions}
    assert left_out == {("producer", "Service"), ("producer", "MathAlarm"), ("consumer", "ServiceAlarm"),
                        ("consumer", "ComposedOfIt")}
    deployed = {path.name.split(".")[0]: json.loads(path.read_text()) for path in (tmp_path / "local").glob("*.json")}
    assert set(deployed["producer"]["Resources"]) == {"Cluster", "PlainAlarm"}
    assert set(deployed["producer"]["Outputs"]) == {"ClusterName"}
    assert set(deployed["consumer"]["Resources"]) == {"ClusterAlarm"}
    assert json.loads((tmp_path / "synth" / "consumer.template.json").read_text()) == consumer   # synth untouched


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
