"""Account- and region-wide settings: exactly one owner per account and region, whatever environments share it."""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_iam as iam

from constructs import Construct

from .nag import acknowledge


class ApiGatewayCloudWatchRole(Construct):
    """The role API Gateway uses, in this account and region, to write every API's access and execution logs.

    A WebSocket (or REST) stage that writes logs fails to deploy until the role is set. It is one setting per
    account and region: whichever stack sets it last wins, so it must have a single owner, never one per environment.
    """

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
                             description="API Gateway: write access and execution logs to CloudWatch Logs",
                             managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                                 "service-role/AmazonAPIGatewayPushToCloudWatchLogs")])
        self.setting = apigateway.CfnAccount(self, "Account", cloud_watch_role_arn=self.role.role_arn)
        acknowledge(self.role, {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]": "AWS's managed policy for exactly this role: API Gateway may "
                                                     "create log groups and streams and put events, nothing else.",
        })
