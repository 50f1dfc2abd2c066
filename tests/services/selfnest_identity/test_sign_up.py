"""Accounts on the run's local deployment: the user pool the CDK CLI deployed into MiniStack, whose triggers the
emulator runs from their deployed assets — PreSignUp on sign-up, PreTokenGeneration on every token it issues."""

from __future__ import annotations

import json
import uuid
from typing import Any

import jwt
import pytest
from refarch.constructs.aws.identity import CLIENTS_GROUP, THERAPISTS_GROUP

from tests.local_deployment import LocalDeployment
from tests.services.local_cognito import DeployedIdentity, SignUpRefusedError


@pytest.fixture(scope="module")
def identity(local_deployment: LocalDeployment) -> DeployedIdentity:
    return DeployedIdentity(local_deployment)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def groups_in(token: str) -> list[str]:
    return list(claims(token).get("cognito:groups", []))


def test_client_signs_up_with_a_pseudonym_only_and_gets_tokens_carrying_clients(identity: DeployedIdentity) -> None:
    name = unique("quiet-otter")
    user = identity.sign_up(name, {"custom:account_type": "client"})

    assert user["status"] == "CONFIRMED"              # no code to type: there is nowhere to send one
    assert "email" not in user and "phone_number" not in user
    tokens = identity.sign_in(name)
    for token in (tokens.access_token, tokens.id_token):
        assert groups_in(token) == [CLIENTS_GROUP]
    assert claims(tokens.access_token)["token_use"] == "access"
    assert claims(tokens.id_token).get("email") is None


@pytest.mark.parametrize("identifying", [{"email": "me@example.com"}, {"phone_number": "+447700900123"}])
def test_client_sign_up_with_contact_details_is_refused_and_creates_nothing(
        identity: DeployedIdentity, identifying: dict[str, str]) -> None:
    username = unique(f"curious-heron-{next(iter(identifying))}".replace("_", "-"))
    with pytest.raises(SignUpRefusedError, match=f"client accounts are anonymous: leave out {next(iter(identifying))}"):
        identity.sign_up(username, {"custom:account_type": "client", **identifying})

    assert username not in [user["Username"] for user in
                            identity.cognito.list_users(UserPoolId=identity.pool_id)["Users"]]


def test_sign_up_without_an_account_type_is_refused_with_the_allowed_values(identity: DeployedIdentity) -> None:
    with pytest.raises(SignUpRefusedError, match="custom:account_type must be 'client' or 'therapist'"):
        identity.sign_up(unique("no-type"), {})


def test_therapist_needs_an_email(identity: DeployedIdentity) -> None:
    with pytest.raises(SignUpRefusedError, match="therapist accounts need an email address"):
        identity.sign_up(unique("dr-no-email"), {"custom:account_type": "therapist"})


def test_therapist_is_not_one_until_an_admin_admits_them(identity: DeployedIdentity) -> None:
    name = unique("dr-ada")
    user = identity.sign_up(name, {"custom:account_type": "therapist", "email": f"{name}@practice.example"})
    assert user["status"] == "UNCONFIRMED"            # the email must be verified first
    identity.confirm_email(name)
    assert identity.user(name)["email_verified"] == "true"
    identity.enable_totp(name)

    before = identity.sign_in(name)
    assert groups_in(before.access_token) == []      # neither client nor therapist
    assert identity.groups_of(name) == []

    identity.admit(name, THERAPISTS_GROUP)
    after = identity.sign_in(name)
    assert groups_in(after.access_token) == [THERAPISTS_GROUP]


# -- the deployed PreTokenGeneration function, invoked with Cognito's version-2 event ----------------------------
# MiniStack invokes the trigger on every token issue, but applies a version-2 answer's groupOverrideDetails only
# when nested under accessTokenGeneration/idTokenGeneration; AWS reads it beside them (the developer guide's pre
# token generation page; @types/aws-lambda's ClaimsAndScopeOverrideDetails). Its tokens therefore keep groups the
# trigger withheld (docs/local.md), and these tests read the deployed function's answer, under its own role with
# IAM enforced, rather than the emulator's tokens. test_sign_in_tokens_lose_withheld_rights turns green, and fails
# as an unexpected pass, the day the emulator applies it as AWS does.

