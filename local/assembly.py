"""The local cloud assembly: a copy of `make synth`'s cdk.out with what the emulator cannot create left out.

cdk.out itself is never changed, so what deploys to AWS is exactly what `make synth` wrote. The copy under .local/
drops the resource types the emulator's CloudFormation refuses or cannot run (NOT_EMULATED, measured: docs/local.md),
every resource that references a dropped one, and the container image asset (building it needs Docker; the API
runs as a local process instead). Each drop is reported, so the deploy says what is not emulated.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Resource type -> why the local deployment leaves it out. Measured with MiniStack (docs/local.md).
NOT_EMULATED: dict[str, str] = {
    "AWS::EC2::FlowLog": "refused by the emulator's CloudFormation",
    "AWS::EC2::NetworkAcl": "refused by the emulator's CloudFormation",
    "AWS::EC2::NetworkAclEntry": "refused by the emulator's CloudFormation",
    "AWS::EC2::SubnetNetworkAclAssociation": "refused by the emulator's CloudFormation",
    "AWS::EC2::SecurityGroupIngress": "refused by the emulator's CloudFormation (no packets flow locally)",
    "AWS::EC2::SecurityGroupEgress": "refused by the emulator's CloudFormation (no packets flow locally)",
    "AWS::Serverless::Application": "needs the SAM transform and the Serverless Application Repository",
    "AWS::SecretsManager::ResourcePolicy": "refused by the emulator's CloudFormation",
    "AWS::SecretsManager::RotationSchedule": "its rotation function is a Serverless application (not emulated)",
    "AWS::ApplicationAutoScaling::ScalableTarget": "refused by the emulator's CloudFormation",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "refused by the emulator's CloudFormation",
    "AWS::Cognito::ManagedLoginBranding": "unknown to the emulator's CloudFormation (the hosted sign-in pages' look)",
    "AWS::CloudWatch::CompositeAlarm": "unknown to the emulator's CloudFormation (its member alarms are deployed)",
    "AWS::Budgets::Budget": "unknown to the emulator's CloudFormation (no bill locally)",
    "AWS::ECS::Service": "would run the container image (needs Docker); the API runs as a local process instead",
    "Custom::S3AutoDeleteObjects": "a Node.js custom resource the emulator does not complete (only empties buckets "
                                   "on destroy)",
    "Custom::VpcRestrictDefaultSG": "a Node.js custom resource the emulator does not complete (no packets flow "
                                    "locally)",
    "Custom::SchemaMigration": "would run the migrate task's container image on Fargate (needs Docker); `make up` "
                               "prepares the local PostgreSQL itself",
}


@dataclass(frozen=True)
class Omission:
    stack: str
    logical_id: str
    resource_type: str
    reason: str


# Function settings the local deployment changes, each for a reason docs/local.md gives: the demo chats in the
# session it has just booked (the next full hour), so the chat opens up to an hour before a session starts.
LOCAL_FUNCTION_SETTINGS = {"JOIN_MINUTES_BEFORE_START": "60"}


def localize(source: Path, target: Path, *, emulator_url: str) -> list[Omission]:
    """Copy the assembly `source` to `target` without what the emulator cannot create; return what was left out.

    Functions that verify Cognito tokens fetch the pool's keys from the emulator (`emulator_url`) instead of
    cognito-idp.<region>.amazonaws.com, which this machine cannot reach."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.lock", "cdk.out"))
    omissions: list[Omission] = []
    for asset in target.glob("asset.*"):
        if asset.is_dir():
            omissions += _drop_foreign_extensions(asset)
    manifest_path = target / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    renamed: dict[str, str] = {}   # template asset hash -> the changed template's hash
    stacks = [(artifact, artifact["properties"].get("stackName", artifact_id),   # absent: named as its id
               target / artifact["properties"]["templateFile"])
              for artifact_id, artifact in manifest["artifacts"].items()
              if artifact["type"] == "aws:cloudformation:stack"]
    templates = {path: json.loads(path.read_text(encoding="utf-8")) for _, _, path in stacks}
    missing_outputs: set[tuple[str, str]] = set()   # (stack, output) another stack may read (Fn::GetStackOutput)
    while True:   # until no stack loses an output another one reads
        before = len(missing_outputs)
        for _, name, path in stacks:
            found, lost = _drop_unsupported(name, templates[path], missing_outputs)
            omissions += found
            missing_outputs |= {(name, output) for output in lost}
        if len(missing_outputs) == before:
            break
    for artifact, name, path in stacks:
        template = templates[path]
        omissions += _declare_managed_master_secrets(name, template)
        _point_functions_at(template, emulator_url)
        _allow_plain_http(template)
        text = json.dumps(template, indent=1)
        path.write_text(text, encoding="utf-8")
        # The CLI deploys as the emulator's root: MiniStack's IAM checks (AUTH=true) refuse the bootstrap's
        # publishing roles on its staging bucket, and only the application's own roles are under test here.
        for role in ("assumeRoleArn", "cloudFormationExecutionRoleArn", "lookupRole"):
            artifact["properties"].pop(role, None)
        # The CLI skips uploading an object key that exists: a changed template needs a key of its own.
        old_key = artifact["properties"]["stackTemplateAssetObjectUrl"].rsplit("/", 1)[-1].split(".")[0]
        renamed[old_key] = hashlib.sha256(text.encode()).hexdigest()
    for artifact in manifest["artifacts"].values():
        if artifact["type"] == "cdk:asset-manifest":
            path = target / artifact["properties"]["file"]
            assets = json.loads(_rename(path.read_text(encoding="utf-8"), renamed))
            assets.pop("dockerImages", None)
            for asset in assets.get("files", {}).values():
                for destination in asset["destinations"].values():
                    destination.pop("assumeRoleArn", None)
            path.write_text(json.dumps(assets, indent=1), encoding="utf-8")
    manifest_path.write_text(_rename(json.dumps(manifest, indent=1), renamed), encoding="utf-8")
    return omissions


