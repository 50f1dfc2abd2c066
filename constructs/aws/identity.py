"""A Cognito user directory where clients may stay anonymous and therapists are verified and admitted by an admin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from constructs import Construct

from .encryption import removal_policy
from .functions import BundledPythonFunction, FunctionShape
from .nag import GRANTS_POLICY, acknowledge

CLIENTS_GROUP = "clients"
THERAPISTS_GROUP = "therapists"
ADMINS_GROUP = "admins"
# Lower precedence wins when a user is in several groups (an admin who is also a therapist acts as admin).
GROUP_PRECEDENCE = {ADMINS_GROUP: 0, THERAPISTS_GROUP: 10, CLIENTS_GROUP: 20}
GROUP_DESCRIPTIONS = {
    CLIENTS_GROUP: "People seeking therapy; added automatically when a pseudonymous sign-up is confirmed.",
    THERAPISTS_GROUP: "Admitted by an admin only; honoured only while the email is verified and MFA is on.",
    ADMINS_GROUP: "Platform operators.",
}
ACCOUNT_TYPE_ATTRIBUTE = "account_type"   # custom:account_type, set once at sign-up: client | therapist
TRIGGER_TIMEOUT_SECONDS = 5               # Cognito waits at most 5 s for a trigger
# What a signed-in person may change about themselves through an app client (UpdateUserAttributes): the UI
# language, nothing that identifies anyone. Clients stay anonymous after sign-up (no name, address, birthdate,
# email or phone can be added); a therapist's email is their verified identity and changes only through an admin.
# Never empty: Cognito treats an empty WriteAttributes list as "not set", i.e. every standard attribute writable.
CLIENT_WRITABLE_ATTRIBUTES = ("locale",)


@dataclass(frozen=True, kw_only=True)
class SesSender:
    """A verified Amazon SES identity that sends the pool's email instead of Cognito's capped default sender."""

    from_address: str
    from_name: str | None = None
    reply_to: str | None = None
    verified_domain: str | None = None
    ses_region: str | None = None   # None: the user pool's region


@dataclass(frozen=True, kw_only=True)
class DirectoryShape:
    password_min_length: int
    threat_protection: str                # enforced | audit | off
    mobile_callback_urls: list[str]
    web_callback_urls: list[str]
    access_token_minutes: int
    refresh_token_days: int
    log_retention_days: int
    mfa: str = "optional"                 # optional | required (TOTP either way)
    domain_prefix: str                    # managed login at https://<prefix>.auth.<region>.amazoncognito.com
    ses_email: SesSender | None = None    # None: Cognito's default sender


class UserDirectory(Construct):
    """User pool, groups, the mobile (public, PKCE) and web (confidential) app clients, and sign-up triggers.

    Anonymity: a client account is a pseudonym (the username) and a password, nothing else; the pre-sign-up trigger
    refuses a client sign-up that carries an email or phone number and confirms the rest without a code. Therapists
    sign up with an email that Cognito verifies, and hold therapist rights only after an admin adds them to
    `therapists` — and, through the pre-token-generation trigger, only while their email is verified and MFA is on.
    """

    def __init__(self, scope: Construct, id: str, *, pool_name: str, shape: DirectoryShape, triggers_source: Path,
                 logs_key: kms.IKey, retain_data: bool) -> None:
        super().__init__(scope, id)
        triggers = {
            name: BundledPythonFunction(self, construct_id, source=triggers_source, logs_key=logs_key,
                                        retain_data=retain_data, shape=FunctionShape(
                                            handler=f"triggers.{name}", description=description,
                                            timeout_seconds=TRIGGER_TIMEOUT_SECONDS,
                                            log_retention_days=shape.log_retention_days,
                                            environment={"CLIENTS_GROUP": CLIENTS_GROUP,
                                                         "THERAPISTS_GROUP": THERAPISTS_GROUP}))
            for name, construct_id, description in (
                ("pre_sign_up", "PreSignUp", "Selfnest: refuse identifying client sign-ups, confirm pseudonyms"),
                ("post_confirmation", "PostConfirmation", "Selfnest: put confirmed clients into the clients group"),
                ("pre_token_generation", "PreTokenGeneration",
                 "Selfnest: drop therapist rights without a verified email and MFA"),
            )
        }
        threat_protection = {"enforced": cognito.StandardThreatProtectionMode.FULL_FUNCTION,
                             "audit": cognito.StandardThreatProtectionMode.AUDIT_ONLY}.get(shape.threat_protection)
        self.pool = cognito.UserPool(
            self, "Pool",
            user_pool_name=pool_name,
            self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(username=True),   # the username is the client's pseudonym
            sign_in_case_sensitive=False,
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=False, mutable=True)),
            custom_attributes={ACCOUNT_TYPE_ATTRIBUTE: cognito.StringAttribute(min_len=6, max_len=9, mutable=False)},
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            keep_original=cognito.KeepOriginalAttrs(email=True),
            # Pseudonymous clients have no channel to recover through; therapists recover by verified email.
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            mfa=cognito.Mfa.REQUIRED if shape.mfa == "required" else cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(
                min_length=shape.password_min_length, require_lowercase=True, require_uppercase=True,
                require_digits=True, require_symbols=True, temp_password_validity=cdk.Duration.days(3)),
            feature_plan=cognito.FeaturePlan.PLUS if threat_protection else cognito.FeaturePlan.ESSENTIALS,
            standard_threat_protection_mode=threat_protection,
            email=None if shape.ses_email is None else cognito.UserPoolEmail.with_ses(
                from_email=shape.ses_email.from_address, from_name=shape.ses_email.from_name,
                reply_to=shape.ses_email.reply_to, ses_verified_domain=shape.ses_email.verified_domain,
                ses_region=shape.ses_email.ses_region),
            lambda_triggers=cognito.UserPoolTriggers(
                pre_sign_up=triggers["pre_sign_up"].function,
                post_confirmation=triggers["post_confirmation"].function),
            deletion_protection=retain_data,
            removal_policy=removal_policy(retain_data=retain_data),
        )
        # Version 2 (Essentials or Plus plan, which this pool always has): the group override reaches the access token
        # the API and the chat authorize from, not only the ID token as with version 1.
        self.pool.add_trigger(cognito.UserPoolOperation.PRE_TOKEN_GENERATION_CONFIG,
                              triggers["pre_token_generation"].function, cognito.LambdaVersion.V2_0)
        # A separate policy, not the functions' default one: the pool depends on its triggers, so the triggers'
        # roles can only name the pool once it exists.
        # Pre-token-generation reads MFA settings and ends the admission of a therapist found without MFA.
        for trigger, actions in (("post_confirmation", ["cognito-idp:AdminAddUserToGroup"]),
                                 ("pre_token_generation", ["cognito-idp:AdminGetUser",
                                                           "cognito-idp:AdminRemoveUserFromGroup"])):
            permission = iam.Policy(
                self, f"{trigger.title().replace('_', '')}Permission", roles=[triggers[trigger].role],
                statements=[iam.PolicyStatement(actions=actions, resources=[self.pool.user_pool_arn])])
            acknowledge(permission, GRANTS_POLICY)

        self.groups = {
            name: cognito.CfnUserPoolGroup(self, f"{name.capitalize()}Group", user_pool_id=self.pool.user_pool_id,
                                           group_name=name, precedence=precedence,
                                           description=GROUP_DESCRIPTIONS[name])
            for name, precedence in GROUP_PRECEDENCE.items()
        }
        self.mobile_client = self._client("Mobile", shape=shape, callback_urls=shape.mobile_callback_urls,
                                          generate_secret=False)
        self.web_client = self._client("Web", shape=shape, callback_urls=shape.web_callback_urls,
                                       generate_secret=True)
        self.api_client_ids = [self.mobile_client.user_pool_client_id, self.web_client.user_pool_client_id]
        # The authorization-code + PKCE flow starts at the pool's domain (/oauth2/authorize, /oauth2/token). Managed
        # login (version 2) shows a page only for app clients that have a style: each gets Cognito's default one.
        self.domain = self.pool.add_domain(
            "Domain", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=shape.domain_prefix),
            managed_login_version=cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN)
        for client in (self.mobile_client, self.web_client):
            branding = cognito.CfnManagedLoginBranding(
                self, f"{client.node.id}Branding", user_pool_id=self.pool.user_pool_id,
                client_id=client.user_pool_client_id, use_cognito_provided_values=True)
            branding.node.add_dependency(self.domain)

        if shape.mfa != "required":
            acknowledge(self.pool, {
                "AwsSolutions-COG2": "MFA is optional pool-wide so anonymous clients can join with a pseudonym "
                                     "alone; therapists lose therapist rights in every token unless MFA is on "
                                     "(pre-token trigger).",
            })
        if threat_protection != cognito.StandardThreatProtectionMode.FULL_FUNCTION:
            plus_plan_reason = ("Threat protection needs the paid Plus feature plan: enforced in prod; set "
                                "identity.threat_protection to 'enforced' to turn it on here.")
            acknowledge(self.pool, {"AwsSolutions-COG8": plus_plan_reason, "AwsSolutions-COG3": plus_plan_reason})

    def _client(self, id: str, *, shape: DirectoryShape, callback_urls: list[str],
                generate_secret: bool) -> cognito.UserPoolClient:
        """An app client using the authorization-code flow (PKCE for public clients) and SRP, never passwords."""
        return self.pool.add_client(
            id,
            generate_secret=generate_secret,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.PROFILE],
                callback_urls=callback_urls),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            write_attributes=cognito.ClientAttributes().with_standard_attributes(
                **{attribute: True for attribute in CLIENT_WRITABLE_ATTRIBUTES}),
            enable_token_revocation=True,
            access_token_validity=cdk.Duration.minutes(shape.access_token_minutes),
            id_token_validity=cdk.Duration.minutes(shape.access_token_minutes),
            refresh_token_validity=cdk.Duration.days(shape.refresh_token_days),
        )
