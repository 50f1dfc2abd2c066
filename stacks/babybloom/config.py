"""BabyBloom stack settings: one model over the Pulumi stack config, validated once at the edge.

Under the Pulumi engine the values arrive through the runtime config (`babybloom:*` and `azure-native:location`,
each a string, structured values JSON-encoded). Offline (plan tool, tests) `read_stack_file` turns Pulumi.<stack>.yaml
into exactly that form, so both paths go through `settings_from_config` and the same model. A mistake becomes a
`ConfigError` whose message is one line naming the stack file, the key and what is allowed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

PROJECT = "babybloom"
PROJECT_DIR = Path(__file__).resolve().parents[2]
LOCATION_KEY = "azure-native:location"
STACK_NAME_PATTERN = r"[a-z][a-z0-9]{1,7}"  # short: it ends up inside globally unique, length-limited names

GUID_PATTERN = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"

# Cosmos DB autoscale: the maximum is set in steps of 1000 RU/s (it scales between 10 % of it and it).
AUTOSCALE_STEP = 1000
AUTOSCALE_RANGE = (1000, 1_000_000)


# What a pattern-checked value should look like, by field name, for the one-line error.
_PATTERN_HINTS = {
    "location": "an Azure region name such as westeurope",
    "issuer": "the https:// OpenID issuer of your Entra ID tenant, e.g. https://<tenant>.ciamlogin.com/<id>/v2.0",
    "clientId": "the application (client) id of your app registration, a GUID",
    "secretOfficers": "Entra object ids (GUIDs) of the users, groups or service principals that write secrets",
}


class ConfigError(Exception):
    """A configuration mistake, worded for the person who made it (one line)."""


class _Settings(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class MonitoringSettings(_Settings):
    retention_days: Annotated[int, Field(ge=30, le=730)]
    daily_cap_gb: Annotated[float, Field(gt=0, le=1000)] | None


class StorageSettings(_Settings):
    sku: Literal["Standard_LRS", "Standard_ZRS", "Standard_GZRS"]


class FunctionSettings(_Settings):
    python_version: Literal["3.10", "3.11", "3.12"]
    instance_memory_mb: Literal[512, 2048, 4096]
    maximum_instance_count: Annotated[int, Field(ge=40, le=1000)]


class CosmosSettings(_Settings):
    capacity_mode: Literal["serverless", "autoscale"]
    autoscale_max_throughput: int | None
    backup_tier: Literal["Continuous7Days", "Continuous30Days"]
    zone_redundant: bool

    @field_validator("autoscale_max_throughput")
    @classmethod
    def _throughput_step(cls, value: int | None) -> int | None:
        low, high = AUTOSCALE_RANGE
        if value is not None and (not low <= value <= high or value % AUTOSCALE_STEP):
            raise ValueError(f"{value} is not allowed (allowed: a multiple of {AUTOSCALE_STEP} from {low} to {high})")
        return value

    @model_validator(mode="after")
    def _throughput_matches_mode(self) -> CosmosSettings:
        if self.capacity_mode == "autoscale" and self.autoscale_max_throughput is None:
            raise ValueError("autoscaleMaxThroughput: required when capacityMode is autoscale (e.g. 1000)")
        if self.capacity_mode == "serverless" and self.autoscale_max_throughput is not None:
            raise ValueError("autoscaleMaxThroughput: must be null when capacityMode is serverless (no fixed RU/s)")
        return self


class KeyVaultSettings(_Settings):
    soft_delete_retention_days: Annotated[int, Field(ge=7, le=90)]
    # Entra object ids (users, groups, service principals) that may write the vault's secrets (Key Vault Secrets
    # Officer on this vault). The vault uses Azure RBAC: without such a grant nobody, the deployer included, can.
    secret_officers: list[Annotated[str, Field(pattern=GUID_PATTERN)]]


class NetworkSettings(_Settings):
    """Used only when `private` is true: VNet integration and private endpoints (the prod shape)."""

    private: bool
    address_space: str
    function_subnet: str
    private_endpoint_subnet: str
    # Public IPs (or ranges) of the machines that run `pulumi up` for a private stack. Empty: the deployment account
    # accepts any network (Entra ID is still required to write); listed: only these and the function subnet.
    deployer_ip_ranges: list[str]

    @field_validator("deployer_ip_ranges")
    @classmethod
    def _public_ranges(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                network = ipaddress.IPv4Network(value)
            except ValueError:
                raise ValueError(f"{value!r} is not allowed (allowed: a public IPv4 address, e.g. what "
                                 "`curl https://api.ipify.org` prints, or a range up to /30)") from None
            if not network.is_global:
                raise ValueError(f"{value!r} is not allowed (allowed: public addresses only; the storage firewall "
                                 "ignores private ones)")
            # Azure Storage IP rules take single addresses and ranges up to /30; /31 and /32 are refused.
            if "/" in value and network.prefixlen > 30:
                raise ValueError(f"{value!r} is not allowed (allowed: a range up to /30, or a single address "
                                 "without a prefix)")
        return values

    @field_validator("address_space", "function_subnet", "private_endpoint_subnet")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError as error:
            raise ValueError(f"{value!r} is not allowed (allowed: an IPv4 network such as 10.20.0.0/24; {error})") \
                from None
        if not 16 <= network.prefixlen <= 28:
            raise ValueError(f"{value!r} is not allowed (allowed: a prefix from /16 to /28)")
        return value

    @model_validator(mode="after")
    def _subnets_fit(self) -> NetworkSettings:
        space = ipaddress.IPv4Network(self.address_space)
        function = ipaddress.IPv4Network(self.function_subnet)
        endpoints = ipaddress.IPv4Network(self.private_endpoint_subnet)
        for key, subnet in (("functionSubnet", function), ("privateEndpointSubnet", endpoints)):
            if not subnet.subnet_of(space):
                raise ValueError(f"{key}: {subnet} is not inside addressSpace {space}")
        if function.overlaps(endpoints):
            raise ValueError(f"functionSubnet {function} overlaps privateEndpointSubnet {endpoints}")
        if self.deployer_ip_ranges and not self.private:
            raise ValueError("deployerIpRanges: only used when private is true (then the deployment account is "
                             "firewalled); leave it [] here")
        return self


class AuthenticationSettings(_Settings):
    """Who signs users in: the Entra ID (External ID) app registration whose access tokens the API accepts.

    App Service authentication validates them in front of the app, and the app verifies them again itself
    (babybloom_app/tokens.py): signature against the tenant's keys, issuer, audience, expiry.
    """

    issuer: Annotated[str, Field(pattern=r"^https://[^\s/]+/\S+$")]
    client_id: Annotated[str, Field(pattern=GUID_PATTERN)]


class AppSettings(_Settings):
    """Everything under the `babybloom:` namespace of a stack file."""

    tags: dict[str, str]
    monitoring: MonitoringSettings
    storage: StorageSettings
    functions: FunctionSettings
    cosmos: CosmosSettings
    key_vault: KeyVaultSettings
    network: NetworkSettings
    authentication: AuthenticationSettings


class ProviderSettings(_Settings):
    # The azure-native provider reads more keys of its namespace (subscriptionId, ...); they are not ours to judge.
    model_config = ConfigDict(extra="ignore")

    location: Annotated[str, Field(pattern=r"^[a-z]+[a-z0-9]*$")]


class StackSettings(_Settings):
    """A validated stack: its name, the Azure region and the app settings."""

    stack: str
    provider: ProviderSettings = Field(alias="azure-native")
    app: AppSettings = Field(alias=PROJECT)

    @property
    def location(self) -> str:
        return self.provider.location

    def name(self, kind: str) -> str:
        """Resource name in the Cloud Adoption Framework style, e.g. rg-babybloom-dev."""
        return f"{kind}-{PROJECT}-{self.stack}"

    @property
    def tags(self) -> dict[str, str]:
        return {"app": PROJECT, "environment": self.stack, **self.app.tags}


def stack_file(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def available_stacks(project_dir: Path = PROJECT_DIR) -> list[str]:
    return sorted(path.name.removeprefix("Pulumi.").removesuffix(".yaml") for path in project_dir.glob("Pulumi.*.yaml"))


def read_stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """Pulumi.<stack>.yaml's `config:` as the engine hands it to a program: key -> string, structures as JSON."""
    path = project_dir / stack_file(stack)
    if not re.fullmatch(STACK_NAME_PATTERN, stack) or not path.is_file():
        known = ", ".join(available_stacks(project_dir)) or "none"
        raise ConfigError(f"unknown stack {stack!r}: there is no {stack_file(stack)} (available: {known})")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{stack_file(stack)}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(f"{stack_file(stack)}: config: missing (required: a mapping of {PROJECT}:* settings)")
    return {str(key): _engine_string(value) for key, value in config.items()}


