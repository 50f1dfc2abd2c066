"""selfnest-account: settings that belong to the AWS account and region, not to one environment.

Every environment's app contains this stack with the same template, so `make deploy` of dev or prod (in any
order) leaves one owner of the setting; `make destroy ENV=...` never touches it, and termination protection
refuses a stray `cdk destroy --all`. Delete it by hand only when no API Gateway API in this account and region
writes logs any more.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from refarch.constructs.aws.account import ApiGatewayCloudWatchRole

from constructs import Construct

ACCOUNT_STACK_NAME = "selfnest-account"


class AccountSettingsStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, **kwargs: Any) -> None:
        super().__init__(scope, id, stack_name=ACCOUNT_STACK_NAME, termination_protection=True,
                         description="Selfnest: account- and region-wide settings shared by every environment",
                         **kwargs)
        self.api_gateway_logging = ApiGatewayCloudWatchRole(self, "ApiGatewayLogging")
