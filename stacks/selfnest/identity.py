"""selfnest-<env>-identity: the Cognito user pool for clients, therapists and admins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from refarch.constructs.aws.identity import DirectoryShape, SesSender, UserDirectory

from constructs import Construct

from .config import SelfnestSettings
from .keys import tier_key

TRIGGERS_DIRECTORY = Path(__file__).resolve().parents[2] / "services" / "selfnest_identity"


class IdentityStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, settings: SelfnestSettings, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        logs_key = tier_key(
            self, "LogsKey", settings=settings, alias=f"alias/{settings.name('identity-logs')}",
            purpose="Selfnest Cognito trigger logs and settings", for_cloudwatch_logs=True)
        identity = settings.identity
        shape = DirectoryShape(
            **identity.model_dump(exclude={"domain_prefix", "ses_email"}),
            # Prefix domains are unique per region across all AWS customers: the account id keeps forks apart.
            domain_prefix=identity.domain_prefix or f"{settings.name('')}{self.account}",
            ses_email=None if identity.ses_email is None else SesSender(**identity.ses_email.model_dump()))
        self.directory = UserDirectory(
            self, "Users", pool_name=settings.name("users"), shape=shape,
            triggers_source=TRIGGERS_DIRECTORY, logs_key=logs_key, retain_data=settings.retain_data)
        cdk.CfnOutput(self, "SignInDomain", value=self.directory.domain.base_url(),
                      description="Managed login and OAuth 2.0 endpoints (/oauth2/authorize, /oauth2/token)")
