"""Tokens a legitimate sign-in never produces — expired, forged, from another pool — built from real moto tokens
(the booking API's tests; tests/services/local_cognito.py builds them from the local deployment's pool).
"""

from __future__ import annotations

from typing import Any

import boto3
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.utilities.utils import load_resource

PASSWORD = "Quiet-Forest-Evening-7"


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def signed_with_pool_key(claims: dict[str, Any]) -> str:
    """Signed by the key moto's user pools sign with (the private half of the JWKS the verifier trusts)."""
    private_jwk = load_resource("cognitoidp/resources/jwks-private.json")
    key = jwt.PyJWK(private_jwk, algorithm="RS256")
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": private_jwk["kid"]})


def forged(claims: dict[str, Any]) -> str:
    return forged_under(load_resource("cognitoidp/resources/jwks-private.json")["kid"], claims)


def forged_under(kid: str, claims: dict[str, Any]) -> str:
    """The claims, under the pool's key id `kid`, signed by a key the attacker made up."""
    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, attacker_key, algorithm="RS256", headers={"kid": kid})


def signed_in_through(*, pool_id: str, client_id: str, username: str, groups: list[str]) -> str:
    """An access token for a new user of `pool_id`, signed in through app client `client_id`."""
    cognito = boto3.client("cognito-idp")
    cognito.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    for group in groups:
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=group)
    result = cognito.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                   AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD})
    token: str = result["AuthenticationResult"]["AccessToken"]
    return token


def token_from_another_pool(username: str) -> str:
    """An access token of a separate pool (same moto signing key, different issuer), for a `clients` member."""
    cognito = boto3.client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=f"other-{username}")["UserPool"]["Id"]
    cognito.create_group(UserPoolId=pool_id, GroupName="clients")
    client = cognito.create_user_pool_client(UserPoolId=pool_id, ClientName="other",
                                             ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])
    return signed_in_through(pool_id=pool_id, client_id=client["UserPoolClient"]["ClientId"], username=username,
                             groups=["clients"])