def _drop_foreign_extensions(asset: Path) -> list[Omission]:
    """Leave out packages with native extensions built for the Lambda platform (arm64, the function's Python):
    they cannot load here, and the emulator's interpreter imports its own build of them (requirements.lock)."""
    dropped = sorted({extension.relative_to(asset).parts[0] for extension in asset.rglob("*.so")})
    for name in dropped:
        path = asset / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        package = name.split(".")[0]
        for metadata in asset.glob(f"{package}-*.dist-info"):
            shutil.rmtree(metadata)
    return [Omission(asset.name, name, "native extension", "built for the Lambda platform; the emulator's own "
                     "build is imported instead") for name in dropped]

# Resource type -> (property, why): the emulator refuses these types only with this property set. Measured too.
NOT_EMULATED_WITH: dict[str, tuple[str, str]] = {
    "AWS::CloudWatch::Alarm": ("Metrics", "a metric-math alarm, refused by the emulator's CloudFormation"),
}


def _not_emulated(resource: dict[str, Any]) -> str | None:
    """Why the emulator cannot create `resource`, or None when it can."""
    if resource["Type"] in NOT_EMULATED:
        return NOT_EMULATED[resource["Type"]]
    refused = NOT_EMULATED_WITH.get(resource["Type"])
    if refused is not None and refused[0] in resource.get("Properties", {}):
        return refused[1]
    return None


def _rename(text: str, renamed: dict[str, str]) -> str:
    for old, new in renamed.items():
        text = text.replace(old, new)
    return text


def _drop_unsupported(stack: str, template: dict[str, Any],
                      missing_outputs: set[tuple[str, str]]) -> tuple[list[Omission], list[str]]:
    """Drop what the emulator cannot create and whatever reads it, here or through another stack's output; return
    the omissions and the names of the outputs dropped with them."""
    resources: dict[str, dict[str, Any]] = template["Resources"]
    dropped = {logical_id: reason for logical_id, resource in resources.items()
               if (reason := _not_emulated(resource)) is not None}
    dropped |= {logical_id: f"reads {output[0]}'s output {output[1]}, which is not emulated"
                for logical_id, resource in resources.items()
                for output in _stack_outputs_read(resource) & missing_outputs if logical_id not in dropped}
    while True:   # whatever reads a dropped resource cannot be created either
        followers = {logical_id: f"references {sorted(_references(resource) & dropped.keys())[0]}"
                     for logical_id, resource in resources.items()
                     if logical_id not in dropped and _references(resource) & dropped.keys()}
        if not followers:
            break
        dropped |= followers
    omissions = [Omission(stack, logical_id, resources[logical_id]["Type"], reason)
                 for logical_id, reason in dropped.items()]
    for logical_id in dropped:
        del resources[logical_id]
    for resource in resources.values():
        depends_on = resource.get("DependsOn")
        if depends_on is not None:
            names = [depends_on] if isinstance(depends_on, str) else depends_on
            resource["DependsOn"] = [name for name in names if name not in dropped]
    outputs = template.get("Outputs", {})
    lost = [name for name, output in outputs.items() if set(_walk_references(output)) & dropped.keys()]
    template["Outputs"] = {name: output for name, output in outputs.items() if name not in lost}
    if not any(resource["Type"].startswith("AWS::Serverless::") for resource in resources.values()):
        template.pop("Transform", None)
    return omissions, lost


def _stack_outputs_read(value: Any) -> set[tuple[str, str]]:
    """(stack, output) pairs a resource reads with Fn::GetStackOutput (CDK's cross-stack references)."""
    if isinstance(value, list):
        return set().union(*(_stack_outputs_read(item) for item in value))
    if isinstance(value, dict):
        read = value.get("Fn::GetStackOutput")
        if isinstance(read, dict):
            return {(str(read.get("StackName")), str(read.get("OutputName")))}
        return set().union(*(_stack_outputs_read(item) for item in value.values()))
    return set()