def invoke_pre_token_trigger(identity: DeployedIdentity, deployment: LocalDeployment,
                             event: dict[str, Any]) -> dict[str, Any]:
    config = identity.cognito.describe_user_pool(UserPoolId=identity.pool_id)["UserPool"]["LambdaConfig"]
    answer = deployment.client("lambda").invoke(FunctionName=config["PreTokenGenerationConfig"]["LambdaArn"],
                                                Payload=json.dumps(event).encode())
    payload: dict[str, Any] = json.loads(answer["Payload"].read())
    return {"error": payload} if answer.get("FunctionError") else payload


def token_event(identity: DeployedIdentity, username: str, *, source: str, version: str = "2") -> dict[str, Any]:
    """The pre-token-generation event Cognito sends when it issues tokens to `username` (shape: the Cognito developer
    guide's pre token generation page)."""
    attributes = {name: value for name, value in identity.user(username).items() if name not in ("status", "mfa")}
    return {"version": version, "triggerSource": source, "region": identity.region, "userPoolId": identity.pool_id,
            "userName": username, "callerContext": {"awsSdkVersion": "test", "clientId": identity.mobile_client_id},
            "request": {"userAttributes": attributes,
                        "groupConfiguration": {"groupsToOverride": identity.groups_of(username),
                                               "iamRolesToOverride": [], "preferredRole": None}},
            "response": {"claimsAndScopeOverrideDetails": None}}


def withheld(answer: dict[str, Any]) -> list[str] | None:
    """The groups the trigger's answer leaves in the tokens, or None when it leaves the groups untouched."""
    override = answer["response"]["claimsAndScopeOverrideDetails"]
    return None if override is None else list(override["groupOverrideDetails"]["groupsToOverride"])


def admitted_before_mfa(identity: DeployedIdentity, name: str) -> None:
    """A therapist admitted before pairing an authenticator (out of order), not yet signed in since."""
    identity.sign_up(name, {"custom:account_type": "therapist", "email": f"{name}@practice.example"})
    identity.confirm_email(name)
    identity.admit(name, THERAPISTS_GROUP)


def test_therapist_rights_are_withheld_from_tokens_without_mfa_and_restored_only_by_a_new_admission(
        identity: DeployedIdentity, local_deployment: LocalDeployment) -> None:
    name = unique("dr-bo")
    admitted_before_mfa(identity, name)
    event = token_event(identity, name, source="TokenGeneration_Authentication")
    # The version-2 response: Cognito applies its group override to the ID and the access token alike.
    assert withheld(invoke_pre_token_trigger(identity, local_deployment, event)) == []
    assert identity.groups_of(name) == []           # the admission ended with it (under the trigger's own role)

    identity.enable_totp(name)                      # pairing alone proves nothing about who paired
    event = token_event(identity, name, source="TokenGeneration_Authentication")
    assert THERAPISTS_GROUP not in event["request"]["groupConfiguration"]["groupsToOverride"]
    assert withheld(invoke_pre_token_trigger(identity, local_deployment, event)) is None

    identity.admit(name, THERAPISTS_GROUP)          # the admin saw this authenticator work: admitted again
    event = token_event(identity, name, source="TokenGeneration_Authentication")
    assert withheld(invoke_pre_token_trigger(identity, local_deployment, event)) is None   # untouched: therapist


def test_signing_in_without_mfa_ends_the_admission(identity: DeployedIdentity) -> None:
    # The emulator runs the deployed trigger on the real sign-in: the admission is gone afterwards.
    name = unique("dr-signs-in")
    identity.therapist(name, mfa=False)
    assert identity.groups_of(name) == []


