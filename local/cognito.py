"""The one Cognito trigger MiniStack does not invoke: PostConfirmation (it runs PreSignUp and PreTokenGeneration).

After a confirmation, `after_confirmation` invokes the pool's own PostConfirmation function inside the emulator —
the deployed function, from its deployed asset, under the emulator's Lambda — with the event Cognito sends.
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
