"""Synth assertions on the chat: authorizer on $connect, throttled and logged stage, TTL/PITR/KMS tables, least
privilege per function, log retention, and the shared modules in the asset."""

from __future__ import annotations

import json
from typing import Any

from refarch.constructs.aws.chat import CONNECTIONS_BY_SESSION_INDEX
from refarch.stacks.selfnest.account import ACCOUNT_STACK_NAME

from .assembly import Assembly, Resource, get_att, ref


def resources(assembly: Assembly, resource_type: str) -> dict[str, Resource]:
    return assembly.resources("chat", resource_type)


def function_by_handler(assembly: Assembly) -> dict[str, str]:
    return {function["Properties"]["Handler"]: logical_id
            for logical_id, function in resources(assembly, "AWS::Lambda::Function").items()}


TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")   # global with the pilot-light DR tier


def tables_by_name(assembly: Assembly) -> dict[str, str]:
    return {table["Properties"]["TableName"]: logical_id for table_type in TABLE_TYPES
            for logical_id, table in resources(assembly, table_type).items()}


def protection(table: Resource, region: str) -> dict[str, Any]:
    """PITR and the KMS key of the table's copy in `region` (a global table keeps them per replica)."""
    properties = table["Properties"]
    if table["Type"] == "AWS::DynamoDB::Table":
        return {"pitr": properties["PointInTimeRecoverySpecification"],
                "key": properties["SSESpecification"]["KMSMasterKeyId"]}
    [replica] = [replica for replica in properties["Replicas"] if replica["Region"] == region]
    return {"pitr": replica["PointInTimeRecoverySpecification"], "key": replica["SSESpecification"]["KMSMasterKeyId"]}


def statements_of(assembly: Assembly, function_id: str) -> list[dict[str, Any]]:
    role = resources(assembly, "AWS::Lambda::Function")[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return [statement for policy in resources(assembly, "AWS::IAM::Policy").values()
            if ref(role) in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]]


