"""Fixtures for the booking API: a throwaway PostgreSQL, moto (server mode) for Cognito, SNS, SQS and Secrets
Manager, and the API itself serving on 127.0.0.1 in this process.

TEMPORARY: `moto_endpoint`, `identity` and `session_events` stand in for the shared, template-built fixtures of
tests/services/conftest.py; delete them here once those land (same names, same interfaces).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from selfnest_api.api import ApiService
from selfnest_api.settings import load_settings

from .api_client import ApiClient
from .people import Identity, SessionEvents
from .postgres import DatabaseLogin, TemporaryPostgres, temporary_postgres

REGION = "eu-west-1"
PASSWORD = "Calm-Harbour-Morning-42"


# -- TEMPORARY stand-ins for the shared fixtures (tests/services/conftest.py) ---------------------------------------

@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as environment:
        for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}.items():
            environment.setenv(name, value)
        try:
            yield endpoint
        finally:
            server.stop()


@dataclass(frozen=True)
class Tokens:
    username: str
    sub: str
    access_token: str
    id_token: str


class TemporaryIdentity:
    """A user pool with the three groups and a web and a mobile app client, created by hand (no triggers)."""

    def __init__(self, *, endpoint: str) -> None:
        self.cognito = boto3.client("cognito-idp", region_name=REGION)
        self.pool_id = self.cognito.create_user_pool(PoolName="selfnest-test")["UserPool"]["Id"]
        self.region = REGION
        self.issuer = f"https://cognito-idp.{REGION}.amazonaws.com/{self.pool_id}"
        self.jwks_url = f"{endpoint}/{self.pool_id}/.well-known/jwks.json"
        for group in ("clients", "therapists", "admins"):
            self.cognito.create_group(UserPoolId=self.pool_id, GroupName=group)
        self.api_client_ids = [
            self.cognito.create_user_pool_client(UserPoolId=self.pool_id, ClientName=name,
                                                 ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])
            ["UserPoolClient"]["ClientId"] for name in ("web", "mobile")]

    def client(self, pseudonym: str) -> Tokens:
        self.cognito.sign_up(ClientId=self.api_client_ids[1], Username=pseudonym, Password=PASSWORD)
        self.cognito.admin_confirm_sign_up(UserPoolId=self.pool_id, Username=pseudonym)
        return self._signed_in(pseudonym, groups=["clients"])

    def therapist(self, username: str, *, approved: bool = True) -> Tokens:
        self.cognito.sign_up(ClientId=self.api_client_ids[0], Username=username, Password=PASSWORD,
                             UserAttributes=[{"Name": "email", "Value": f"{username}@practice.example"}])
        self.cognito.admin_confirm_sign_up(UserPoolId=self.pool_id, Username=username)
        self.cognito.admin_update_user_attributes(UserPoolId=self.pool_id, Username=username,
                                                  UserAttributes=[{"Name": "email_verified", "Value": "true"}])
        return self._signed_in(username, groups=["therapists"] if approved else [])

    def admin(self, username: str) -> Tokens:
        self.cognito.admin_create_user(UserPoolId=self.pool_id, Username=username, MessageAction="SUPPRESS")
        self.cognito.admin_set_user_password(UserPoolId=self.pool_id, Username=username, Password=PASSWORD,
                                             Permanent=True)
        return self._signed_in(username, groups=["admins"])

    def _signed_in(self, username: str, *, groups: list[str]) -> Tokens:
        for group in groups:
            self.cognito.admin_add_user_to_group(UserPoolId=self.pool_id, Username=username, GroupName=group)
        result = self.cognito.initiate_auth(ClientId=self.api_client_ids[0], AuthFlow="USER_PASSWORD_AUTH",
                                            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD})
        attributes = self.cognito.admin_get_user(UserPoolId=self.pool_id, Username=username)["UserAttributes"]
        sub = next(attribute["Value"] for attribute in attributes if attribute["Name"] == "sub")
        return Tokens(username=username, sub=sub, access_token=result["AuthenticationResult"]["AccessToken"],
                      id_token=result["AuthenticationResult"]["IdToken"])


@pytest.fixture(scope="session")
def identity(moto_endpoint: str) -> TemporaryIdentity:
    return TemporaryIdentity(endpoint=moto_endpoint)


class CapturedEvents:
    """An SQS queue subscribed to a topic; drain() returns the event messages that arrived since the last drain."""

    def __init__(self, *, topic_arn: str, queue_name: str) -> None:
        self.topic_arn = topic_arn
        self._sqs = boto3.client("sqs", region_name=REGION)
        self._queue_url = self._sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])
        boto3.client("sns", region_name=REGION).subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"})

    def drain(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            messages = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return events
            for message in messages:
                events.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture(scope="session")
def session_events(moto_endpoint: str) -> CapturedEvents:
    topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name="selfnest-test-session-events")["TopicArn"]
    return CapturedEvents(topic_arn=topic_arn, queue_name="selfnest-test-session-events-capture")


# -- the API's own fixtures -----------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres() -> Iterator[TemporaryPostgres]:
    # Not pytest's tmp_path: its parent is private to the user, and as root the cluster runs as another account.
    directory = Path(tempfile.mkdtemp(prefix="selfnest-api-pg-"))
    directory.chmod(0o755)
    try:
        with temporary_postgres(directory) as cluster:
            yield cluster
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def store_secret(login: DatabaseLogin, *, region: str) -> str:
    """The login as an RDS-shaped secret in moto's Secrets Manager; returns the secret's ARN."""
    created = boto3.client("secretsmanager", region_name=region).create_secret(
        Name=f"selfnest-test/{login.dbname}-{uuid.uuid4().hex[:8]}", SecretString=login.secret_string())
    return created["ARN"]


def api_environment(*, secret_arn: str, identity: Identity, topic_arn: str,
                    **overrides: str) -> dict[str, str]:
    """The task's environment as the web stack sets it, pointed at the test PostgreSQL and moto."""
    return {"DB_SECRET_ARN": secret_arn, "DB_SSLMODE": "disable", "USER_POOL_ID": identity.pool_id,
            "USER_POOL_CLIENT_IDS": ",".join(identity.api_client_ids), "COGNITO_JWKS_URL": identity.jwks_url,
            "SESSION_EVENTS_TOPIC_ARN": topic_arn, **overrides}


