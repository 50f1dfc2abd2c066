"""Synth assertions on the Cognito user pool: anonymity for clients, verification and MFA for therapists."""

from __future__ import annotations

import json
from typing import Any

from refarch.constructs.aws.identity import ADMINS_GROUP, CLIENT_WRITABLE_ATTRIBUTES, CLIENTS_GROUP, THERAPISTS_GROUP

from .assembly import Assembly, get_att, pool_triggers, ref, service_task_definition


def pool(assembly: Assembly) -> tuple[str, dict[str, Any]]:
    logical_id, resource = assembly.only("identity", "AWS::Cognito::UserPool")
    return logical_id, resource["Properties"]


def test_clients_sign_up_with_a_username_and_nothing_else_is_required(assembly: Assembly) -> None:
    _, properties = pool(assembly)
    assert properties["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is False     # self sign-up
    assert "UsernameAttributes" not in properties and "AliasAttributes" not in properties  # the pseudonym signs in
    schema = {attribute["Name"]: attribute for attribute in properties["Schema"]}
    assert schema["email"]["Required"] is False
    assert all(not attribute.get("Required", False) for attribute in schema.values())
    assert schema["account_type"]["Mutable"] is False      # client/therapist is chosen once, at sign-up
    assert properties["AutoVerifiedAttributes"] == ["email"]


def test_passwords_mfa_and_deletion_protection_follow_the_environment(assembly: Assembly) -> None:
    _, properties = pool(assembly)
    identity = assembly.settings.identity
    assert properties["Policies"]["PasswordPolicy"] == {
        "MinimumLength": identity.password_min_length, "RequireLowercase": True, "RequireNumbers": True,
        "RequireSymbols": True, "RequireUppercase": True, "TemporaryPasswordValidityDays": 3}
    # OPTIONAL by default (anonymous clients need no second factor); ON when config requires MFA of everyone.
    assert properties["MfaConfiguration"] == {"optional": "OPTIONAL", "required": "ON"}[identity.mfa]
    assert properties["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]      # no SMS: clients have no phone on file
    assert properties["DeletionProtection"] == ("ACTIVE" if assembly.settings.retain_data else "INACTIVE")


def test_threat_protection_is_enforced_in_prod(prod: Assembly) -> None:
    _, properties = pool(prod)
    assert properties["UserPoolTier"] == "PLUS"
    assert properties["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}


def test_every_trigger_is_wired_to_its_handler(assembly: Assembly) -> None:
    _, properties = pool(assembly)
    resources = assembly.templates["identity"]["Resources"]
    handlers = {trigger: (resources[function_id]["Properties"]["Handler"], version)
                for trigger, (function_id, version) in pool_triggers(properties["LambdaConfig"]).items()}
    # Pre token generation as version 2: its group override reaches the access token, which is what the API and
    # the chat authorize from (version 1 shapes the ID token only).
    assert handlers == {"PreSignUp": ("triggers.pre_sign_up", "V1_0"),
                        "PostConfirmation": ("triggers.post_confirmation", "V1_0"),
                        "PreTokenGeneration": ("triggers.pre_token_generation", "V2_0")}
    assert "PreTokenGeneration" not in properties["LambdaConfig"]     # no V1 trigger beside the V2 one


def test_the_feature_plan_allows_the_version_2_trigger_event(assembly: Assembly) -> None:
    _, properties = pool(assembly)
    assert properties["UserPoolTier"] in ("ESSENTIALS", "PLUS")


def test_groups_are_the_three_roles_with_admin_first(assembly: Assembly) -> None:
    pool_id, _ = pool(assembly)
    groups = {group["Properties"]["GroupName"]: group["Properties"]
              for group in assembly.resources("identity", "AWS::Cognito::UserPoolGroup").values()}
    assert set(groups) == {CLIENTS_GROUP, THERAPISTS_GROUP, ADMINS_GROUP}
    assert all(group["UserPoolId"] == ref(pool_id) for group in groups.values())
    assert groups[ADMINS_GROUP]["Precedence"] < groups[THERAPISTS_GROUP]["Precedence"] < groups[CLIENTS_GROUP][
        "Precedence"]


def test_app_clients_use_the_code_flow_and_srp_never_plain_passwords(assembly: Assembly) -> None:
    clients = [client["Properties"] for client in assembly.resources("identity", "AWS::Cognito::UserPoolClient")
               .values()]
    identity = assembly.settings.identity
    assert sorted(client["GenerateSecret"] for client in clients) == [False, True]   # mobile public, web confidential
    for client in clients:
        assert client["AllowedOAuthFlows"] == ["code"]          # PKCE-capable; no implicit flow
        assert client["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
        assert client["PreventUserExistenceErrors"] == "ENABLED" and client["EnableTokenRevocation"] is True
        assert client["AccessTokenValidity"] == identity.access_token_minutes
        assert client["RefreshTokenValidity"] == identity.refresh_token_days * 24 * 60
    mobile = next(client for client in clients if not client["GenerateSecret"])
    assert mobile["CallbackURLs"] == identity.mobile_callback_urls


def test_each_trigger_may_do_one_thing_to_this_pool_and_pre_sign_up_nothing(assembly: Assembly) -> None:
    pool_id, properties = pool(assembly)
    resources = assembly.templates["identity"]["Resources"]
    role_of = {trigger: resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
               for trigger, (function_id, _) in pool_triggers(properties["LambdaConfig"]).items()}
    granted: dict[str, list[Any]] = {trigger: [] for trigger in role_of}
    for policy in assembly.resources("identity", "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "cognito-idp" not in json.dumps(statement["Action"]):
                continue
            assert statement["Resource"] == get_att(pool_id, "Arn")
            for trigger, role in role_of.items():
                if ref(role) in policy["Properties"]["Roles"]:
                    granted[trigger].append(statement["Action"])
    assert granted == {"PreSignUp": [], "PostConfirmation": ["cognito-idp:AdminAddUserToGroup"],
                       "PreTokenGeneration": [["cognito-idp:AdminGetUser", "cognito-idp:AdminRemoveUserFromGroup"]]}


def test_the_api_accepts_tokens_from_this_pools_clients(assembly: Assembly) -> None:
    pool_id, _ = pool(assembly)
    task = service_task_definition(assembly)
    environment = {variable["Name"]: assembly.resolve(variable["Value"])
                   for variable in task["Properties"]["ContainerDefinitions"][0]["Environment"]}
    assert environment["USER_POOL_ID"] == ref(pool_id)
    client_ids = list(assembly.resources("identity", "AWS::Cognito::UserPoolClient"))
    _, parts = environment["USER_POOL_CLIENT_IDS"]["Fn::Join"]
    assert [assembly.resolve(part) for part in parts] == [ref(client_ids[0]), ",", ref(client_ids[1])]


def test_the_code_flow_has_a_managed_login_domain_with_a_style_for_every_client(assembly: Assembly) -> None:
    pool_id, _ = pool(assembly)
    _, domain = assembly.only("identity", "AWS::Cognito::UserPoolDomain")
    assert domain["Properties"]["UserPoolId"] == ref(pool_id)
    assert domain["Properties"]["ManagedLoginVersion"] == 2
    prefix = domain["Properties"]["Domain"]
    configured = assembly.settings.identity.domain_prefix
    # Unique per region across all AWS customers: the default carries the account id.
    account = assembly.accounts["identity"]
    carries_account = (json.dumps(prefix).count('"AWS::AccountId"') == 1 if account == "unknown-account"
                       else account in json.dumps(prefix))
    assert prefix == configured if configured else carries_account
    code_flow_clients = {logical_id for logical_id, client in
                         assembly.resources("identity", "AWS::Cognito::UserPoolClient").items()
                         if "code" in client["Properties"].get("AllowedOAuthFlows", [])}
    styled = {branding["Properties"]["ClientId"]["Ref"]
              for branding in assembly.resources("identity", "AWS::Cognito::ManagedLoginBranding").values()
              if branding["Properties"]["UseCognitoProvidedValues"] is True}
    assert code_flow_clients and styled == code_flow_clients


def test_email_goes_through_ses_where_config_names_a_sender(assembly: Assembly) -> None:
    _, properties = pool(assembly)
    sender = assembly.settings.identity.ses_email
    email = properties.get("EmailConfiguration", {"EmailSendingAccount": "COGNITO_DEFAULT"})
    if sender is None:
        assert email["EmailSendingAccount"] == "COGNITO_DEFAULT"
        return
    assert email["EmailSendingAccount"] == "DEVELOPER"
    assert sender.from_address in email["From"]
    identity = sender.verified_domain or sender.from_address
    source = json.dumps(email["SourceArn"])
    assert f":ses:{sender.ses_region or assembly.settings.region}:" in source and f"identity/{identity}" in source


def test_prod_sends_email_through_ses(prod: Assembly) -> None:
    assert pool(prod)[1]["EmailConfiguration"]["EmailSendingAccount"] == "DEVELOPER"


def test_app_clients_may_write_only_the_ui_language(assembly: Assembly) -> None:
    # Never an empty list: Cognito reads WriteAttributes [] as "unset", i.e. every standard attribute writable.
    for client in assembly.resources("identity", "AWS::Cognito::UserPoolClient").values():
        assert client["Properties"]["WriteAttributes"] == list(CLIENT_WRITABLE_ATTRIBUTES)
