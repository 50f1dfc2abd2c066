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


def test_an_rds_managed_master_secret_is_declared_locally_and_read_where_the_deployed_one_would_be(
        tmp_path: Path) -> None:
    """RDS creates the managed master secret at launch; the emulator's CloudFormation does not. The local copy
    declares a generated secret of the same shape and key, and every reader of MasterUserSecret.SecretArn (in the
    stack or through its output) reads that one instead."""
    key_arn = {"Fn::GetAtt": ["Key", "Arn"]}
    secret_arn = {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]}
    producer = {"Resources": {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
        "Database": {"Type": "AWS::RDS::DBInstance", "Properties": {
            "MasterUsername": "selfnest_admin", "ManageMasterUserPassword": True,
            "MasterUserSecret": {"KmsKeyId": key_arn}}},
        "Reader": {"Type": "AWS::IAM::Policy", "Properties": {"Resource": secret_arn}},
    }, "Outputs": {"MasterSecret": {"Value": secret_arn}}}
    write_assembly(tmp_path / "synth", {"producer": producer})

    omissions = localize(tmp_path / "synth", tmp_path / "local", emulator_url="http://localhost:4566")

    [noted] = [item for item in omissions if item.logical_id == "Database"]
    assert "ManageMasterUserPassword" in noted.reason
    [deployed] = [json.loads(path.read_text()) for path in (tmp_path / "local").glob("producer*.json")]
    [(secret_id, secret)] = [(logical_id, resource) for logical_id, resource in deployed["Resources"].items()
                             if resource["Type"] == "AWS::SecretsManager::Secret"]
    generated = secret["Properties"]["GenerateSecretString"]
    assert json.loads(generated["SecretStringTemplate"]) == {"username": "selfnest_admin"}
    assert generated["GenerateStringKey"] == "password" and secret["Properties"]["KmsKeyId"] == key_arn
    database = deployed["Resources"]["Database"]["Properties"]
    assert "ManageMasterUserPassword" not in database and "MasterUserSecret" not in database
    assert deployed["Resources"]["Reader"]["Properties"]["Resource"] == {"Fn::GetAtt": [secret_id, "Id"]}
    assert deployed["Outputs"]["MasterSecret"]["Value"] == {"Fn::GetAtt": [secret_id, "Id"]}
    assert "MasterUserSecret.SecretArn" not in json.dumps(deployed)