@dataclass(frozen=True, kw_only=True)
class RunningApi:
    service: ApiService
    client: ApiClient
    login: DatabaseLogin
    secret_arn: str


class ApiLauncher:
    """Starts API services in this process, each on its own database and port; stops them all at the end."""

    def __init__(self, *, postgres: TemporaryPostgres, identity: Identity, topic_arn: str) -> None:
        self._postgres = postgres
        self._identity = identity
        self._topic_arn = topic_arn
        self._running: list[ApiService] = []

    def start(self, *, database: str, topic_arn: str | None = None, retry_seconds: float = 5.0) -> RunningApi:
        login = self._postgres.create_database(name=database)
        secret_arn = store_secret(login, region=self._identity.region)
        settings = load_settings(api_environment(secret_arn=secret_arn, identity=self._identity,
                                                 topic_arn=topic_arn or self._topic_arn))
        service = ApiService(settings=dataclasses.replace(settings, port=0), host="127.0.0.1",
                             outbox_retry_seconds=retry_seconds)
        self._running.append(service)
        service.start()
        return RunningApi(service=service, client=ApiClient(f"http://127.0.0.1:{service.port}"), login=login,
                          secret_arn=secret_arn)

    def stop_all(self) -> None:
        while self._running:
            self._running.pop().stop()


@pytest.fixture(scope="session")
def launcher(postgres: TemporaryPostgres, identity: Identity,
             session_events: SessionEvents) -> Iterator[ApiLauncher]:
    launcher = ApiLauncher(postgres=postgres, identity=identity, topic_arn=session_events.topic_arn)
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture(scope="session")
def api(launcher: ApiLauncher) -> RunningApi:
    """The API most tests share, on database `selfnest`; tests keep apart by using their own users."""
    return launcher.start(database="selfnest")
