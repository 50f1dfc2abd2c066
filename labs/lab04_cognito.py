"""Lab 04 — Cognito groups and MFA: prod requires TOTP of everyone and keeps access tokens short."""

from __future__ import annotations

from pathlib import Path

from refarch.constructs.aws.identity import GROUP_PRECEDENCE
from refarch.stacks.selfnest.config import load_settings
from refarch.stacks.selfnest.identity import IdentityStack

from .grading import Check, check, resources, synth_stack

MAX_ACCESS_TOKEN_MINUTES = 15


def grade(root: Path) -> list[Check]:
    settings = load_settings("prod", root / "config")
    template = synth_stack(settings, IdentityStack, "identity")
    pools = [resource["Properties"] for resource in resources(template, "AWS::Cognito::UserPool").values()]
    pool = pools[0] if len(pools) == 1 else {}
    clients = [resource["Properties"] for resource in resources(template, "AWS::Cognito::UserPoolClient").values()]
    groups = {resource["Properties"]["GroupName"]: resource["Properties"]["Precedence"]
              for resource in resources(template, "AWS::Cognito::UserPoolGroup").values()}
    return [
        check("prod requires MFA of every user", pool.get("MfaConfiguration") == "ON",
              "set identity.mfa: required in config/prod.yaml (CloudFormation MfaConfiguration ON). OPTIONAL lets "
              "each user choose; the pre-token trigger still guards therapists either way.",
              found=f"MfaConfiguration {pool.get('MfaConfiguration', 'OFF')}"),
        check("the second factor is an authenticator app (TOTP), never SMS",
              pool.get("EnabledMfas") == ["SOFTWARE_TOKEN_MFA"],
              "anonymous clients have no phone number on file, and SMS codes can be intercepted (SIM swap).",
              found=f"EnabledMfas {pool.get('EnabledMfas')}"),
        check("groups: admins before therapists before clients",
              groups == GROUP_PRECEDENCE and groups["admins"] < groups["therapists"] < groups["clients"],
              "the lowest precedence wins the IAM role and cognito:preferred_role when a user is in several groups.",
              found=groups),
        check(f"access tokens live at most {MAX_ACCESS_TOKEN_MINUTES} minutes",
              bool(clients) and all(client.get("TokenValidityUnits", {}).get("AccessToken") == "minutes"
                                    and client.get("AccessTokenValidity", 60) <= MAX_ACCESS_TOKEN_MINUTES
                                    for client in clients),
              "an access token is not re-checked until it expires: removing a therapist from the group takes "
              "effect at the next refresh. Lower identity.access_token_minutes.",
              found=", ".join(f"{client.get('AccessTokenValidity')} "
                              f"{client.get('TokenValidityUnits', {}).get('AccessToken', 'hours')}"
                              for client in clients)),
        check("clients can still sign up with a pseudonym alone", pool.get("UsernameAttributes") is None
              and not any(attribute.get("Required") for attribute in pool.get("Schema", [])),
              "MFA must not cost anonymity: no email or phone may become required.",
              found=f"UsernameAttributes {pool.get('UsernameAttributes')}, required: "
                    f"{[a['Name'] for a in pool.get('Schema', []) if a.get('Required')]}"),
    ]

