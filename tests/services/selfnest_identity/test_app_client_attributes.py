"""What app clients may write, against the pool moto builds from the identity template: MiniStack, the run's local
deployment (test_sign_up.py), does not check UpdateUserAttributes against the client's WriteAttributes; moto does,
while `applying_client_write_attributes` is on (the `identity` fixture)."""

from __future__ import annotations

import pytest

from tests.services.cognito import Identity

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
    token = identity.client(username).access_token
    with pytest.raises(identity.cognito.exceptions.NotAuthorizedException, match="unauthorized attribute"):
        identity.cognito.update_user_attributes(AccessToken=token, UserAttributes=[
            {"Name": attribute, "Value": SAMPLE_VALUES.get(attribute, "Jane Example")}])
    assert attribute not in identity.user(username)


def test_the_account_type_cannot_be_rewritten_after_sign_up(identity: Identity) -> None:
    token = identity.client("wants-to-be-a-therapist").access_token
    with pytest.raises(identity.cognito.exceptions.NotAuthorizedException):
        identity.cognito.update_user_attributes(AccessToken=token, UserAttributes=[
            {"Name": "custom:account_type", "Value": "therapist"}])


def test_what_app_clients_may_write_is_still_writable(identity: Identity) -> None:
    # Guards the refusals above: the same call with an allowed attribute goes through.
    token = identity.client("picks-a-language").access_token
    for attribute in writable_by_app_clients(identity):
        identity.cognito.update_user_attributes(AccessToken=token, UserAttributes=[
            {"Name": attribute, "Value": SAMPLE_VALUES[attribute]}])
        assert identity.user("picks-a-language")[attribute] == SAMPLE_VALUES[attribute]
