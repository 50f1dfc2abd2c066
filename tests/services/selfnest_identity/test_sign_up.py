"""Accounts against the pool built from the identity template, with the synthesized Cognito triggers."""

from __future__ import annotations

import jwt
import pytest
from refarch.constructs.aws.identity import CLIENTS_GROUP, THERAPISTS_GROUP

from tests.services.cognito import Identity, SignUpRefusedError


def claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def test_client_signs_up_with_a_pseudonym_only_and_gets_tokens_carrying_clients(identity: Identity) -> None:
    user = identity.sign_up("quiet-otter", {"custom:account_type": "client"})

    assert user["status"] == "CONFIRMED"              # no code to type: there is nowhere to send one
    assert "email" not in user and "phone_number" not in user
    tokens = identity.sign_in("quiet-otter")
    for token in (tokens.access_token, tokens.id_token):
        assert claims(token)["cognito:groups"] == [CLIENTS_GROUP]
    assert claims(tokens.access_token)["token_use"] == "access"
    assert claims(tokens.id_token).get("email") is None


@pytest.mark.parametrize("identifying", [{"email": "me@example.com"}, {"phone_number": "+447700900123"}])
def test_client_sign_up_with_contact_details_is_refused_and_creates_nothing(
        identity: Identity, identifying: dict[str, str]) -> None:
    username = f"curious-heron-{next(iter(identifying))}"
    with pytest.raises(SignUpRefusedError, match=f"client accounts are anonymous: leave out {next(iter(identifying))}"):
        identity.sign_up(username, {"custom:account_type": "client", **identifying})

    assert username not in [user["Username"] for user in
                            identity.cognito.list_users(UserPoolId=identity.pool_id)["Users"]]


def test_sign_up_without_an_account_type_is_refused_with_the_allowed_values(identity: Identity) -> None:
    with pytest.raises(SignUpRefusedError, match="custom:account_type must be 'client' or 'therapist'"):
        identity.sign_up("no-type", {})


def test_therapist_needs_an_email(identity: Identity) -> None:
    with pytest.raises(SignUpRefusedError, match="therapist accounts need an email address"):
        identity.sign_up("dr-no-email", {"custom:account_type": "therapist"})


def test_therapist_is_not_one_until_an_admin_admits_them(identity: Identity) -> None:
    user = identity.sign_up("dr-ada", {"custom:account_type": "therapist", "email": "ada@practice.example"})
    assert user["status"] == "UNCONFIRMED"            # the email must be verified first
    identity.confirm_email("dr-ada")

    before = identity.sign_in("dr-ada")
    assert "cognito:groups" not in claims(before.access_token)   # neither client nor therapist
    assert identity.groups_of("dr-ada") == []

    identity.admit("dr-ada", THERAPISTS_GROUP)
    after = identity.sign_in("dr-ada")
    assert claims(after.access_token)["cognito:groups"] == [THERAPISTS_GROUP]


def test_therapist_rights_are_withheld_from_tokens_without_mfa_and_restored_only_by_a_new_admission(
        identity: Identity) -> None:
    identity.therapist("dr-bo", mfa=False)          # admitted before pairing an authenticator: out of order
    pre_token = identity.triggers["PreTokenGeneration"]

    without_mfa = pre_token(identity.token_event("dr-bo"))
    # The version-2 response: Cognito applies its group override to the ID and the access token alike.
    override = without_mfa["response"]["claimsAndScopeOverrideDetails"]["groupOverrideDetails"]["groupsToOverride"]
    assert THERAPISTS_GROUP not in override
    assert identity.groups_of("dr-bo") == []        # the admission ended with it

    identity.enable_totp("dr-bo")                   # pairing alone proves nothing about who paired
    paired = pre_token(identity.token_event("dr-bo"))
    assert THERAPISTS_GROUP not in paired["request"]["groupConfiguration"]["groupsToOverride"]

    identity.admit("dr-bo", THERAPISTS_GROUP)       # the admin saw this authenticator work: admitted again
    with_mfa = pre_token(identity.token_event("dr-bo"))
    assert with_mfa["response"]["claimsAndScopeOverrideDetails"] is None   # groups untouched: therapist


def test_an_authenticator_paired_after_an_mfa_reset_does_not_inherit_the_admission(identity: Identity) -> None:
    # The threat: MFA is reset (lost phone) or turned off while the therapist stays admitted; someone holding the
    # password signs in without a second factor and pairs their own authenticator before the therapist does.
    identity.therapist("dr-eve-target")
    pre_token = identity.triggers["PreTokenGeneration"]
    assert pre_token(identity.token_event("dr-eve-target"))["response"]["claimsAndScopeOverrideDetails"] is None
    identity.cognito.admin_set_user_mfa_preference(UserPoolId=identity.pool_id, Username="dr-eve-target",
                                                   SoftwareTokenMfaSettings={"Enabled": False, "PreferredMfa": False})

    intruder_sign_in = pre_token(identity.token_event("dr-eve-target"))   # password only: no second factor asked
    assert intruder_sign_in["response"]["claimsAndScopeOverrideDetails"]["groupOverrideDetails"][
        "groupsToOverride"] == []
    identity.enable_totp("dr-eve-target")                                 # the intruder's authenticator
    intruder_paired = pre_token(identity.token_event("dr-eve-target"))
    assert THERAPISTS_GROUP not in intruder_paired["request"]["groupConfiguration"]["groupsToOverride"]
    assert identity.groups_of("dr-eve-target") == []


