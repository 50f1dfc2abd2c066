"""API Gateway's side of the chat, played from the synthesized chat template.

moto's CloudFormation skips AWS::ApiGatewayV2::*, and moto cannot run Lambda: this harness reads the template's API
(route selection expression, routes, the `$connect` authorizer and its identity source, the stage) and invokes the
bundled handlers the way API Gateway would. Frames the handlers post go to moto's management API, which keeps them
per connection; a connection whose client vanished answers 410 GoneException there, as API Gateway does (moto alone
accepts posts to any connection id).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from moto.apigatewaymanagementapi.models import ApiGatewayManagementApiBackend, apigatewaymanagementapi_backends
from moto.core.exceptions import JsonRESTError

from tests.services.aws_template import ACCOUNT_ID, MotoStack
from tests.services.lambda_runtime import DeployedFunction, load_function

SUBPROTOCOL = "selfnest.v1"

API_ID = "chatapi001"     # API Gateway's id for the API; handlers only echo it back in ARNs and endpoints


class GoneError(JsonRESTError):
    code = 410

    def __init__(self, connection_id: str) -> None:
        super().__init__("GoneException", f"connection {connection_id} is gone")


@dataclass
class Route:
    key: str
    function: DeployedFunction
    authorizer: DeployedFunction | None = None
    identity_source: list[str] = field(default_factory=list)


@dataclass
class Refusal:
    """The handshake failed: 401 (no identity source), 403 (authorizer denied) or 500 (authorizer failed)."""

    status: int
    authorizer_answer: dict[str, Any] | None = None
    error: Exception | None = None


class WebSocketGateway:
    def __init__(self, stack: MotoStack, *, outdir: Path, environment: dict[str, str]) -> None:
        self.stack = stack
        _, api = stack.only("AWS::ApiGatewayV2::Api")
        expression = api["Properties"]["RouteSelectionExpression"]
        assert expression.startswith("$request.body."), expression
        self.selection_field = expression.removeprefix("$request.body.")
        _, stage = stack.only("AWS::ApiGatewayV2::Stage")
        self.stage = stage["Properties"]["StageName"]
        self.domain = f"{API_ID}.execute-api.{stack.region}.amazonaws.com"
        self.routes = {properties["RouteKey"]: self._route(properties, outdir, environment)
                       for properties in (route["Properties"]
                                          for route in stack.resources("AWS::ApiGatewayV2::Route").values())}
        self.gone: set[str] = set()
        self.deleted: set[str] = set()     # connections the handlers closed (DeleteConnection)

    def _route(self, properties: dict[str, Any], outdir: Path, environment: dict[str, str]) -> Route:
        integration_id = properties["Target"]["Fn::Join"][1][1]["Ref"]
        integration = self.stack.template["Resources"][integration_id]["Properties"]
        route = Route(key=properties["RouteKey"], function=self._function(integration["IntegrationUri"], outdir,
                                                                           environment))
        if properties.get("AuthorizationType") == "CUSTOM":
            authorizer = self.stack.template["Resources"][properties["AuthorizerId"]["Ref"]]["Properties"]
            route.authorizer = self._function(authorizer["AuthorizerUri"], outdir, environment)
            route.identity_source = authorizer["IdentitySource"]
        return route

    def _function(self, uri: dict[str, Any], outdir: Path, environment: dict[str, str]) -> DeployedFunction:
        [function_id] = [part["Fn::GetAtt"][0] for part in uri["Fn::Join"][1] if isinstance(part, dict)]
        function = load_function(self.stack, outdir=outdir, logical_id=function_id)
        function.environment.update(environment)
        return function

    # -- what a client does ----------------------------------------------------------------------------------------
    def connect(self, token: str | None, *, subprotocols: str | None = None) -> Socket | Refusal:
        """A handshake offering the `selfnest.v1` subprotocol and `token` (or exactly `subprotocols`, raw)."""
        route = self.routes["$connect"]
        connection_id = uuid.uuid4().hex[:15] + "="     # shaped like API Gateway's (base64, padded)
        headers = {} if subprotocols is None else {"Sec-WebSocket-Protocol": subprotocols}
        if token is not None:
            headers = {"Sec-WebSocket-Protocol": f"{SUBPROTOCOL}, {token}"}
        context = self._request_context(connection_id, "$connect", "CONNECT")
        authorized: dict[str, Any] = {}
        if route.authorizer is not None:
            # API Gateway refuses a handshake without the identity source before calling the authorizer.
            wanted = [source.removeprefix("route.request.header.").lower() for source in route.identity_source]
            if not all(name in {header.lower() for header in headers} for name in wanted):
                return Refusal(status=401)
            event = {"type": "REQUEST", "methodArn": self._route_arn("$connect"), "headers": headers,
                     "queryStringParameters": {}, "requestContext": context}
            try:
                answer = route.authorizer(event)
            except Exception as error:   # API Gateway answers 500 when the authorizer fails
                return Refusal(status=500, error=error)
            [statement] = answer["policyDocument"]["Statement"]
            if statement["Effect"] != "Allow" or statement["Resource"] != self._route_arn("$connect"):
                return Refusal(status=403, authorizer_answer=answer)
            authorized = {**answer.get("context", {}), "principalId": answer["principalId"]}
        context["authorizer"] = authorized
        reply = route.function({"requestContext": context, "headers": headers, "isBase64Encoded": False})
        if reply["statusCode"] != 200:
            return Refusal(status=reply["statusCode"])
        return Socket(gateway=self, connection_id=connection_id, authorized=authorized,
                      subprotocol=reply.get("headers", {}).get("Sec-WebSocket-Protocol"))

    def deliver(self, socket: Socket, body: str) -> None:
        """A frame from the client: routed by the selection expression, `$default` when nothing matches."""
        route_key = "$default"
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and isinstance(document.get(self.selection_field), str) and \
                document[self.selection_field] in self.routes:
            route_key = document[self.selection_field]
        context = {**self._request_context(socket.connection_id, route_key, "MESSAGE"),
                   "authorizer": socket.authorized}
        reply = self.routes[route_key].function({"requestContext": context, "body": body, "isBase64Encoded": False})
        assert reply == {"statusCode": 200}, reply

    def disconnect(self, socket: Socket) -> None:
        context = {**self._request_context(socket.connection_id, "$disconnect", "DISCONNECT"),
                   "authorizer": socket.authorized}
        self.routes["$disconnect"].function({"requestContext": context, "isBase64Encoded": False})

    def _request_context(self, connection_id: str, route_key: str, event_type: str) -> dict[str, Any]:
        return {"routeKey": route_key, "eventType": event_type, "connectionId": connection_id,
                "domainName": self.domain, "stage": self.stage, "apiId": API_ID,
                "requestId": uuid.uuid4().hex, "messageDirection": "IN"}

    def _route_arn(self, route_key: str) -> str:
        return f"arn:aws:execute-api:{self.stack.region}:{ACCOUNT_ID}:{API_ID}/{self.stage}/{route_key}"

    # -- what the management API holds -----------------------------------------------------------------------------
    @property
    def backend(self) -> ApiGatewayManagementApiBackend:
        return apigatewaymanagementapi_backends[ACCOUNT_ID][self.stack.region]

    @contextmanager
    def answering_gone(self) -> Iterator[None]:
        """While active, posts to connections in `gone` fail with 410, as API Gateway's do, and connections the
        handlers close are gone from then on."""
        backend = self.backend
        post, delete = backend.post_to_connection, backend.delete_connection  # both restored on the way out

        def delete_and_remember(connection_id: str) -> None:
            # moto would drop what was posted; the frames stay readable here (what the client got before closing).
            self.deleted.add(unquote(connection_id))
            self.gone.add(unquote(connection_id))

        def post_unless_gone(data: bytes, connection_id: str) -> None:
            if unquote(connection_id) in self.gone:
                raise GoneError(connection_id)
            post(data=data, connection_id=connection_id)

        backend.post_to_connection = post_unless_gone  # type: ignore[method-assign]
        backend.delete_connection = delete_and_remember  # type: ignore[method-assign]
        try:
            yield
        finally:
            backend.post_to_connection = post  # type: ignore[method-assign]
            backend.delete_connection = delete  # type: ignore[method-assign]

    def frames_posted_to(self, connection_id: str) -> list[dict[str, Any]]:
        # moto keeps each connection under the id as it appeared in the URL path (percent-encoded: ids end in '=').
        data = self.backend.connections[quote(connection_id, safe="")].data.decode("utf-8")
        decoder, frames, position = json.JSONDecoder(), [], 0
        while position < len(data):
            frame, position = decoder.raw_decode(data, position)
            frames.append(frame)
        return frames


@dataclass
class Socket:
    gateway: WebSocketGateway
    connection_id: str
    authorized: dict[str, Any]
    subprotocol: str | None = None
    _seen: int = 0

    def send(self, frame: dict[str, Any] | str) -> list[dict[str, Any]]:
        """Send a frame (a dict is JSON-encoded, a str goes as is); returns the frames this client got back."""
        self.gateway.deliver(self, frame if isinstance(frame, str) else json.dumps(frame))
        return self.received()

    def received(self) -> list[dict[str, Any]]:
        frames = self.gateway.frames_posted_to(self.connection_id)
        new, self._seen = frames[self._seen:], len(frames)
        return new

    def close(self) -> None:
        self.gateway.disconnect(self)

    def vanish(self) -> None:
        """The client's network drops: no $disconnect reaches the API, and posting to it answers 410."""
        self.gateway.gone.add(self.connection_id)
