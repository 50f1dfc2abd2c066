"""`$connect` authorizer: lets a WebSocket connect only with a valid Cognito access token of this pool.

Browsers cannot set an Authorization header on a WebSocket handshake, so the client offers two subprotocols,
`selfnest.v1` and its access token (`new WebSocket(url, ["selfnest.v1", token])`): the token stays out of the URL
and of every log that records URLs. `$connect` answers with the `selfnest.v1` subprotocol.
The check is the booking API's own verifier (`selfnest_api.auth`, packaged into this
asset): RS256 signature against the pool's JWKS, issuer, app client, expiry and `token_use` access.

Outcomes: a valid token → Allow, with the caller's sub, username and groups as context for `$connect`; a missing or
invalid token → Deny (API Gateway answers 403), the reason logged; the JWKS cannot be fetched → the error propagates
and API Gateway answers 500, so a client retries instead of treating a Cognito outage as a refusal.
"""

from __future__ import annotations

import os
import re
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerRequestEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from frames import SUBPROTOCOL
from selfnest_api.auth import TokenVerifier
from selfnest_api.errors import InvalidTokenError, MissingTokenError

logger = Logger()
SUBPROTOCOL_HEADER = "sec-websocket-protocol"
USER_POOL_ID = re.compile(r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)_[0-9A-Za-z]+")


@cache
def verifier() -> TokenVerifier:
    """Built once per container: the verifier caches the pool's keys between invocations."""
    pool_id = os.environ["USER_POOL_ID"]
    match = USER_POOL_ID.fullmatch(pool_id)
    if match is None:
        raise RuntimeError(f"USER_POOL_ID={pool_id!r} is not a Cognito user pool id such as eu-west-1_AbCdEf123")
    issuer = f"https://cognito-idp.{match['region']}.amazonaws.com/{pool_id}"
    client_ids = [client_id.strip() for client_id in os.environ["USER_POOL_CLIENT_IDS"].split(",") if client_id]
    # Tests point this at a local emulator's JWKS; deployed functions use the pool's published keys.
    jwks_url = os.environ.get("COGNITO_JWKS_URL") or f"{issuer}/.well-known/jwks.json"
    return TokenVerifier(issuer=issuer, client_ids=client_ids, jwks_url=jwks_url)


def policy(effect: str, *, principal: str, route_arn: str, context: dict[str, str | int]) -> dict[str, Any]:
    return {"principalId": principal, "context": context, "policyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": "execute-api:Invoke", "Resource": route_arn}]}}


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    try:
        caller = verifier().caller_from_token(token_from_subprotocols(event.headers))
    except (InvalidTokenError, MissingTokenError) as refusal:
        logger.info("connection refused", extra={"reason": refusal.detail})
        return policy("Deny", principal="anonymous", route_arn=event.method_arn, context={"reason": refusal.detail})
    logger.info("connection allowed", extra={"sub": str(caller.sub)})
    # Authorizer context values must be strings, numbers or booleans: groups travel comma-separated. `$connect`
    # records the groups and the token's expiry with the connection; joins and messages are checked against them.
    return policy("Allow", principal=str(caller.sub), route_arn=event.method_arn, context={
        "sub": str(caller.sub), "username": caller.username, "groups": ",".join(sorted(caller.groups)),
        "expiresAt": caller.expires_at})


def token_from_subprotocols(headers: dict[str, str] | None) -> str:
    """The access token offered beside SUBPROTOCOL in Sec-WebSocket-Protocol."""
    offered = next((value for name, value in (headers or {}).items() if name.lower() == SUBPROTOCOL_HEADER), "")
    protocols = [protocol.strip() for protocol in offered.split(",") if protocol.strip()]
    if SUBPROTOCOL not in protocols:
        raise MissingTokenError(f"no token: connect with the subprotocols {SUBPROTOCOL!r} and the access token")
    tokens = [protocol for protocol in protocols if protocol != SUBPROTOCOL]
    if len(tokens) != 1:
        raise MissingTokenError(f"offer exactly one access token beside the {SUBPROTOCOL!r} subprotocol")
    return tokens[0]