def test_therapist_rights_need_a_verified_email_too(identity: Identity) -> None:
    identity.therapist("dr-cy")
    identity.cognito.admin_update_user_attributes(
        UserPoolId=identity.pool_id, Username="dr-cy", UserAttributes=[{"Name": "email_verified", "Value": "false"}])

    event = identity.triggers["PreTokenGeneration"](identity.token_event("dr-cy"))
    assert THERAPISTS_GROUP not in event["response"]["claimsAndScopeOverrideDetails"]["groupOverrideDetails"][
        "groupsToOverride"]
    assert "claimsOverrideDetails" not in event["response"]     # the version-1 field would spare the access token
    assert identity.groups_of("dr-cy") == [THERAPISTS_GROUP]   # withheld only: MFA alone vouches for admission


@pytest.mark.parametrize("source", ["TokenGeneration_RefreshTokens", "TokenGeneration_HostedAuth"])
def test_every_kind_of_token_issue_rechecks_therapist_rights(identity: Identity, source: str) -> None:
    # Refreshing does not carry rights over: an MFA removed since sign-in withholds them from the new tokens.
    username = f"dr-refresh-{source.rsplit('_', 1)[1].lower()}"
    identity.therapist(username, mfa=False)
    event = {**identity.token_event(username), "triggerSource": source}
    answered = identity.triggers["PreTokenGeneration"](event)
    assert answered["response"]["claimsAndScopeOverrideDetails"]["groupOverrideDetails"]["groupsToOverride"] == []


def test_a_version_1_event_is_refused_rather_than_shaping_the_id_token_only(identity: Identity) -> None:
    identity.therapist("dr-v1")
    event = {**identity.token_event("dr-v1"), "version": "1", "response": {"claimsOverrideDetails": None}}
    with pytest.raises(RuntimeError, match="expects the version 2 event"):
        identity.triggers["PreTokenGeneration"](event)


def test_pool_enforces_the_templates_password_policy(identity: Identity) -> None:
    with pytest.raises(identity.cognito.exceptions.InvalidPasswordException):
        identity.cognito.sign_up(ClientId=identity.mobile_client_id, Username="weak-pass", Password="short1!A")


# Cognito's standard attributes (https://docs.aws.amazon.com/cognito/latest/developerguide/user-pool-settings-attributes.html)
STANDARD_ATTRIBUTES = ("address", "birthdate", "email", "family_name", "gender", "given_name", "locale", "middle_name",
                       "name", "nickname", "phone_number", "picture", "preferred_username", "profile", "website",
                       "zoneinfo")
SAMPLE_VALUES = {"birthdate": "1990-01-01", "email": "found-me@example.com", "phone_number": "+447700900123",
                 "locale": "de"}


def writable_by_app_clients(identity: Identity) -> list[str]:
    written = {tuple(client["Properties"]["WriteAttributes"])
               for client in identity.stack.resources("AWS::Cognito::UserPoolClient").values()}
    [attributes] = written
    return list(attributes)


@pytest.mark.parametrize("attribute", [name for name in STANDARD_ATTRIBUTES if name != "locale"])
def test_a_signed_in_client_cannot_add_identifying_attributes(identity: Identity, attribute: str) -> None:
    assert attribute not in writable_by_app_clients(identity)
    username = f"still-anonymous-{attribute.replace('_', '-')}"
    identity.sign_up(username, {"custom:account_type": "client"})
    token = identity.sign_in(username).access_token
    with pytest.raises(identity.cognito.exceptions.NotAuthorizedException, match="unauthorized attribute"):
        identity.cognito.update_user_attributes(AccessToken=token, UserAttributes=[
            {"Name": attribute, "Value": SAMPLE_VALUES.get(attribute, "Jane Example")}])
    assert attribute not in identity.user(username)


def test_the_account_type_cannot_be_rewritten_after_sign_up(identity: Identity) -> None:
    identity.sign_up("wants-to-be-a-therapist", {"custom:account_type": "client"})
    token = identity.sign_in("wants-to-be-a-therapist").access_token
    with pytest.raises(identity.cognito.exceptions.NotAuthorizedException):
        identity.cognito.update_user_attributes(AccessToken=token, UserAttributes=[
            {"Name": "custom:account_type", "Value": "therapist"}])


def test_what_app_clients_may_write_is_still_writable(identity: Identity) -> None:
    # Guards the refusals above: the same call with an allowed attribute goes through.
    identity.sign_up("picks-a-language", {"custom:account_type": "client"})
    token = identity.sign_in("picks-a-language").access_token
    for attribute in writable_by_app_clients(identity):
        identity.cognito.update_user_attributes(AccessToken=token, UserAttributes=[
            {"Name": attribute, "Value": SAMPLE_VALUES[attribute]}])
        assert identity.user("picks-a-language")[attribute] == SAMPLE_VALUES[attribute]
