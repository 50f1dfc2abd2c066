"""The two parts of a Cognito confirmation MiniStack leaves out (it runs PreSignUp and PreTokenGeneration).

- A sign-up confirmed with the code sent to an auto-verified attribute (the pool's AutoVerifiedAttributes: email)
  leaves that attribute verified on Cognito; MiniStack leaves `email_verified` unset. `confirmed_by_code` sets it,
  only for attributes the pool auto-verifies and the user has.
- PostConfirmation is not invoked: `after_confirmation` invokes the pool's own PostConfirmation function inside the
  emulator — the deployed function, from its deployed asset, under the emulator's Lambda — with the event Cognito
  sends.
"""

from __future__ import annotations

import json
from typing import Any


def after_confirmation(cognito: Any, functions: Any, *, pool_id: str, client_id: str, username: str,
                       region: str) -> None:
    trigger = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"].get("LambdaConfig", {}).get(
        "PostConfirmation")
    if trigger is None:
        return
    user = cognito.admin_get_user(UserPoolId=pool_id, Username=username)
    event = {"version": "1", "triggerSource": "PostConfirmation_ConfirmSignUp", "region": region,
             "userPoolId": pool_id, "userName": username,
             "callerContext": {"awsSdkVersion": "refarch-local", "clientId": client_id},
             "request": {"userAttributes": {item["Name"]: item["Value"] for item in user["UserAttributes"]}},
             "response": {}}
    answer = functions.invoke(FunctionName=trigger, Payload=json.dumps(event).encode())
    if answer.get("FunctionError"):
        raise RuntimeError(f"PostConfirmation failed: {answer['Payload'].read().decode()}")


def confirmed_by_code(cognito: Any, *, pool_id: str, username: str) -> list[str]:
    """What Cognito records when a sign-up is confirmed with the emailed code; returns the attributes it marked."""
    auto_verified = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"].get("AutoVerifiedAttributes", [])
    user = cognito.admin_get_user(UserPoolId=pool_id, Username=username)
    attributes = {item["Name"]: item["Value"] for item in user["UserAttributes"]}
    marked = [f"{name}_verified" for name in auto_verified
              if name in attributes and attributes.get(f"{name}_verified") != "true"]
    if marked:
        cognito.admin_update_user_attributes(UserPoolId=pool_id, Username=username,
                                             UserAttributes=[{"Name": name, "Value": "true"} for name in marked])
    return marked
