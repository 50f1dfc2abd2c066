"""Cognito Lambda triggers for the Selfnest user pool.

Clients stay anonymous: a client account is a pseudonym and a password. Therapists give an email Cognito verifies,
are admitted by an admin (group membership), and keep therapist rights only while the email is verified and MFA is
on; a token issued without MFA ends the admission itself. Event shapes: https://docs.aws.amazon.com/cognito/latest/developerguide/cognito-user-pools-working-with-lambda-triggers.html
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ACCOUNT_TYPE = "custom:account_type"
CLIENT, THERAPIST = "client", "therapist"
IDENTIFYING_ATTRIBUTES = ("email", "phone_number")
TOTP_MFA = "SOFTWARE_TOKEN_MFA"

logger = logging.getLogger()
logger.setLevel(logging.INFO)

Event = dict[str, Any]


class SignUpRefusedError(Exception):
    """Cognito returns the message to the app as `PreSignUp failed with error <message>`."""


class TherapistCheckUnavailableError(Exception):
    """What the app sees when Cognito's own API fails inside the trigger: Cognito shows the message to the app, and
    botocore's would name the account, the role and the pool."""


# Cognito waits 5 s for a trigger and retries it up to 3 times: a call that hangs must fail well inside that.
# https://docs.aws.amazon.com/cognito/latest/developerguide/cognito-user-identity-pools-working-with-aws-lambda-triggers.html
COGNITO_CALLS = Config(connect_timeout=1, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 2})


def pre_sign_up(event: Event, context: object) -> Event:
    attributes: dict[str, str] = event["request"].get("userAttributes", {})
    account_type = attributes.get(ACCOUNT_TYPE)
    if account_type == CLIENT:
        given = [name for name in IDENTIFYING_ATTRIBUTES if attributes.get(name)]
        if given:
            raise SignUpRefusedError(f"client accounts are anonymous: leave out {', '.join(given)} and sign up with a "
                                "pseudonym only")
        # Nothing to verify: a pseudonym has no channel a code could go to.
        event["response"]["autoConfirmUser"] = True
    elif account_type == THERAPIST:
        if not attributes.get("email"):
            raise SignUpRefusedError("therapist accounts need an email address (Cognito sends a code to verify it)")
    else:
        raise SignUpRefusedError(f"{ACCOUNT_TYPE} must be '{CLIENT}' or '{THERAPIST}' (got {account_type!r})")
    _log("sign-up accepted", event, account_type=account_type)
    return event


def post_confirmation(event: Event, context: object) -> Event:
    attributes: dict[str, str] = event["request"].get("userAttributes", {})
    if event["triggerSource"] == "PostConfirmation_ConfirmSignUp" and attributes.get(ACCOUNT_TYPE) == CLIENT:
        _cognito().admin_add_user_to_group(UserPoolId=event["userPoolId"], Username=event["userName"],
                                           GroupName=os.environ["CLIENTS_GROUP"])
        _log("client added to group", event, group=os.environ["CLIENTS_GROUP"])
    return event


def pre_token_generation(event: Event, context: object) -> Event:
    """Version-2 event (the pool's feature plan is Essentials or Plus): the group override applies to the ID *and*
    the access token, which is the one the API and the chat authorize from. A version-1 event shapes the ID token
    only: https://docs.aws.amazon.com/cognito/latest/developerguide/user-pool-lambda-pre-token-generation.html
    """
    if event.get("version") != "2":
        # Deployed as V1_0 the override would never reach the access token: fail loudly instead of granting.
        raise RuntimeError(f"pre_token_generation expects the version 2 event, got version {event.get('version')!r}")
    therapists = os.environ["THERAPISTS_GROUP"]
    groups: list[str] = event["request"].get("groupConfiguration", {}).get("groupsToOverride", [])
    if therapists not in groups:
        return event
    try:
        _apply_therapist_requirements(event, therapists, groups)
    except (BotoCoreError, ClientError) as error:
        _log("therapist check failed", event, error=type(error).__name__)
        raise TherapistCheckUnavailableError("therapist check unavailable; try signing in again") from None
    return event


def _apply_therapist_requirements(event: Event, therapists: str, groups: list[str]) -> None:
    missing = _therapist_requirements_missing(event)
    if missing:
        kept = [group for group in groups if group != therapists]
        event["response"]["claimsAndScopeOverrideDetails"] = {"groupOverrideDetails": {"groupsToOverride": kept}}
        _log("therapist rights withheld", event, missing=missing)
    if MISSING_MFA in missing:
        # Admission vouches for the authenticator the admin saw working. Once none is set up (never paired, a lost
        # phone reset, MFA turned off), whoever pairs one next (anyone holding the password) must not inherit the
        # rights: the admission itself ends, and only an admin's new check restores it. Failing here fails the
        # sign-in (closed), never grants.
        _cognito().admin_remove_user_from_group(UserPoolId=event["userPoolId"], Username=event["userName"],
                                                GroupName=therapists)
        _log("therapist admission ended: no MFA", event, group=therapists)


MISSING_MFA = "MFA (authenticator app)"


def _therapist_requirements_missing(event: Event) -> list[str]:
    attributes: dict[str, str] = event["request"].get("userAttributes", {})
    missing = []
    if attributes.get("email_verified") != "true":
        missing.append("verified email")
    user = _cognito().admin_get_user(UserPoolId=event["userPoolId"], Username=event["userName"])
    if TOTP_MFA not in user.get("UserMFASettingList", []):
        missing.append(MISSING_MFA)
    return missing


_clients: dict[str, Any] = {}


def _cognito() -> Any:
    """One client per execution environment and endpoint (built on first use: the endpoint the environment names)."""
    where = os.environ.get("AWS_ENDPOINT_URL", "") + "|" + os.environ.get("AWS_REGION", "")
    if where not in _clients:
        _clients[where] = boto3.client("cognito-idp", config=COGNITO_CALLS)
    return _clients[where]


def _log(message: str, event: Event, **fields: object) -> None:
    # The user's sub only: usernames are pseudonyms a client chose and stay out of logs.
    sub = event["request"].get("userAttributes", {}).get("sub")
    logger.info(json.dumps({"message": message, "trigger": event["triggerSource"], "sub": sub, **fields}))