RDS_MANAGED_MASTER_LOGIN_NOTE = ("the emulator's CloudFormation creates no RDS-managed master secret "
                         "(ManageMasterUserPassword): the local copy declares it as a generated secret of the same "
                         "shape ({username, password}), which the local PostgreSQL's master login then uses")


def _declare_managed_master_secrets(stack: str, template: dict[str, Any]) -> list[Omission]:
    """Play RDS's part for a DB instance whose master password RDS manages: RDS creates a secret at launch holding
    the master username and a generated password, encrypted with MasterUserSecret.KmsKeyId; the emulator does not.
    The local copy declares that secret itself and points every GetAtt MasterUserSecret.SecretArn at it."""
    resources: dict[str, dict[str, Any]] = template["Resources"]
    substituted: list[Omission] = []
    for logical_id, resource in list(resources.items()):
        properties = resource.get("Properties", {})
        if resource["Type"] != "AWS::RDS::DBInstance" or properties.get("ManageMasterUserPassword") not in (
                True, "true"):
            continue
        secret_id = f"{logical_id}LocalMasterSecret"
        key = properties.get("MasterUserSecret", {}).get("KmsKeyId")
        resources[secret_id] = {"Type": "AWS::SecretsManager::Secret", "Properties": {
            "Description": f"Local stand-in for the RDS-managed master secret of {logical_id}",
            "GenerateSecretString": {"SecretStringTemplate": json.dumps({"username": properties["MasterUsername"]}),
                                     "GenerateStringKey": "password", "PasswordLength": 30,
                                     "ExcludeCharacters": " %+~`#$&*()|[]{}:;<>?!'/@\"\\"},
            **({"KmsKeyId": key} if key is not None else {})}}
        del properties["ManageMasterUserPassword"]
        properties.pop("MasterUserSecret", None)
        wanted = {"Fn::GetAtt": [logical_id, "MasterUserSecret.SecretArn"]}
        # The secret's ARN (its Id attribute): the emulator's Ref of a secret answers its name, not the ARN.
        arn = {"Fn::GetAtt": [secret_id, "Id"]}
        template["Resources"] = resources = _replace(resources, wanted, arn)
        if "Outputs" in template:
            template["Outputs"] = _replace(template["Outputs"], wanted, arn)
        substituted.append(Omission(stack, logical_id, "AWS::RDS::DBInstance", RDS_MANAGED_MASTER_LOGIN_NOTE))
    return substituted


def _replace(value: Any, wanted: Any, replacement: Any) -> Any:
    if value == wanted or value == {"Fn::GetAtt": ".".join(wanted["Fn::GetAtt"])}:
        return replacement
    if isinstance(value, dict):
        return {key: _replace(item, wanted, replacement) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, wanted, replacement) for item in value]
    return value


def _allow_plain_http(template: dict[str, Any]) -> None:
    """Remove the resource-policy statements that deny requests without TLS: the emulator speaks plain HTTP on
    127.0.0.1, and with its IAM checks on (AUTH=true) those statements would refuse every local request."""
    for resource in template["Resources"].values():
        document = resource.get("Properties", {}).get("PolicyDocument")
        if isinstance(document, dict) and isinstance(document.get("Statement"), list):
            document["Statement"] = [statement for statement in document["Statement"]
                                     if "aws:SecureTransport" not in json.dumps(statement.get("Condition", {}))]


def _point_functions_at(template: dict[str, Any], emulator_url: str) -> None:
    stages = [resource["Properties"] for resource in template["Resources"].values()
              if resource["Type"] == "AWS::ApiGatewayV2::Stage"]
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        variables = resource["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
        if len(stages) == 1:   # the emulator serves a stage's @connections at this path
            variables["AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"] = {"Fn::Join": ["", [
                f"{emulator_url}/_aws/execute-api/", stages[0]["ApiId"], f"/{stages[0]['StageName']}"]]}
        for name, value in LOCAL_FUNCTION_SETTINGS.items():
            if name in variables:
                variables[name] = value
        if "USER_POOL_ID" in variables:
            variables["COGNITO_JWKS_URL"] = {"Fn::Join": ["", [f"{emulator_url}/", variables["USER_POOL_ID"],
                                                               "/.well-known/jwks.json"]]}


def _references(resource: dict[str, Any]) -> set[str]:
    return set(_walk_references(resource.get("Properties", {})))


def _walk_references(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _walk_references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                yield item
            elif key == "Fn::GetAtt":
                yield item[0] if isinstance(item, list) else str(item).split(".")[0]
            elif key == "Fn::Sub" and isinstance(item, str | list):
                text = item if isinstance(item, str) else item[0]
                yield from (name.split(".")[0] for name in _sub_names(text))
                if isinstance(item, list):
                    yield from _walk_references(item[1])
            else:
                yield from _walk_references(item)


def _sub_names(text: str) -> Iterator[str]:
    start = text.find("${")
    while start != -1:
        end = text.find("}", start)
        if end == -1:
            return
        yield text[start + 2:end]
        start = text.find("${", end)
