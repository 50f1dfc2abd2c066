"""Secret rotation: the password changes in PostgreSQL and in the secret; the running API reconnects by itself."""

from __future__ import annotations

import boto3
import pytest

from .conftest import ApiLauncher
from .people import Identity, listed_therapist, unique
from .postgres import TemporaryPostgres


def test_the_api_rereads_the_secret_when_its_password_is_refused(launcher: ApiLauncher, postgres: TemporaryPostgres,
                                                                  identity: Identity,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    api = launcher.start(database="selfnest_rotation")
    therapist = listed_therapist(identity, api.client)
    client = identity.client(unique("client"))

    rotated = postgres.change_password(api.login)
    boto3.client("secretsmanager", region_name=identity.region).put_secret_value(
        SecretId=api.secret_arn, SecretString=rotated.secret_string())
    # Pooled connections outlive a password change; end them, as a failover or an idle timeout would.
    assert postgres.disconnect_everyone(username=api.login.username) >= 1

    capsys.readouterr()
    reply = api.client.get("/therapists", token=client.access_token)
    assert reply.status == 200, reply.body
    assert therapist.sub in [entry["id"] for entry in reply.body["therapists"]]
    logged = capsys.readouterr().out
    assert '"event": "database_password_refused"' in logged
    assert '"event": "database_secret_reread"' in logged
    assert rotated.password not in logged