def actions_of(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def test_only_connect_has_the_token_authorizer(assembly: Assembly) -> None:
    [(authorizer_id, authorizer)] = resources(assembly, "AWS::ApiGatewayV2::Authorizer").items()
    assert authorizer["Properties"]["AuthorizerType"] == "REQUEST"
    # The token travels as a WebSocket subprotocol, never in the URL (which access logs and proxies record).
    assert authorizer["Properties"]["IdentitySource"] == ["route.request.header.Sec-WebSocket-Protocol"]
    uri = json.dumps(authorizer["Properties"]["AuthorizerUri"])
    assert function_by_handler(assembly)["authorizer.handler"] in uri
    routes = {route["Properties"]["RouteKey"]: route["Properties"]
              for route in resources(assembly, "AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"$connect", "$disconnect", "$default", "joinSession", "sendMessage", "fetchHistory"}
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    assert routes["$connect"]["AuthorizerId"] == ref(authorizer_id)
    assert all(route["AuthorizationType"] == "NONE" for key, route in routes.items() if key != "$connect")


def test_stage_is_throttled_and_writes_access_logs_without_client_addresses(assembly: Assembly) -> None:
    chat = assembly.settings.chat
    [stage] = resources(assembly, "AWS::ApiGatewayV2::Stage").values()
    properties = stage["Properties"]
    assert properties["DefaultRouteSettings"] == {"ThrottlingRateLimit": chat.throttle_rate_per_second,
                                                  "ThrottlingBurstLimit": chat.throttle_burst}
    log_group_id = properties["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    log_group = resources(assembly, "AWS::Logs::LogGroup")[log_group_id]["Properties"]
    assert "KmsKeyId" in log_group and log_group["RetentionInDays"] == chat.log_retention_days
    log_format = json.loads(properties["AccessLogSettings"]["Format"])
    assert log_format["requestId"] == "$context.requestId"
    assert not any("sourceIp" in value or "userAgent" in value for value in log_format.values())
    # Nothing of the request itself: no path, query string or headers (where the token travels).
    assert all(value.startswith(("$context.requestId", "$context.requestTime", "$context.routeKey",
                                 "$context.eventType", "$context.connectionId", "$context.status",
                                 "$context.authorizer.", "$context.integrationLatency", "$context.error."))
               for value in log_format.values())
    # API Gateway writes WebSocket logs only once the account's CloudWatch role is set: the stage's stack waits for
    # the account stack that sets it (tests/infra/aws/test_account.py).
    assert ACCOUNT_STACK_NAME in assembly.dependencies("chat")


def test_tables_expire_items_recover_to_any_second_and_use_the_chat_key(assembly: Assembly) -> None:
    name = assembly.settings.name
    key_arn = assembly.tier_key_arn("chat")
    tables = {name: resources(assembly, table["Type"])[logical_id] for name, logical_id in tables_by_name(assembly)
              .items() for table in [assembly.templates["chat"]["Resources"][logical_id]]}
    for table_name in (name("chat-connections"), name("chat-messages"), name("chat-sessions")):
        properties = tables[table_name]["Properties"]
        assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
        assert properties["SSESpecification"]["SSEEnabled"] is True and properties["SSESpecification"][
            "SSEType"] == "KMS"
        table_protection = protection(tables[table_name], assembly.settings.region)
        assert table_protection == {"pitr": {"PointInTimeRecoveryEnabled": True}, "key": table_protection["key"]}
        assert assembly.resolve(table_protection["key"]) == key_arn
        assert tables[table_name]["DeletionPolicy"] == ("Retain" if assembly.settings.retain_data else "Delete")
    # The index the send handler queries (others, such as lab 13's by-user index, may sit beside it).
    [index] = [index for index in tables[name("chat-connections")]["Properties"]["GlobalSecondaryIndexes"]
               if index["IndexName"] == CONNECTIONS_BY_SESSION_INDEX]
    assert index["KeySchema"] == [{"AttributeName": "session_id", "KeyType": "HASH"}]


def test_message_retention_and_frame_limit_reach_the_handlers(assembly: Assembly) -> None:
    chat = assembly.settings.chat
    functions = resources(assembly, "AWS::Lambda::Function")
    send = functions[function_by_handler(assembly)["chat.send_message"]]["Properties"]["Environment"]["Variables"]
    assert send["MESSAGE_RETENTION_DAYS"] == str(chat.message_retention_days)
    assert send["MAX_FRAME_BYTES"] == str(chat.max_frame_bytes)
    assert int(send["MAX_FRAME_BYTES"]) <= 32 * 1024
    assert (send["MESSAGES_PER_MINUTE"], send["MAX_MESSAGES_PER_SESSION"], send["HISTORY_PAGE_MESSAGES"]) == (
        str(chat.messages_per_minute_per_connection), str(chat.max_messages_per_session),
        str(chat.history_page_messages))


def test_each_function_touches_only_its_tables_and_posts_only_to_this_stage(assembly: Assembly) -> None:
    name, stage = assembly.settings.name, assembly.settings.environment
    tables = tables_by_name(assembly)
    [api_id] = resources(assembly, "AWS::ApiGatewayV2::Api")
    key_arn = assembly.tier_key_arn("chat")
    sessions, connections, messages, idempotency = (
        get_att(tables[name(f"chat-{suffix}")], "Arn") for suffix in ("sessions", "connections", "messages",
                                                                      "idempotency"))
    by_session = {"Fn::Join": ["", [connections, "/index/by-session"]]}
    expected_dynamodb: dict[str, dict[str, set[str]]] = {
        "authorizer.handler": {},
        "chat.connect": {json.dumps(connections): {"dynamodb:PutItem"}},
        "chat.disconnect": {json.dumps(connections): {"dynamodb:DeleteItem"}},
        "chat.join_session": {json.dumps(sessions): {"dynamodb:GetItem"},
                              json.dumps(connections): {"dynamodb:GetItem", "dynamodb:UpdateItem",
                                                        "dynamodb:DeleteItem"},
                              json.dumps(messages): {"dynamodb:Query"}},
        "chat.send_message": {json.dumps(sessions): {"dynamodb:GetItem", "dynamodb:UpdateItem"},
                              json.dumps(connections): {"dynamodb:GetItem", "dynamodb:UpdateItem",
                                                        "dynamodb:DeleteItem"},
                              json.dumps(by_session): {"dynamodb:Query"},
                              json.dumps(messages): {"dynamodb:PutItem"}},
        # Read-only on messages: older history is queried, never written.
        "chat.fetch_history": {json.dumps(sessions): {"dynamodb:GetItem"},
                               json.dumps(connections): {"dynamodb:GetItem", "dynamodb:UpdateItem",
                                                         "dynamodb:DeleteItem"},
                               json.dumps(messages): {"dynamodb:Query"}},
        "chat.default": {json.dumps(connections): {"dynamodb:DeleteItem"}},
        "sessions.handler": {json.dumps(sessions): {"dynamodb:UpdateItem"},
                             json.dumps(idempotency): {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                                       "dynamodb:DeleteItem"}},
    }
    posting = {"chat.join_session", "chat.send_message", "chat.fetch_history", "chat.default"}
    account = assembly.accounts["chat"]

    def connections_arn_for(method: str) -> dict[str, Any]:
        return {"Fn::Join": ["", [
            f"arn:aws:execute-api:{assembly.settings.region}:", ref("AWS::AccountId"), ":", ref(api_id),
            f"/{stage}/{method}/@connections/*"] if account == "unknown-account" else [
            f"arn:aws:execute-api:{assembly.settings.region}:{account}:", ref(api_id),
            f"/{stage}/{method}/@connections/*"]]}

    # POST frames, DELETE connections whose token expired; never GET (listed sorted, as CloudFormation has them).
    connections_arn = [connections_arn_for(method) for method in ("DELETE", "POST")]
    handlers = function_by_handler(assembly)
    assert set(handlers) == set(expected_dynamodb)
    for handler, function_id in handlers.items():
        statements = statements_of(assembly, function_id)
        dynamodb: dict[str, set[str]] = {}
        for statement in statements:
            actions = actions_of(statement)
            assert not any(action == "*" or action.endswith(":*") for action in actions), statement
            if any(action.startswith("dynamodb:") for action in actions):
                dynamodb.setdefault(json.dumps(statement["Resource"]), set()).update(actions)
            elif any(action.startswith("kms:") for action in actions):
                assert assembly.resolve(statement["Resource"]) == key_arn
            elif any(action.startswith("execute-api:") for action in actions):
                assert (actions, statement["Resource"]) == (["execute-api:ManageConnections"], connections_arn)
                assert handler in posting
            elif statement["Resource"] == "*":
                assert all(action.startswith("xray:") for action in actions), statement
        assert dynamodb == expected_dynamodb[handler], handler
        assert any("execute-api:ManageConnections" in actions_of(s) for s in statements) == (handler in posting)


def test_every_chat_function_logs_to_an_encrypted_group_with_the_configured_retention(assembly: Assembly) -> None:
    log_groups = resources(assembly, "AWS::Logs::LogGroup")
    for function in resources(assembly, "AWS::Lambda::Function").values():
        group = log_groups[function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
        assert group["RetentionInDays"] == assembly.settings.chat.log_retention_days
        assert "KmsKeyId" in group


def test_the_chat_asset_packages_the_shared_verifier_and_event_modules(assembly: Assembly) -> None:
    for function in resources(assembly, "AWS::Lambda::Function").values():
        asset = assembly.outdir / function["Metadata"]["aws:asset:path"]
        for shared in ("selfnest_api/auth.py", "selfnest_api/errors.py", "consumer.py", "session_events.py",
                       "jwt/__init__.py", "cryptography/__init__.py"):
            assert (asset / shared).is_file(), f"{shared} missing from {asset.name}"


def test_the_sessions_consumer_hears_only_bookings_and_cancellations(assembly: Assembly) -> None:
    [subscription] = resources(assembly, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["FilterPolicy"] == {"event_type": ["session.booked", "session.cancelled"]}
    assert subscription["Properties"]["RawMessageDelivery"] is True
    topic = assembly.resolve(subscription["Properties"]["TopicArn"])
    assert assembly.templates["messaging"]["Resources"][topic["Ref"]]["Properties"]["TopicName"] == \
        assembly.settings.name("session-events")


def test_older_history_has_its_own_route_function_and_page_limits(assembly: Assembly) -> None:
    chat = assembly.settings.chat
    handlers = function_by_handler(assembly)
    [route] = [route["Properties"] for route in resources(assembly, "AWS::ApiGatewayV2::Route").values()
               if route["Properties"]["RouteKey"] == "fetchHistory"]
    integration_id = route["Target"]["Fn::Join"][1][1]["Ref"]
    integration = resources(assembly, "AWS::ApiGatewayV2::Integration")[integration_id]["Properties"]
    assert handlers["chat.fetch_history"] in json.dumps(integration["IntegrationUri"])
    environment = resources(assembly, "AWS::Lambda::Function")[handlers["chat.fetch_history"]]["Properties"][
        "Environment"]["Variables"]
    assert (environment["HISTORY_PAGE_MESSAGES"], environment["HISTORY_PAGES_PER_MINUTE"]) == (
        str(chat.history_page_messages), str(chat.history_pages_per_minute_per_connection))