def settings_from_config(stack: str, config: Mapping[str, str]) -> StackSettings:
    """Validate the runtime config of `stack` (namespaced keys -> engine strings) into StackSettings."""
    shown = stack_file(stack)
    if not re.fullmatch(STACK_NAME_PATTERN, stack):
        raise ConfigError(f"stack name {stack!r} is not allowed (allowed: {STACK_NAME_PATTERN}, e.g. dev, prod)")
    namespaces: dict[str, dict[str, Any]] = {PROJECT: {}, "azure-native": {}}
    for key, raw in config.items():
        namespace, _, name = key.partition(":")
        if namespace in namespaces:
            namespaces[namespace][name] = _decode(raw)
    try:
        return StackSettings.model_validate({"stack": stack, **namespaces})
    except ValidationError as error:
        raise ConfigError("\n".join(_describe(shown, detail) for detail in error.errors())) from None


def _engine_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)  # what `pulumi config set --path` stores: true, 30, {"a": 1}


def _decode(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def _describe(shown: str, detail: ErrorDetails) -> str:
    loc = [str(part) for part in detail["loc"]]
    key = f"{loc[0]}:{'.'.join(loc[1:])}" if len(loc) > 1 else (loc[0] if loc else "(top level)")
    kind, value, ctx = detail["type"], detail.get("input"), detail.get("ctx", {})
    field = _field_at(loc)
    if kind == "extra_forbidden":
        return f"{shown}: {key}: unknown key (allowed here: {', '.join(_keys_at(loc[:-1]))})"
    if kind == "missing":
        allowed = _allowed(field)
        return f"{shown}: {key}: missing (required{'; allowed: ' + allowed if allowed else ''})"
    if kind in {"literal_error", "greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        return f"{shown}: {key}: {value!r} is not allowed (allowed: {_allowed(field) or _range(ctx)})"
    if kind == "string_pattern_mismatch":
        field = next((str(part) for part in reversed(detail["loc"]) if isinstance(part, str)), "")
        return f"{shown}: {key}: {value!r} is not allowed (allowed: {_PATTERN_HINTS.get(field, 'see Pulumi.dev.yaml')})"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        expected = kind.removesuffix("_type").removesuffix("_parsing").replace("model", "mapping")
        return f"{shown}: {key}: expected {expected.replace('dict', 'mapping')}, got {type(value).__name__} {value!r}"
    return f"{shown}: {key}: {detail['msg'].removeprefix('Value error, ')}"


def _model_field(model: Any, part: str) -> Any:
    for name, info in getattr(model, "model_fields", {}).items():
        if part in {name, info.alias}:
            return info
    return None


def _field_at(loc: list[str]) -> Any:
    model: Any = StackSettings
    info = None
    for part in loc:
        info = _model_field(model, part)
        if info is None:
            return None
        model = info.annotation
    return info


def _keys_at(loc: list[str]) -> list[str]:
    info = _field_at(loc)
    model: Any = info.annotation if info is not None else StackSettings
    return [field.alias or name for name, field in model.model_fields.items()]


def _allowed(field: Any) -> str:
    """What a field accepts, read from its own annotation so the message never drifts from the model."""
    if field is None:
        return ""
    annotation = field.annotation
    choices = getattr(annotation, "__args__", ())
    if getattr(annotation, "__origin__", None) is Literal:
        return ", ".join(str(choice) for choice in choices)
    if annotation is bool:
        return "true, false"
    if type(None) in choices:
        return "a number or null" if int in choices or float in choices else "a value or null"
    return _range({name: getattr(meta, name) for meta in field.metadata for name in ("ge", "gt", "le")
                   if hasattr(meta, name)})


def _range(bounds: Mapping[str, Any]) -> str:
    parts = [f"{'at least' if name == 'ge' else 'more than' if name == 'gt' else 'at most'} {limit}"
             for name, limit in bounds.items() if name in {"ge", "gt", "le"}]
    return " and ".join(parts)
