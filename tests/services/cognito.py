"""The Selfnest user pool as built in moto from the identity template, for the booking API's tests.

moto's Cognito runs no Lambda triggers, and this harness plays none: people are made the way an admin would make
them (AdminCreateUser with the attributes a sign-up leaves, group membership as an admission), then sign in through
the mobile client. The triggers themselves are tested where the emulator runs them from their deployed assets
(tests/services/selfnest_identity, on the run's local deployment).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jwt
from moto.cognitoidp.exceptions import NotAuthorizedError
from moto.cognitoidp.models import CognitoIdpBackend
from refarch.constructs.aws.identity import ADMINS_GROUP, CLIENTS_GROUP, THERAPISTS_GROUP

from .aws_template import MotoStack

PASSWORD = "Calm-Harbour-Morning-42"   # meets the strongest configured policy (14+, all classes)


@dataclass(frozen=True)
class Tokens:
    username: str
    sub: str
    access_token: str
    id_token: str


class Identity:
    """People in the template-built pool, and their sign-in (the `identity` fixture of the API tests)."""

    def __init__(self, stack: MotoStack) -> None:
        self.stack = stack
        self.cognito = stack.client("cognito-idp")
        pool_id, _ = stack.only("AWS::Cognito::UserPool")
        self.pool_id = stack.ref(pool_id)
        self.region = stack.region
        self.issuer = f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"
        self.jwks_url = f"{stack.endpoint}/{self.pool_id}/.well-known/jwks.json"
        clients = {logical_id: resource["Properties"]
                   for logical_id, resource in stack.resources("AWS::Cognito::UserPoolClient").items()}
        self.api_client_ids = [stack.ref(logical_id) for logical_id in clients]
        public = [logical_id for logical_id, properties in clients.items() if not properties["GenerateSecret"]]
        assert len(public) == 1, f"expected one public (mobile) client, found {public}"
        self.mobile_client_id = stack.ref(public[0])
        self.mobile_auth_flows: list[str] = clients[public[0]]["ExplicitAuthFlows"]

    # -- what a person ends up as (made administratively: no trigger runs here) -----------------------------------
    def create(self, username: str, attributes: dict[str, str], *, groups: tuple[str, ...] = ()) -> None:
        self.cognito.admin_create_user(UserPoolId=self.pool_id, Username=username, MessageAction="SUPPRESS",
                                       UserAttributes=[{"Name": name, "Value": value}
                                                       for name, value in attributes.items()])
        self.cognito.admin_set_user_password(UserPoolId=self.pool_id, Username=username, Password=PASSWORD,
                                             Permanent=True)
        for group in groups:
            self.admit(username, group)

    def sign_in(self, username: str) -> Tokens:
        """Secure Remote Password sign-in through the mobile client (moto does not check the SRP proof)."""
        assert "ALLOW_USER_SRP_AUTH" in self.mobile_auth_flows
        challenge = self.cognito.initiate_auth(ClientId=self.mobile_client_id, AuthFlow="USER_SRP_AUTH",
                                               AuthParameters={"USERNAME": username, "SRP_A": uuid.uuid4().hex})
        answer = self.cognito.respond_to_auth_challenge(
            ClientId=self.mobile_client_id, ChallengeName="PASSWORD_VERIFIER", Session=challenge["Session"],
            ChallengeResponses={"USERNAME": username, "PASSWORD_CLAIM_SIGNATURE": uuid.uuid4().hex,
                                "PASSWORD_CLAIM_SECRET_BLOCK": challenge["Session"],
                                "TIMESTAMP": "Mon Nov 24 09:00:00 UTC 2026"})
        if answer.get("ChallengeName") == "SOFTWARE_TOKEN_MFA":   # the authenticator's code (moto takes any)
            answer = self.cognito.respond_to_auth_challenge(
                ClientId=self.mobile_client_id, ChallengeName="SOFTWARE_TOKEN_MFA", Session=answer["Session"],
                ChallengeResponses={"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": "123456"})
        result = answer["AuthenticationResult"]
        return Tokens(username=username, sub=self.user(username)["sub"], access_token=result["AccessToken"],
                      id_token=result["IdToken"])

    def enable_totp(self, username: str) -> None:
        """The person pairs an authenticator app and makes it their MFA (moto accepts any 6-digit code)."""
        access_token = self.sign_in(username).access_token
        self.cognito.associate_software_token(AccessToken=access_token)
        self.cognito.verify_software_token(AccessToken=access_token, UserCode="123456")
        self.cognito.admin_set_user_mfa_preference(
            UserPoolId=self.pool_id, Username=username,
            SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})

    # -- what an admin does ----------------------------------------------------------------------------------------
    def admit(self, username: str, group: str) -> None:
        self.cognito.admin_add_user_to_group(UserPoolId=self.pool_id, Username=username, GroupName=group)

    # -- shortcuts the API tests use -------------------------------------------------------------------------------
    def client(self, pseudonym: str) -> Tokens:
        """A client as sign-up leaves one: a pseudonym, confirmed, in the clients group."""
        self.create(pseudonym, {"custom:account_type": "client"}, groups=(CLIENTS_GROUP,))
        return self.sign_in(pseudonym)

    def therapist(self, username: str, *, approved: bool = True, mfa: bool = True) -> Tokens:
        """A therapist who verified their email and (unless `mfa` is False) paired an authenticator before an admin
        admitted them — the admission procedure docs/security.md describes."""
        self.create(username, {"custom:account_type": "therapist", "email": f"{username}@practice.example",
                               "email_verified": "true"})
        if mfa:
            self.enable_totp(username)
        if approved:
            self.admit(username, THERAPISTS_GROUP)
        return self.sign_in(username)

    def admin(self, username: str) -> Tokens:
        self.create(username, {"custom:account_type": "therapist", "email": f"{username}@selfnest.example",
                               "email_verified": "true"}, groups=(ADMINS_GROUP,))
        return self.sign_in(username)

    def user(self, username: str) -> dict[str, Any]:
        found = self.cognito.admin_get_user(UserPoolId=self.pool_id, Username=username)
        attributes = {item["Name"]: item["Value"] for item in found["UserAttributes"]}
        return {**attributes, "status": found["UserStatus"], "mfa": found.get("UserMFASettingList", [])}

    def groups_of(self, username: str) -> list[str]:
        listed = self.cognito.admin_list_groups_for_user(UserPoolId=self.pool_id, Username=username)
        return sorted(group["GroupName"] for group in listed["Groups"])


@contextmanager
def applying_client_write_attributes() -> Iterator[None]:
    """moto lets UpdateUserAttributes write any attribute; Cognito refuses an attribute outside the calling app
    client's WriteAttributes with NotAuthorizedException ("A client attempted to write unauthorized attribute").
    While active, moto answers the same, from the WriteAttributes the template gave the client."""
    update = CognitoIdpBackend.update_user_attributes

    def update_writable_only(self: CognitoIdpBackend, access_token: str,
                             attributes: list[dict[str, str]]) -> None:
        client_id = str(jwt.decode(access_token, options={"verify_signature": False}).get("client_id"))
        for pool in self.user_pools.values():
            client = pool.clients.get(client_id)
            writable = client.extended_config.get("WriteAttributes") if client is not None else None
            if writable and any(attribute["Name"] not in writable for attribute in attributes):
                raise NotAuthorizedError("A client attempted to write unauthorized attribute")
        update(self, access_token, attributes)

    CognitoIdpBackend.update_user_attributes = update_writable_only  # type: ignore[method-assign]
    try:
        yield
    finally:
        CognitoIdpBackend.update_user_attributes = update  # type: ignore[method-assign]
