"""The Selfnest user pool as built from the identity template, with its Lambda triggers run the way Cognito runs them.

moto's Cognito does not invoke Lambda triggers, so this harness calls the synthesized trigger handlers at the points
Cognito would (before sign-up, after confirmation) with the event shapes Cognito sends. Everything else — the pool,
its password policy, groups, app clients and the tokens — is moto's, created from the template.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from moto.cognitoidp.exceptions import NotAuthorizedError
from moto.cognitoidp.models import CognitoIdpBackend
from refarch.constructs.aws.identity import ADMINS_GROUP, THERAPISTS_GROUP

from tests.infra.aws.assembly import pool_triggers

from .aws_template import MotoStack
from .lambda_runtime import DeployedFunction, load_function

PASSWORD = "Calm-Harbour-Morning-42"   # meets the strongest configured policy (14+, all classes)


@dataclass(frozen=True)
class Tokens:
    username: str
    sub: str
    access_token: str
    id_token: str


class SignUpRefusedError(Exception):
    """What Cognito answers when the pre-sign-up trigger raises (UserLambdaValidationException)."""


class Identity:
    """Sign-up, confirmation and sign-in against the template-built pool (the `identity` fixture)."""

    def __init__(self, stack: MotoStack, *, outdir: Path) -> None:
        self.stack = stack
        self.cognito = stack.client("cognito-idp")
        pool_id, pool = stack.only("AWS::Cognito::UserPool")
        self.pool_id = stack.ref(pool_id)
        self.region = stack.region
        self.issuer = f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"
        self.jwks_url = f"{stack.endpoint}/{self.pool_id}/.well-known/jwks.json"
        self.triggers: dict[str, DeployedFunction] = {
            trigger: load_function(stack, outdir=outdir, logical_id=function_id)
            for trigger, (function_id, _) in pool_triggers(pool["Properties"]["LambdaConfig"]).items()}
        clients = {logical_id: resource["Properties"]
                   for logical_id, resource in stack.resources("AWS::Cognito::UserPoolClient").items()}
        self.api_client_ids = [stack.ref(logical_id) for logical_id in clients]
        public = [logical_id for logical_id, properties in clients.items() if not properties["GenerateSecret"]]
        assert len(public) == 1, f"expected one public (mobile) client, found {public}"
        self.mobile_client_id = stack.ref(public[0])
        self.mobile_auth_flows: list[str] = clients[public[0]]["ExplicitAuthFlows"]

    # -- what a person does in the app -----------------------------------------------------------------------------
    def sign_up(self, username: str, attributes: dict[str, str]) -> dict[str, Any]:
        """Cognito's SignUp: pre-sign-up trigger, create, auto-confirm if the trigger says so, post-confirmation."""
        event = self._event("PreSignUp_SignUp", username, attributes,
                            response={"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False})
        try:
            event = self.triggers["PreSignUp"](event)
        except Exception as error:  # Cognito turns any trigger exception into a refusal carrying its message
            raise SignUpRefusedError(f"PreSignUp failed with error {error}") from error
        self.cognito.sign_up(ClientId=self.mobile_client_id, Username=username, Password=PASSWORD,
                             UserAttributes=[{"Name": name, "Value": value} for name, value in attributes.items()])
        if event["response"]["autoConfirmUser"]:
            self.cognito.admin_confirm_sign_up(UserPoolId=self.pool_id, Username=username)
            self._after_confirmation(username)
        return self.user(username)

    def confirm_email(self, username: str) -> None:
        """The person types the code Cognito emailed: the account is confirmed and the email counts as verified."""
        self.cognito.confirm_sign_up(ClientId=self.mobile_client_id, Username=username, ConfirmationCode="123456")
        self.cognito.admin_update_user_attributes(UserPoolId=self.pool_id, Username=username,
                                                  UserAttributes=[{"Name": "email_verified", "Value": "true"}])
        self._after_confirmation(username)

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
        self.sign_up(pseudonym, {"custom:account_type": "client"})
        return self.sign_in(pseudonym)

    def therapist(self, username: str, *, approved: bool = True, mfa: bool = True) -> Tokens:
        """A therapist who verified their email and (unless `mfa` is False) paired an authenticator before an admin
        admitted them — the admission procedure docs/security.md describes."""
        self.sign_up(username, {"custom:account_type": "therapist", "email": f"{username}@practice.example"})
        self.confirm_email(username)
        if mfa:
            self.enable_totp(username)
        if approved:
            self.admit(username, THERAPISTS_GROUP)
        return self.sign_in(username)

    def admin(self, username: str) -> Tokens:
        self.sign_up(username, {"custom:account_type": "therapist", "email": f"{username}@selfnest.example"})
        self.confirm_email(username)
        self.admit(username, ADMINS_GROUP)
        return self.sign_in(username)

    def user(self, username: str) -> dict[str, Any]:
        found = self.cognito.admin_get_user(UserPoolId=self.pool_id, Username=username)
        attributes = {item["Name"]: item["Value"] for item in found["UserAttributes"]}
        return {**attributes, "status": found["UserStatus"], "mfa": found.get("UserMFASettingList", [])}

    def groups_of(self, username: str) -> list[str]:
        listed = self.cognito.admin_list_groups_for_user(UserPoolId=self.pool_id, Username=username)
        return sorted(group["GroupName"] for group in listed["Groups"])

    def _after_confirmation(self, username: str) -> None:
        user = self.user(username)
        self.triggers["PostConfirmation"](self._event(
            "PostConfirmation_ConfirmSignUp", username,
            {name: value for name, value in user.items() if name not in ("status", "mfa")}, response={}))

    def _event(self, source: str, username: str, attributes: dict[str, str], *,
               response: dict[str, Any], version: str = "1") -> dict[str, Any]:
        return {"version": version, "triggerSource": source, "region": self.region, "userPoolId": self.pool_id,
                "userName": username, "callerContext": {"awsSdkVersion": "test", "clientId": self.mobile_client_id},
                "request": {"userAttributes": dict(attributes)}, "response": response}

    def token_event(self, username: str) -> dict[str, Any]:
        """The version-2 pre-token-generation event Cognito sends when it issues tokens to `username` (the pool
        configures the trigger as V2_0; shape from the Cognito developer guide's pre token generation page)."""
        user = self.user(username)
        event = self._event("TokenGeneration_Authentication", username,
                            {name: value for name, value in user.items() if name not in ("status", "mfa")},
                            response={"claimsAndScopeOverrideDetails": None}, version="2")
        event["request"]["groupConfiguration"] = {"groupsToOverride": self.groups_of(username),
                                                  "iamRolesToOverride": [], "preferredRole": None}
        return event


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
