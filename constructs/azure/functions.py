"""A Flex Consumption (FC1) Linux function app that reaches everything with its system-assigned identity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import web

from .common import Placement


@dataclass(frozen=True, kw_only=True)
class FlexFunctionAppArgs:
    placement: Placement
    plan_name: str
    app_name_prefix: str
    python_version: str
    instance_memory_mb: int
    maximum_instance_count: int
    storage_account_name: pulumi.Input[str]
    deployment_container_url: pulumi.Input[str]
    insights_connection_string: pulumi.Input[str]
    app_settings: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Outbound VNet integration (prod): the subnet must be delegated to Microsoft.App/environments.
    subnet_id: pulumi.Input[str] | None = None
    sign_in: SignInProvider


@dataclass(frozen=True, kw_only=True)
class SignInProvider:
    """An Entra ID (External ID) app registration: its OpenID issuer and client (application) id."""

    issuer: str
    client_id: str


class FlexFunctionApp(pulumi.ComponentResource):
    def __init__(self, name: str, args: FlexFunctionAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("refarch:azure:FlexFunctionApp", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        place = args.placement
        self.plan = web.AppServicePlan(
            f"{name}-plan",
            name=args.plan_name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            kind="functionapp",
            reserved=True,  # Linux
            sku=web.SkuDescriptionArgs(name="FC1", tier="FlexConsumption"),
            tags=dict(place.tags),
            opts=child,
        )
        settings: dict[str, pulumi.Input[str]] = {
            # Identity-based host storage: an account name instead of a connection string with a key.
            "AzureWebJobsStorage__accountName": args.storage_account_name,
            "AzureWebJobsStorage__credential": "managedidentity",
            "APPLICATIONINSIGHTS_CONNECTION_STRING": args.insights_connection_string,
            # Local auth is off on the component, so telemetry is sent with the app's Entra token.
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Authorization=AAD",
            **args.app_settings,
        }
        self.app = web.WebApp(
            args.app_name_prefix,
            resource_group_name=place.resource_group_name,
            location=place.location,
            kind="functionapp,linux",
            reserved=True,
            server_farm_id=self.plan.id,
            https_only=True,
            identity=web.ManagedServiceIdentityArgs(type=web.ManagedServiceIdentityType.SYSTEM_ASSIGNED),
            virtual_network_subnet_id=args.subnet_id,
            # A plain mapping, not web.SiteConfigArgs: that class fills in netFrameworkVersion ("v4.6"),
            # localMySqlEnabled and http20Enabled by default, and Flex Consumption answers 400 to site-config
            # properties it does not accept (netFrameworkVersion, ftpsState, ...). Only what Flex takes is sent; FTP is
            # off through the basic-auth publishing policies below.
            site_config=web.SiteConfigArgsDict(
                app_settings=[web.NameValuePairArgsDict(name=key, value=value) for key, value in settings.items()],
                min_tls_version=web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
                scm_min_tls_version=web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
                http20_enabled=True,
            ),
            function_app_config=web.FunctionAppConfigArgs(
                deployment=web.FunctionsDeploymentArgs(
                    storage=web.FunctionsDeploymentStorageArgs(
                        type=web.FunctionsDeploymentStorageType.BLOB_CONTAINER,
                        value=args.deployment_container_url,
                        authentication=web.FunctionsDeploymentStorageAuthenticationArgs(
                            type=web.AuthenticationType.SYSTEM_ASSIGNED_IDENTITY
                        ),
                    )
                ),
                runtime=web.FunctionsRuntimeArgs(name=web.RuntimeName.PYTHON, version=args.python_version),
                scale_and_concurrency=web.FunctionsScaleAndConcurrencyArgs(
                    instance_memory_mb=args.instance_memory_mb,
                    maximum_instance_count=args.maximum_instance_count,
                ),
            ),
            tags=dict(place.tags),
            opts=child,
        )
        # Basic-auth publishing credentials are shared secrets too; deployments authenticate with Entra ID.
        self.ftp_basic_auth = web.WebAppFtpAllowed(
            f"{name}-ftp-basic-auth", name=self.app.name, resource_group_name=place.resource_group_name,
            allow=False, opts=child,
        )
        self.scm_basic_auth = web.WebAppScmAllowed(
            f"{name}-scm-basic-auth", name=self.app.name, resource_group_name=place.resource_group_name,
            allow=False, opts=child,
        )
        # App Service authentication in front of every function: anonymous requests get 401 before reaching the app,
        # and the platform (not the caller) sets X-MS-CLIENT-PRINCIPAL, which the app takes the user id from.
        self.authentication = web.WebAppAuthSettingsV2(
            f"{name}-authentication", name=self.app.name, resource_group_name=place.resource_group_name,
            platform=web.AuthPlatformArgs(enabled=True),
            global_validation=web.GlobalValidationArgs(
                require_authentication=True,
                unauthenticated_client_action=web.UnauthenticatedClientActionV2.RETURN401),
            identity_providers=web.IdentityProvidersArgs(azure_active_directory=web.AzureActiveDirectoryArgs(
                enabled=True,
                registration=web.AzureActiveDirectoryRegistrationArgs(
                    client_id=args.sign_in.client_id, open_id_issuer=args.sign_in.issuer),
                validation=web.AzureActiveDirectoryValidationArgs(
                    allowed_audiences=[args.sign_in.client_id, f"api://{args.sign_in.client_id}"]))),
            http_settings=web.HttpSettingsArgs(require_https=True),
            # The app needs no stored provider tokens; keeping none leaves nothing to leak.
            login=web.LoginArgs(token_store=web.TokenStoreArgs(enabled=False)),
            opts=child,
        )
        self.principal_id: pulumi.Output[str] = self.app.identity.apply(_principal_id)
        self.default_host_name = self.app.default_host_name
        self.register_outputs({"app_id": self.app.id, "principal_id": self.principal_id})


def _principal_id(identity: web.outputs.ManagedServiceIdentityResponse | None) -> str:
    if identity is None:
        raise ValueError("the function app has no managed identity")
    return identity.principal_id
