"""`make demo`: drive the running local deployment like real clients, step by step; stop at the first misstep.

Everything goes through the public interfaces a client or an operator has: Cognito (SRP sign-in, admin group
membership), the booking API over HTTP, the chat over WebSocket, and — to show that the consumers ran — the tables
the deployed consumer functions write (their names read from the functions' configuration).
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
from pycognito.aws_srp import AWSSRP  # type: ignore[import-untyped]
from pycognito.exceptions import SoftwareTokenMFAChallengeException  # type: ignore[import-untyped]
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from .babybloom import BabyBloomEndpoints, sign_in
from .cognito import after_confirmation, confirmed_by_code
from .processes import LocalError
from .selfnest import Endpoints, aws_client

THERAPISTS_GROUP = "therapists"
CHAT_SUBPROTOCOL = Subprotocol("selfnest.v1")   # services/selfnest_chat/frames.py
CORRELATION_HEADER = "X-Correlation-Id"          # services/selfnest_api/selfnest_api/correlation.py


class StepFailedError(Exception):
    """A step of the scenario did not behave; the message says what was expected and what happened."""


@dataclass(frozen=True)
class Person:
    username: str
    password: str
    sub: str
    access_token: str


class Scenario:
    def __init__(self, endpoints: Endpoints, *, say: Callable[[str], None] = print) -> None:
        self.endpoints = endpoints
        self.say = say
        self.cognito = self._client("cognito-idp")
        self.run_id = uuid.uuid4().hex[:6]
        self.last_correlation_id: str | None = None

    # -- the people ------------------------------------------------------------------------------------------------
    def sign_up(self, username: str, attributes: dict[str, str]) -> tuple[str, str]:
        password = f"Demo-{secrets.token_urlsafe(12)}-7a"
        self.cognito.sign_up(ClientId=self.endpoints.mobile_client_id, Username=username, Password=password,
                             UserAttributes=[{"Name": name, "Value": value} for name, value in attributes.items()])
        status = self.cognito.admin_get_user(UserPoolId=self.endpoints.user_pool_id, Username=username)["UserStatus"]
        if status == "CONFIRMED":
            self.confirmed(username)
        return password, status

    def confirm_email(self, username: str) -> None:
        """The person types the code Cognito emailed (MiniStack's is always 123456)."""
        self.cognito.confirm_sign_up(ClientId=self.endpoints.mobile_client_id, Username=username,
                                     ConfirmationCode="123456")
        confirmed_by_code(self.cognito, pool_id=self.endpoints.user_pool_id, username=username)
        self.confirmed(username)

    def confirmed(self, username: str) -> None:
        after_confirmation(self.cognito, self._client("lambda"), pool_id=self.endpoints.user_pool_id,
                           client_id=self.endpoints.mobile_client_id, username=username, region=self.endpoints.region)

    def sign_in(self, username: str, password: str, *, authenticator: pyotp.TOTP | None = None) -> Person:
        """Secure Remote Password sign-in through the mobile app client, as the app does; with an enrolled
        authenticator app, the TOTP challenge that follows is answered with its current code."""
        srp = AWSSRP(username=username, password=password, pool_id=self.endpoints.user_pool_id,
                     client_id=self.endpoints.mobile_client_id, client=self.cognito)
        try:
            result = srp.authenticate_user()
        except SoftwareTokenMFAChallengeException as challenge:
            if authenticator is None:
                raise StepFailedError(f"{username} was asked for an authenticator code but enrolled none") from None
            result = self.cognito.respond_to_auth_challenge(
                ClientId=self.endpoints.mobile_client_id, ChallengeName="SOFTWARE_TOKEN_MFA",
                Session=challenge.get_tokens()["Session"],
                ChallengeResponses={"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": authenticator.now()})
        access_token = result["AuthenticationResult"]["AccessToken"]
        user = self.cognito.admin_get_user(UserPoolId=self.endpoints.user_pool_id, Username=username)
        sub = next(item["Value"] for item in user["UserAttributes"] if item["Name"] == "sub")
        return Person(username=username, password=password, sub=sub, access_token=access_token)

    def enrol_authenticator(self, who: Person) -> pyotp.TOTP:
        """The app's MFA set-up: associate a software token, verify a code from it, make it the preferred MFA."""
        secret = self.cognito.associate_software_token(AccessToken=who.access_token)["SecretCode"]
        authenticator = pyotp.TOTP(secret)
        self.cognito.verify_software_token(AccessToken=who.access_token, UserCode=authenticator.now(),
                                           FriendlyDeviceName="demo authenticator")
        self.cognito.set_user_mfa_preference(AccessToken=who.access_token,
                                             SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})
        return authenticator

    # -- the booking API -------------------------------------------------------------------------------------------
    def api(self, method: str, path: str, *, who: Person, body: Any = None) -> tuple[int, Any]:
        """The answer's status and body; the request's correlation id (the API's X-Correlation-Id answer) is kept
        in `last_correlation_id`."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.endpoints.api}{path}", data=data, method=method,  # noqa: S310
                                         headers={"Authorization": f"Bearer {who.access_token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - the local API
                self.last_correlation_id = response.headers.get(CORRELATION_HEADER)
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            self.last_correlation_id = error.headers.get(CORRELATION_HEADER)
            return error.code, json.loads(error.read() or b"null")

    # -- the chat --------------------------------------------------------------------------------------------------
    def chat(self, who: Person) -> ClientConnection:
        return self.connect_chat(who.access_token)

    def connect_chat(self, token: str) -> ClientConnection:
        """As the app does (`new WebSocket(url, ["selfnest.v1", token])`): the token rides in Sec-WebSocket-Protocol
        beside the chat's subprotocol, never in the URL."""
        return connect(self.endpoints.chat, subprotocols=[CHAT_SUBPROTOCOL, Subprotocol(token)], open_timeout=30)

    @staticmethod
    def send(connection: ClientConnection, frame: dict[str, Any]) -> None:
        connection.send(json.dumps(frame))

    @staticmethod
    def receive(connection: ClientConnection, *, wanted: str, seconds: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            frame: dict[str, Any] = json.loads(connection.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if frame.get("type") in (wanted, "error"):
                return frame
        raise StepFailedError(f"no {wanted} frame within {seconds:.0f}s")

    # -- what the consumers wrote ----------------------------------------------------------------------------------
    def consumer_tables(self) -> dict[str, str]:
        """Table names from the deployed consumer functions' configuration (INBOX_TABLE, AUDIT_TABLE)."""
        found: dict[str, str] = {}
        functions = self._client("lambda")
        for page in functions.get_paginator("list_functions").paginate():
            for function in page["Functions"]:
                variables = function.get("Environment", {}).get("Variables", {})
                found |= {name: value for name, value in variables.items() if name in ("INBOX_TABLE", "AUDIT_TABLE")}
        return found

    def items_about(self, table: str, session_id: str, *, at_least: int = 1,
                    seconds: float = 60) -> list[dict[str, Any]]:
        dynamodb = self._client("dynamodb")
        deadline = time.monotonic() + seconds
        while True:
            items = [item for item in dynamodb.scan(TableName=table)["Items"]
                     if item.get("session_id", {}).get("S") == session_id]
            if len(items) >= at_least or time.monotonic() > deadline:
                return items
            time.sleep(1)

    def _client(self, service: str) -> Any:
        return aws_client(service, endpoint=self.endpoints.emulator, region=self.endpoints.region)


def next_full_hour() -> str:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return start.isoformat().replace("+00:00", "Z")


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailedError(message)


def scenario_steps(s: Scenario) -> list[tuple[str, Callable[[dict[str, Any]], str]]]:
    def client_signs_up(world: dict[str, Any]) -> str:
        name = f"quiet-otter-{s.run_id}"
        password, status = s.sign_up(name, {"custom:account_type": "client"})
        expect(status == "CONFIRMED", f"the PreSignUp trigger should confirm a pseudonymous client, is {status}")
        world["client"] = s.sign_in(name, password)
        return f"{name} signed up with a pseudonym only; PreSignUp confirmed it; signed in (SRP)"

    def therapist_is_admitted(world: dict[str, Any]) -> str:
        name = f"dr-calm-{s.run_id}"
        password, status = s.sign_up(name, {"custom:account_type": "therapist", "email": f"{name}@practice.example"})
        expect(status == "UNCONFIRMED", f"a therapist must verify the email first, is {status}")
        pool = s.endpoints.user_pool_id
        s.confirm_email(name)
        authenticator = s.enrol_authenticator(s.sign_in(name, password))
        s.cognito.admin_add_user_to_group(UserPoolId=pool, Username=name, GroupName=THERAPISTS_GROUP)
        therapist = s.sign_in(name, password, authenticator=authenticator)
        status_code, body = s.api("PUT", "/therapists/me", who=therapist, body={
            "display_name": "Dr. Ada Calm", "bio": "Cognitive behavioural therapy.", "languages": ["en"],
            "specialties": ["anxiety"]})
        expect(status_code in (200, 201), f"publishing the profile should succeed, got {status_code} {body}")
        world["therapist"] = therapist
        return (f"{name} verified the email, enrolled an authenticator app (TOTP), was admitted to "
                f"'{THERAPISTS_GROUP}' by an admin, signed in with SRP + TOTP, published a profile")

    def client_books(world: dict[str, Any]) -> str:
        client, therapist = world["client"], world["therapist"]
        status_code, listed = s.api("GET", "/therapists", who=client)
        expect(status_code == 200 and any(item.get("id") == therapist.sub for item in _items(listed)),
               f"the directory should list the therapist, got {status_code} {listed}")
        starts_at = next_full_hour()
        status_code, session = s.api("POST", "/sessions", who=client,
                                     body={"therapist_id": therapist.sub, "starts_at": starts_at})
        expect(status_code == 201, f"booking should answer 201, got {status_code} {session}")
        world["session_id"], world["correlation_id"] = session["id"], s.last_correlation_id
        return f"booked session {session['id']} at {starts_at} (correlation id {s.last_correlation_id})"

    def consumers_receive(world: dict[str, Any]) -> str:
        tables = s.consumer_tables()
        expect(set(tables) == {"INBOX_TABLE", "AUDIT_TABLE"}, f"consumer tables not found: {tables}")
        inbox = s.items_about(tables["INBOX_TABLE"], world["session_id"], at_least=2)
        expect(len(inbox) == 2, f"both participants should have an inbox item, found {len(inbox)}")
        audit = s.items_about(tables["AUDIT_TABLE"], world["session_id"])
        expect(len(audit) >= 1, "the audit trail should record the booking")
        return (f"notifications consumer wrote {len(inbox)} inbox items, audit consumer {len(audit)} record(s) "
                "(SNS filter -> SQS -> event source mapping, run by the emulator)")

    def both_chat(world: dict[str, Any]) -> str:
        session_id = world["session_id"]
        client_socket, therapist_socket = s.chat(world["client"]), s.chat(world["therapist"])
        world["sockets"] = [client_socket, therapist_socket]
        for socket_ in (client_socket, therapist_socket):
            s.send(socket_, {"action": "joinSession", "sessionId": session_id})
            joined = s.receive(socket_, wanted="joined", seconds=60)
            expect(joined.get("type") == "joined", f"joining should succeed, got {joined}")
        s.send(client_socket, {"action": "sendMessage", "sessionId": session_id, "text": "Hello, I'm here."})
        got = s.receive(therapist_socket, wanted="message")
        expect(got.get("text") == "Hello, I'm here.", f"the therapist should receive the message, got {got}")
        s.send(therapist_socket, {"action": "sendMessage", "sessionId": session_id, "text": "Welcome."})
        got = s.receive(client_socket, wanted="message")
        expect(got.get("text") == "Welcome.", f"the client should receive the reply, got {got}")
        s.send(client_socket, {"action": "fetchHistory", "sessionId": session_id})
        history, page = s.receive(client_socket, wanted="history"), s.receive(client_socket, wanted="historyPage")
        texts = [item.get("text") for item in history.get("messages", [])]
        expect(texts == ["Hello, I'm here.", "Welcome."] and page.get("olderHistory") is False,
               f"fetching the history should return both messages, got {history} then {page}")
        return "client and therapist joined over WebSocket, exchanged two messages and fetched them as history"

    def third_user_refused(world: dict[str, Any]) -> str:
        name = f"curious-fox-{s.run_id}"
        password, _ = s.sign_up(name, {"custom:account_type": "client"})
        stranger = s.sign_in(name, password)
        status_code, _ = s.api("DELETE", f"/sessions/{world['session_id']}", who=stranger)
        expect(status_code in (403, 404), f"a third user must not cancel the session, got {status_code}")
        with s.chat(stranger) as socket_:
            s.send(socket_, {"action": "joinSession", "sessionId": world["session_id"]})
            answer = s.receive(socket_, wanted="joined")
        expect(answer.get("type") == "error", f"a third user must not join the chat, got {answer}")
        try:
            with s.connect_chat("not-a-token"):
                raise StepFailedError("a connection without a valid token must be refused")
        except InvalidStatus as refusal:
            refused_with = refusal.response.status_code
        return (f"{name}: cancel refused ({status_code}), join refused ({answer.get('code')}); "
                f"a forged token is refused at $connect ({refused_with})")

    def client_cancels(world: dict[str, Any]) -> str:
        for socket_ in world.pop("sockets", []):
            socket_.close()
        status_code, body = s.api("DELETE", f"/sessions/{world['session_id']}", who=world["client"])
        expect(status_code in (200, 204), f"cancelling should succeed, got {status_code} {body}")
        status_code, sessions = s.api("GET", "/sessions", who=world["client"])
        mine = [item for item in _items(sessions) if item.get("id") == world["session_id"]]
        expect(bool(mine) and mine[0].get("status") == "cancelled", f"the session should be cancelled, got {mine}")
        return f"session {world['session_id']} cancelled"

    return [("an anonymous client signs up with a pseudonym only", client_signs_up),
            ("a therapist signs up and is admitted", therapist_is_admitted),
            ("the client books a session", client_books),
            ("the notifications and audit consumers receive the event", consumers_receive),
            ("both join the chat and exchange messages", both_chat),
            ("a third user is refused", third_user_refused),
            ("the client cancels", client_cancels)]


def babybloom_steps(state: Path, endpoints: BabyBloomEndpoints,
                    run_id: str) -> list[tuple[str, Callable[[dict[str, Any]], str]]]:
    user = f"bloom-{run_id}"
    signed_in = {"Authorization": f"Bearer {sign_in(state, user)}", "Content-Type": "application/json"}

    def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(f"{endpoints.functions}{path}", method=method,  # noqa: S310 - local host
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers=signed_in if headers is None else headers)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - the local host
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None

    def saves_profile(world: dict[str, Any]) -> str:
        status, _ = call("GET", "/profile", headers={})
        expect(status == 401, f"without signing in the platform should answer 401, got {status}")
        due = (datetime.now(UTC).date() + timedelta(weeks=20)).isoformat()
        status, profile = call("PUT", "/profile", {"dueDate": due})
        expect(status in (200, 201), f"saving the profile should succeed, got {status} {profile}")
        world["week"] = (profile.get("pregnancy") or {}).get("weekOfPregnancy")
        return (f"{user} signed in (token from the local Entra ID stand-in), saved a profile due {due}: "
                f"week {world['week']}")

    def reads_this_week(world: dict[str, Any]) -> str:
        status, content = call("GET", "/content/current")
        expect(status == 200 and isinstance(content, dict), f"this week's content should be there, got {status}")
        return f"this week's content: week {content.get('week')}, {str(content.get('title', ''))[:60]!r}"

    def writes_journal(world: dict[str, Any]) -> str:
        today = datetime.now(UTC).date()
        for offset, mood in ((1, 3), (0, 4)):
            day = (today - timedelta(days=offset)).isoformat()
            status, entry = call("POST", "/journal", {"date": day, "mood": mood, "symptoms": ["nausea"],
                                                      "notes": "short walk"})
            expect(status == 201, f"a journal entry should be stored, got {status} {entry}")
        start, end = (today - timedelta(days=7)).isoformat(), today.isoformat()
        status, listed = call("GET", f"/journal?from={start}&to={end}")
        entries = _items(listed)
        expect(status == 200 and len(entries) == 2, f"both entries should be listed, got {status} {listed}")
        return f"wrote 2 journal entries and read them back ({start} .. {end})"

    return [("BabyBloom: a user saves a profile", saves_profile),
            ("BabyBloom: reads this week's content", reads_this_week),
            ("BabyBloom: writes journal entries", writes_journal)]


def _items(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, list):
                return value
    return []


def run_demo(state: Path, *, say: Callable[[str], None] = print) -> int:
    endpoints = Endpoints.load(state)
    scenario = Scenario(endpoints, say=say)
    world: dict[str, Any] = {}
    started = time.monotonic()
    steps = scenario_steps(scenario)
    bloom = BabyBloomEndpoints.load(state)
    if bloom is not None:
        steps += babybloom_steps(state, bloom, scenario.run_id)
    for number, (title, step) in enumerate(steps, start=1):
        say(f"[{number}/{len(steps)}] {title} ...")
        try:
            say(f"      ok: {step(world)}")
        except (StepFailedError, LocalError) as failure:
            say(f"      FAILED: {failure}")
            return 1
        except Exception as error:   # an unexpected answer from a service is a misbehaving step too
            say(f"      FAILED: {type(error).__name__}: {error}")
            return 1
    say(f"demo passed: {len(steps)} steps in {time.monotonic() - started:.1f}s")
    if "session_id" in world:
        say(f"follow the booking through the API's and the functions' logs: make follow ID={world['session_id']}"
            f"   (its request's correlation id: {world['correlation_id']})")
    return 0
