"""People of the run's local deployment (tests/local_deployment.py), made the way the app makes them: sign-up through
the mobile client, the emailed code, SRP sign-in, an authenticator app (TOTP) — refarch.local.demo's `Scenario`,
which `make demo` drives too.

The emulator runs the pool's own triggers from their deployed assets: PreSignUp on sign-up, PreTokenGeneration on
every token issue. Nothing here plays a trigger; the one the emulator does not invoke,
PostConfirmation, is invoked in the emulator by refarch.local.cognito, as `make up`'s users get it.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import jwt
import pyotp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from refarch.constructs.aws.identity import ADMINS_GROUP, THERAPISTS_GROUP
from refarch.local.demo import Person, Scenario

from tests.local_deployment import LocalDeployment
from tests.services.tokens import forged_under

PASSWORD = "Calm-Harbour-Morning-42"   # meets the strongest configured policy (14+, all classes)


class SignUpRefusedError(Exception):
    """Cognito's answer when the pre-sign-up trigger raises: UserLambdaValidationException, carrying its message."""


class DeployedIdentity:
    def __init__(self, deployment: LocalDeployment) -> None:
        self.scenario = Scenario(deployment.endpoints, say=lambda _line: None)
        self.cognito = self.scenario.cognito
        self.pool_id = deployment.endpoints.user_pool_id
        self.mobile_client_id = deployment.endpoints.mobile_client_id
        self.region = deployment.endpoints.region
        self.jwks_url = f"{deployment.endpoints.emulator}/{self.pool_id}/.well-known/jwks.json"
        self._passwords: dict[str, str] = {}
        self._authenticators: dict[str, pyotp.TOTP] = {}

    # -- what a person does in the app -----------------------------------------------------------------------------
    def sign_up(self, username: str, attributes: dict[str, str]) -> dict[str, Any]:
        try:
            password, _ = self.scenario.sign_up(username, attributes)
        except self.cognito.exceptions.UserLambdaValidationException as refusal:
            raise SignUpRefusedError(refusal.response["Error"]["Message"]) from refusal
        self._passwords[username] = password
        return self.user(username)

    def confirm_email(self, username: str) -> None:
        self.scenario.confirm_email(username)

    def sign_in(self, username: str) -> Person:
        return self.scenario.sign_in(username, self._passwords[username],
                                     authenticator=self._authenticators.get(username))

    def enable_totp(self, username: str) -> None:
        self._authenticators[username] = self.scenario.enrol_authenticator(self.sign_in(username))

    def disable_totp(self, username: str) -> None:
        self.cognito.admin_set_user_mfa_preference(UserPoolId=self.pool_id, Username=username,
                                                   SoftwareTokenMfaSettings={"Enabled": False, "PreferredMfa": False})
        self._authenticators.pop(username, None)

    # -- what an admin does ----------------------------------------------------------------------------------------
    def admit(self, username: str, group: str) -> None:
        self.cognito.admin_add_user_to_group(UserPoolId=self.pool_id, Username=username, GroupName=group)

    # -- shortcuts -------------------------------------------------------------------------------------------------
    def client(self, pseudonym: str) -> Person:
        self.sign_up(pseudonym, {"custom:account_type": "client"})
        return self.sign_in(pseudonym)

    def therapist(self, username: str, *, approved: bool = True, mfa: bool = True) -> Person:
        """A therapist who verified their email and (unless `mfa` is False) paired an authenticator before an admin
        admitted them — the admission procedure docs/security.md describes."""
        self.sign_up(username, {"custom:account_type": "therapist", "email": f"{username}@practice.example"})
        self.confirm_email(username)
        if mfa:
            self.enable_totp(username)
        if approved:
            self.admit(username, THERAPISTS_GROUP)
        return self.sign_in(username)

    def admin(self, username: str) -> Person:
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


# -- tokens a legitimate sign-in never produces, built from the deployed pool's real ones -------------------------

def _kid(public_key: rsa.RSAPublicKey) -> str:
    """MiniStack's key id: the base64 SHA-256 of the public key's DER encoding."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _pool_key(deployment: LocalDeployment) -> rsa.RSAPrivateKey:
    """The key the deployed pool signs access tokens with (the emulator keeps it in its state folder)."""
    pem = (deployment.state / "ministack" / "cognito-pool-keys" /
           f"{deployment.endpoints.user_pool_id}-access.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def signed_with_pool_key(deployment: LocalDeployment, claims: dict[str, Any]) -> str:
    """What only Cognito could issue: signed with the deployed pool's own key."""
    key = _pool_key(deployment)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": _kid(key.public_key())})


def forged(deployment: LocalDeployment, claims: dict[str, Any]) -> str:
    return forged_under(_kid(_pool_key(deployment).public_key()), claims)
