"""Real-time session chat: an API Gateway WebSocket API whose `$connect` checks Cognito tokens, Lambda route
handlers, and encrypted DynamoDB tables for connections, messages and the sessions the chat may open."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigatewayv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from constructs import Construct

from .encryption import EncryptedLogGroup
from .functions import BundledPythonFunction, FunctionShape
from .nag import acknowledge, finding_form
from .tables import DYNAMODB_CMK_ACTIONS, EncryptedTable, IdempotencyTable, Throughput

# Browsers cannot set an Authorization header on a WebSocket handshake, but they do send the subprotocols asked for
# (`new WebSocket(url, ["selfnest.v1", accessToken])`): the token travels there, never in the URL, so no access
# log, proxy or browser history keeps it.
TOKEN_IDENTITY_SOURCE = "route.request.header.Sec-WebSocket-Protocol"  # noqa: S105  (where the token is)
CONNECTIONS_BY_SESSION_INDEX = "by-session"
CONNECTION_METHODS = ("POST", "DELETE")   # what route handlers do to connections through the management API
EXPIRY_ATTRIBUTE = "expires_at"
# What one access-log line records: no source IP or user agent (clients stay anonymous), no bodies.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId", "requestTime": "$context.requestTime", "routeKey": "$context.routeKey",
    "eventType": "$context.eventType", "connectionId": "$context.connectionId", "status": "$context.status",
    "sub": "$context.authorizer.sub", "authorizerError": "$context.authorizer.error",
    "integrationLatency": "$context.integrationLatency", "error": "$context.error.message",
}


@dataclass(frozen=True, kw_only=True)
class ChatShape:
    stage_name: str
    join_minutes_before_start: int
    join_minutes_after_end: int
    max_frame_bytes: int
    message_retention_days: int
    throttle_rate_per_second: int
    throttle_burst: int
    handler_timeout_seconds: int
    log_retention_days: int
    messages_per_minute_per_connection: int = 30
    max_messages_per_session: int = 2000
    history_page_messages: int = 200
    history_pages_per_minute_per_connection: int = 20


@jsii.implements(apigatewayv2.IAccessLogSettings)
class _AccessLogs:
    def __init__(self, destination: apigatewayv2.IAccessLogDestination) -> None:
        self._destination = destination

    @property
    def destination(self) -> apigatewayv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS))


class ChatTables(Construct):
    """Sessions the chat may open, live connections (indexed by session) and the message history — all on `key`,
    all point-in-time recoverable, each expiring its items by TTL."""

    def __init__(self, scope: Construct, id: str, *, name_prefix: str, key: kms.IKey, retain_data: bool,
                 replicas: Mapping[str, str], provisioned: Mapping[str, Throughput]) -> None:
        super().__init__(scope, id)

        def encrypted(id: str, *, suffix: str, partition_key: str, sort_key: str | None = None,
                      expiry_attribute: str = EXPIRY_ATTRIBUTE, replicated: bool = False) -> EncryptedTable:
            return EncryptedTable(self, id, table_name=f"{name_prefix}-{suffix}", partition_key=partition_key,
                                  sort_key=sort_key, key=key, expiry_attribute=expiry_attribute,
                                  retain_data=retain_data, replicas=replicas if replicated else None,
                                  provisioned=provisioned.get(suffix))

        def table(id: str, **kwargs: Any) -> Any:
            return encrypted(id, **kwargs).table

        # What a DR region needs to resume chatting, sessions and their history, are global tables in every tier
        # (so switching tiers only adds or removes replicas); `replicas` (pilot light) says where they live.
        self.sessions: dynamodb.ITable = table("Sessions", suffix="sessions", partition_key="session_id",
                                               replicated=True)
        connections = encrypted("Connections", suffix="connections", partition_key="connection_id")
        connections.add_index(index_name=CONNECTIONS_BY_SESSION_INDEX, partition_key="session_id",
                              non_key_attributes=["user_id"])
        self.connections: dynamodb.Table = connections.table  # type: ignore[assignment]  # never replicated
        self.messages: dynamodb.ITable = table("Messages", suffix="messages", partition_key="session_id",
                                               sort_key="message_key", replicated=True)
        self.idempotency = IdempotencyTable(self, "Idempotency", table_name=f"{name_prefix}-idempotency", key=key,
                                            retain_data=retain_data)


class SessionChat(Construct):
    """The WebSocket API, its authorizer and route handlers, and the consumer that learns booked sessions.

    Each function may touch only the tables its route needs (and their key), and only the route handlers that answer
    clients may post to connections — `execute-api:ManageConnections` on this API's stage, POST only.
    """

    def __init__(self, scope: Construct, id: str, *, api_name: str, shape: ChatShape, source: Path,
                 include: Sequence[Path], user_pool_id: str, user_pool_client_ids: Sequence[str],
                 tables: ChatTables, key: kms.IKey, retain_data: bool) -> None:
        super().__init__(scope, id)
        self.tables = tables
        settings = {
            "SESSIONS_TABLE": tables.sessions.table_name, "CONNECTIONS_TABLE": tables.connections.table_name,
            "MESSAGES_TABLE": tables.messages.table_name, "CONNECTIONS_SESSION_INDEX": CONNECTIONS_BY_SESSION_INDEX,
            "MAX_FRAME_BYTES": str(shape.max_frame_bytes),
            "JOIN_MINUTES_BEFORE_START": str(shape.join_minutes_before_start),
            "JOIN_MINUTES_AFTER_END": str(shape.join_minutes_after_end),
            "MESSAGE_RETENTION_DAYS": str(shape.message_retention_days),
            "MESSAGES_PER_MINUTE": str(shape.messages_per_minute_per_connection),
            "MAX_MESSAGES_PER_SESSION": str(shape.max_messages_per_session),
            "HISTORY_PAGE_MESSAGES": str(shape.history_page_messages),
            "HISTORY_PAGES_PER_MINUTE": str(shape.history_pages_per_minute_per_connection),
        }

        def function(id: str, *, handler: str, description: str,
                     environment: Mapping[str, str]) -> BundledPythonFunction:
            return BundledPythonFunction(
                self, id, source=source, include=include, logs_key=key, retain_data=retain_data,
                shape=FunctionShape(handler=handler, description=description,
                                    timeout_seconds=shape.handler_timeout_seconds,
                                    log_retention_days=shape.log_retention_days, environment=dict(environment)))

        self.authorizer = function(
            "Authorizer", handler="authorizer.handler", description="Selfnest chat: verify the Cognito access token",
            environment={"USER_POOL_ID": user_pool_id, "USER_POOL_CLIENT_IDS": ",".join(user_pool_client_ids)})
        self.connect = function("Connect", handler="chat.connect", environment=settings,
                                description="Selfnest chat: remember an authorized connection")
        self.disconnect = function("Disconnect", handler="chat.disconnect", environment=settings,
                                   description="Selfnest chat: forget a closed connection")
        self.join = function("JoinSession", handler="chat.join_session", environment=settings,
                             description="Selfnest chat: join a booked session and receive its history")
        self.send = function("SendMessage", handler="chat.send_message", environment=settings,
                             description="Selfnest chat: store a message and pass it to the other participant")
        self.fetch_history = function("FetchHistory", handler="chat.fetch_history", environment=settings,
                                      description="Selfnest chat: send a joined participant older history")
        self.default = function("Unrouted", handler="chat.default", environment=settings,
                                description="Selfnest chat: answer frames without a known action")

        def route(function: BundledPythonFunction) -> apigatewayv2.WebSocketRouteOptions:
            return apigatewayv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration(f"{function.node.id}Integration",
                                                                    function.function))

        self.api = apigatewayv2.WebSocketApi(
            self, "Api", api_name=api_name, route_selection_expression="$request.body.action",
            description="Selfnest real-time session chat",
            connect_route_options=apigatewayv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("ConnectIntegration", self.connect.function),
                authorizer=authorizers.WebSocketLambdaAuthorizer(
                    "TokenAuthorizer", self.authorizer.function, identity_source=[TOKEN_IDENTITY_SOURCE])),
            disconnect_route_options=route(self.disconnect),
            default_route_options=route(self.default))
        for route_key, handler in (("joinSession", self.join), ("sendMessage", self.send),
                                   ("fetchHistory", self.fetch_history)):
            self.api.add_route(route_key, integration=route(handler).integration)

        self.access_logs = EncryptedLogGroup(self, "AccessLogs", key=key, retention_days=shape.log_retention_days,
                                             retain_data=retain_data)
        self.stage = apigatewayv2.WebSocketStage(
            self, "Stage", web_socket_api=self.api, stage_name=shape.stage_name, auto_deploy=True,
            throttle=apigatewayv2.ThrottleSettings(rate_limit=shape.throttle_rate_per_second,
                                                   burst_limit=shape.throttle_burst),
            access_log_settings=_AccessLogs(
                apigatewayv2.LogGroupLogDestination(self.access_logs.log_group)))

        stack = cdk.Stack.of(self)
        # POST a frame; DELETE a connection whose token expired (it must not outlive it). Never GET.
        post_to_connections = iam.PolicyStatement(
            actions=["execute-api:ManageConnections"],
            resources=[stack.format_arn(service="execute-api", resource=self.api.api_id,
                                        resource_name=f"{shape.stage_name}/{method}/@connections/*")
                       for method in CONNECTION_METHODS])
        connections, messages, sessions = tables.connections.table_arn, tables.messages.table_arn, \
            tables.sessions.table_arn
        by_session = f"{connections}/index/{CONNECTIONS_BY_SESSION_INDEX}"
        # Statements name each table (and the one index) exactly; Table.grant would add every index (`/index/*`).
        grants: list[tuple[BundledPythonFunction, list[tuple[str, tuple[str, ...]]], bool]] = [
            (self.connect, [(connections, ("dynamodb:PutItem",))], False),
            (self.disconnect, [(connections, ("dynamodb:DeleteItem",))], False),
            (self.join, [(sessions, ("dynamodb:GetItem",)),
                         (connections, ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")),
                         (messages, ("dynamodb:Query",))], True),
            (self.send, [(sessions, ("dynamodb:GetItem", "dynamodb:UpdateItem")),   # + the session's message count
                         (connections, ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")),
                         (by_session, ("dynamodb:Query",)),
                         (messages, ("dynamodb:PutItem",))], True),
            # Reads history only; updates its connection's page counter, forgets a gone or expired connection.
            (self.fetch_history, [(sessions, ("dynamodb:GetItem",)),
                                  (connections, ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")),
                                  (messages, ("dynamodb:Query",))], True),
            # Refusals only: never reads a table, but forgets a connection that turns out to be gone.
            (self.default, [(connections, ("dynamodb:DeleteItem",))], True),
        ]
        for handler_function, table_actions, posts in grants:
            for resource, actions in table_actions:
                handler_function.role.add_to_principal_policy(iam.PolicyStatement(actions=list(actions),
                                                                                   resources=[resource]))
            key.grant(handler_function.role, *DYNAMODB_CMK_ACTIONS)
            if posts:
                handler_function.role.add_to_principal_policy(post_to_connections)
                acknowledge(handler_function, {
                    f"AwsSolutions-IAM5[Resource::{finding_form(stack, resource)}]":
                        "Connection ids exist only at run time: the function may POST to (and, once its token "
                        "expired, DELETE) any connection of this API's own stage (never GET, never another API "
                        "or stage)."
                    for resource in post_to_connections.resources
                })

        acknowledge(self.api, {
            "AwsSolutions-APIG4": "A WebSocket API authorizes once, on $connect (Lambda authorizer verifying the "
                                  "Cognito token); API Gateway allows no authorizer on other routes, which only run "
                                  "on an authorized connection and check the session's participants themselves.",
        })