def test_an_authenticator_paired_after_an_mfa_reset_does_not_inherit_the_admission(
        identity: DeployedIdentity, local_deployment: LocalDeployment) -> None:
    # The threat: MFA is reset (lost phone) or turned off while the therapist stays admitted; someone holding the
    # password signs in without a second factor and pairs their own authenticator before the therapist does.
    name = unique("dr-eve-target")
    identity.therapist(name)
    event = token_event(identity, name, source="TokenGeneration_Authentication")
    assert withheld(invoke_pre_token_trigger(identity, local_deployment, event)) is None
    identity.disable_totp(name)

    identity.sign_in(name)                          # the intruder: password only, no second factor asked
    assert identity.groups_of(name) == []
    identity.enable_totp(name)                      # the intruder's authenticator
    event = token_event(identity, name, source="TokenGeneration_Authentication")
    assert THERAPISTS_GROUP not in event["request"]["groupConfiguration"]["groupsToOverride"]
    assert identity.groups_of(name) == []


def test_therapist_rights_need_a_verified_email_too(identity: DeployedIdentity,
                                                    local_deployment: LocalDeployment) -> None:
    name = unique("dr-cy")
    identity.therapist(name)
    identity.cognito.admin_update_user_attributes(
        UserPoolId=identity.pool_id, Username=name, UserAttributes=[{"Name": "email_verified", "Value": "false"}])

    answer = invoke_pre_token_trigger(identity, local_deployment,
                                      token_event(identity, name, source="TokenGeneration_Authentication"))
    assert withheld(answer) == []
    assert "claimsOverrideDetails" not in answer["response"]     # the version-1 field would spare the access token
    assert identity.groups_of(name) == [THERAPISTS_GROUP]   # withheld only: MFA alone vouches for admission


@pytest.mark.parametrize("source", ["TokenGeneration_RefreshTokens", "TokenGeneration_HostedAuth"])
def test_every_kind_of_token_issue_rechecks_therapist_rights(identity: DeployedIdentity,
                                                             local_deployment: LocalDeployment, source: str) -> None:
    # Refreshing does not carry rights over: an MFA removed since sign-in withholds them from the new tokens.
    name = unique(f"dr-{source.rsplit('_', 1)[1].lower()}")
    identity.therapist(name)
    identity.disable_totp(name)
    assert withheld(invoke_pre_token_trigger(identity, local_deployment,
                                             token_event(identity, name, source=source))) == []


def test_emulator_difference_sign_in_tokens_keep_a_group_the_trigger_withholds(identity: DeployedIdentity) -> None:
    """A known MiniStack difference (docs/local.md): it applies a version-2 `groupOverrideDetails` only nested under
    accessTokenGeneration/idTokenGeneration, where Cognito reads it beside them, where our trigger puts it (its answer
    is asserted by test_therapist_rights_need_a_verified_email_too). The day MiniStack follows Cognito, this fails:
    then assert the group is NOT in the tokens here and drop the line in docs/local.md."""
    # An unverified email withholds the rights without ending the admission: only the override keeps the group
    # out of these tokens.
    name = unique("dr-unverified")
    identity.therapist(name)
    identity.cognito.admin_update_user_attributes(
        UserPoolId=identity.pool_id, Username=name, UserAttributes=[{"Name": "email_verified", "Value": "false"}])
    tokens = identity.sign_in(name)
    assert identity.groups_of(name) == [THERAPISTS_GROUP]
    assert THERAPISTS_GROUP in groups_in(tokens.access_token)


def test_a_version_1_event_is_refused_rather_than_shaping_the_id_token_only(
        identity: DeployedIdentity, local_deployment: LocalDeployment) -> None:
    name = unique("dr-v1")
    identity.therapist(name)
    event = {**token_event(identity, name, source="TokenGeneration_Authentication", version="1"),
             "response": {"claimsOverrideDetails": None}}
    answered = invoke_pre_token_trigger(identity, local_deployment, event)
    assert "expects the version 2 event" in answered["error"]["errorMessage"]


def test_pool_enforces_the_templates_password_policy(identity: DeployedIdentity) -> None:
    with pytest.raises(identity.cognito.exceptions.InvalidPasswordException):
        identity.cognito.sign_up(ClientId=identity.mobile_client_id, Username=unique("weak-pass"), Password="short1!A",
                                 UserAttributes=[{"Name": "custom:account_type", "Value": "client"}])
