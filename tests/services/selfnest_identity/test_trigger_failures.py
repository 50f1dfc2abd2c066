"""When Cognito's own API fails inside the pre-token trigger, the sign-in fails closed with a message that names no
account, role or pool (Cognito shows a trigger's error message to the app)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError

TRIGGERS = Path(__file__).resolve().parents[3] / "services" / "selfnest_identity" / "triggers.py"
ROLE_ARN = "arn:aws:sts::123456789012:assumed-role/selfnest-dev-PreTokenRole/fn"


def load_triggers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("selfnest_identity_triggers_under_test", TRIGGERS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class DeniedCognito:
    def __init__(self, failing: str) -> None:
        self.failing = failing

    def __getattr__(self, operation: str) -> Any:
        def call(**_: object) -> dict[str, Any]:
            if operation == self.failing:
                raise ClientError({"Error": {"Code": "AccessDeniedException",
                                             "Message": f"User: {ROLE_ARN} is not authorized"}}, operation)
            return {"UserMFASettingList": []}
        return call


def therapist_token_event() -> dict[str, Any]:
    return {"version": "2", "triggerSource": "TokenGeneration_Authentication", "userPoolId": "eu-west-1_Pool",
            "userName": "therapist-1",
            "request": {"userAttributes": {"sub": "sub-1", "email_verified": "true"},
                        "groupConfiguration": {"groupsToOverride": ["therapists"]}},
            "response": {}}


@pytest.mark.parametrize("failing", ["admin_get_user", "admin_remove_user_from_group"])
def test_a_failing_cognito_call_fails_the_sign_in_without_naming_the_account(
        failing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    triggers = load_triggers()
    monkeypatch.setenv("THERAPISTS_GROUP", "therapists")
    monkeypatch.setattr(triggers, "_cognito", lambda: DeniedCognito(failing))
    with pytest.raises(triggers.TherapistCheckUnavailableError) as refused:
        triggers.pre_token_generation(therapist_token_event(), None)
    assert "123456789012" not in str(refused.value) and "arn:" not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


COGNITO_TRIGGER_TIMEOUT_SECONDS = 5


def test_a_hanging_cognito_call_gives_up_inside_the_triggers_timeout() -> None:
    calls = load_triggers().COGNITO_CALLS
    worst = calls.retries["total_max_attempts"] * (calls.connect_timeout + calls.read_timeout)
    assert worst < COGNITO_TRIGGER_TIMEOUT_SECONDS
