"""Frames to connected clients through API Gateway's management API; a connection that is gone is forgotten."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_websocket_event import (
    APIGatewayWebSocketEventRequestContext,
)
from botocore.exceptions import ClientError
from frames import encode
from store import Connections

logger = Logger()
GONE = 410


class Delivery:
    """Posts frames to this API stage's connections (`https://{domain}/{stage}/@connections/{id}`)."""

    def __init__(self, request: APIGatewayWebSocketEventRequestContext) -> None:
        # In Lambda the endpoint is the API's domain and stage, taken from the event. Under a local emulator the SDK
        # reads it from its own settings: AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI (MiniStack: <emulator>/<stage>),
        # else AWS_ENDPOINT_URL (moto serves the management API at its root).
        endpoint = None if os.environ.get("AWS_ENDPOINT_URL") else f"https://{request.domain_name}/{request.stage}"
        self._client: Any = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)

    def post(self, connection_id: str, frame: dict[str, Any]) -> bool:
        """Send `frame`; False (and the connection's item deleted) if the client went away without a $disconnect."""
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=encode(frame))
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.response["Error"]["Code"] != "GoneException" and status != GONE:
                raise
            logger.info("connection gone; forgetting it", extra={"connection_id": connection_id})
            Connections.remove(connection_id)
            return False
        return True

    def close(self, connection_id: str, farewell: dict[str, Any]) -> None:
        """Tell the client why, then end its connection (API Gateway then runs $disconnect) and forget it."""
        if self.post(connection_id, farewell):
            try:
                self._client.delete_connection(ConnectionId=connection_id)
            except ClientError as error:
                if error.response["Error"]["Code"] != "GoneException":
                    raise
        Connections.remove(connection_id)
        logger.info("connection closed: token expired", extra={"connection_id": connection_id})
