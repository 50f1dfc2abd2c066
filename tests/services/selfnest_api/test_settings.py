"""Start-up refuses bad settings and unreachable dependencies with one line and a non-zero exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from refarch.local.processes import free_port
from selfnest_api import __main__ as api_main
from selfnest_api.database import Credentials
from selfnest_api.settings import load_settings

from tests.entry_points import run_main

from . import SERVICE_DIRECTORY
from .api_client import ApiClient
from .conftest import api_environment, store_secret
from .people import Identity, SessionEvents
from .postgres import DatabaseLogin, TemporaryPostgres


@pytest.fixture(scope="module")
def good_environment(postgres: TemporaryPostgres, identity: Identity,
                     session_events: SessionEvents) -> dict[str, str]:
    login = postgres.create_database(name="selfnest_settings")
    return api_environment(secret_arn=store_secret(login, region=identity.region), identity=identity,
                           topic_arn=session_events.topic_arn, PORT=str(free_port()))


def process_environment(settings: dict[str, str]) -> dict[str, str]:
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(("DB_", "USER_POOL"))}
    return {**inherited, **settings}


def start(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m selfnest_api` with `environment`, in-process (test_good_settings_serve_until_sigterm and
    test_bad_settings_stop_the_process start the real process)."""
    return run_main(api_main.main, [], environ=process_environment(environment))


def test_bad_settings_stop_the_process(good_environment: dict[str, str]) -> None:
    finished = subprocess.run([sys.executable, "-m", "selfnest_api"], cwd=SERVICE_DIRECTORY, capture_output=True,
                              env=process_environment({**good_environment, "USER_POOL_ID": ""}), text=True,
                              check=False, timeout=60)
    assert (finished.returncode, finished.stderr, finished.stdout) == (2, "selfnest-api: USER_POOL_ID is not set\n", "")


def test_good_settings_serve_until_sigterm(good_environment: dict[str, str]) -> None:
    server = subprocess.Popen([sys.executable, "-m", "selfnest_api"], cwd=SERVICE_DIRECTORY, text=True,
                              env=process_environment(good_environment), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        assert server.stdout is not None
        for line in server.stdout:  # the process says when it listens; no sleeping and polling
            if '"event": "serving"' in line:
                break
        client = ApiClient(f"http://127.0.0.1:{good_environment['PORT']}")
        assert client.get("/healthz").status == 200
        server.send_signal(signal.SIGTERM)
        remaining_output, errors = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    assert (server.returncode, errors) == (0, "")
    assert '"event": "stopped"' in remaining_output


ONE_WAY_TO_SIGN_IN = ("selfnest-api: set exactly one of DB_IAM_USER (IAM database authentication) and DB_SECRET_ARN "
                      "(a secret with a username and password) to say how to sign in to the database")
BAD_SETTINGS = {
    "no user pool": ({"USER_POOL_ID": ""}, 2, "selfnest-api: USER_POOL_ID is not set"),
    "user pool without region": ({"USER_POOL_ID": "abc"}, 2,
                                 "selfnest-api: USER_POOL_ID='abc' is not valid: expected eu-west-1_AbCdEf123"),
    "port out of range": ({"PORT": "70000"}, 2,
                          "selfnest-api: PORT='70000' is not valid: expected a TCP port between 1 and 65535"),
    "unknown ssl mode": ({"DB_SSLMODE": "sometimes"}, 2, "selfnest-api: DB_SSLMODE='sometimes' is not valid: "
                         "expected one of disable, allow, prefer, require, verify-ca, verify-full"),
    "no app clients": ({"USER_POOL_CLIENT_IDS": " , "}, 2,
                       "selfnest-api: USER_POOL_CLIENT_IDS is not valid: expected comma-separated Cognito app "
                       "client ids"),
    "topic not an ARN": ({"SESSION_EVENTS_TOPIC_ARN": "session-events"}, 2,
                         "selfnest-api: SESSION_EVENTS_TOPIC_ARN='session-events' is not valid: expected an SNS "
                         "topic ARN"),
    "app secret not an ARN": ({"APP_DB_SECRET_ARN": "selfnest-api"}, 2,
                              "selfnest-api: APP_DB_SECRET_ARN='selfnest-api' is not valid: expected a Secrets "
                              "Manager secret ARN"),
    "no way to sign in": ({"DB_SECRET_ARN": ""}, 2, ONE_WAY_TO_SIGN_IN),
    "two ways to sign in": ({"DB_IAM_USER": "selfnest_api_iam"}, 2, ONE_WAY_TO_SIGN_IN),
    "iam user not a user name": ({"DB_SECRET_ARN": "", "DB_IAM_USER": "Robert'); DROP"}, 2,
                                 "selfnest-api: DB_IAM_USER=\"Robert'); DROP\" is not valid: expected a PostgreSQL "
                                 "user name"),
    "iam without region": ({"DB_SECRET_ARN": "", "DB_IAM_USER": "selfnest_api_iam", "DB_HOST": "db.example.com",
                            "DB_PORT": "5432"}, 2, "selfnest-api: DB_REGION is not set"),
    "iam without host": ({"DB_SECRET_ARN": "", "DB_IAM_USER": "selfnest_api_iam", "DB_REGION": "eu-west-1",
                          "DB_HOST": "", "DB_PORT": "5432"}, 2,
                         "selfnest-api: DB_HOST is not set (DB_IAM_USER signs a token for the database's host and "
                         "port)"),
    "iam without tls": ({"DB_SECRET_ARN": "", "DB_IAM_USER": "selfnest_api_iam", "DB_REGION": "eu-west-1",
                         "DB_HOST": "db.example.com", "DB_PORT": "5432", "DB_SSLMODE": "prefer"}, 2,
                        "selfnest-api: DB_SSLMODE='prefer' is not valid with DB_IAM_USER: RDS takes IAM tokens over "
                        "TLS only (expected one of require, verify-ca, verify-full)"),
    "iam with tls but no certificate check": (
        {"DB_SECRET_ARN": "", "DB_IAM_USER": "selfnest_api_iam", "DB_REGION": "eu-west-1", "DB_HOST": "db.example.com",
         "DB_PORT": "5432", "DB_NAME": "selfnest", "DB_SSLMODE": "require"}, 2,
        "selfnest-api: DB_SSLMODE='require' is not valid with DB_IAM_USER and DB_HOST=db.example.com: the token signs "
        "in for 15 minutes, so only a server whose certificate names that host may receive it (verify-full; a "
        "loopback host may use another mode)"),
    "the master's password without a certificate check": (
        {"DB_HOST": "db.example.com", "DB_PORT": "5432", "DB_SSLMODE": "require"}, 2,
        "selfnest-api: DB_SSLMODE='require' is not valid with DB_SECRET_ARN and DB_HOST=db.example.com: the secret's "
        "password would go to whoever answers, so only a server whose certificate names that host may receive it "
        "(verify-full; a loopback host may use another mode)"),
    "retirement neither true nor false": ({"RETIRE_PRE_IAM_LOGINS": "yes"}, 2,
                                          "selfnest-api: RETIRE_PRE_IAM_LOGINS='yes' is not valid: expected true or "
                                          "false"),
    "iam without database name": ({"DB_SECRET_ARN": "", "DB_IAM_USER": "selfnest_api_iam", "DB_REGION": "eu-west-1",
                                   "DB_HOST": "db.example.com", "DB_PORT": "5432", "DB_NAME": "",
                                   "DB_SSLMODE": "verify-full"}, 2,
                                  "selfnest-api: DB_NAME is not set (with DB_IAM_USER there is no secret to name the "
                                  "database)"),
    "two kinds of api login": ({"APP_DB_IAM_USER": "selfnest_api_iam",
                                "APP_DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf"},
                               2, "selfnest-api: set at most one of APP_DB_IAM_USER and APP_DB_SECRET_ARN (the API's "
                               "login signs in with IAM tokens or with a password, not both)"),
}


@pytest.mark.parametrize(("changes", "status", "line"), BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_bad_settings_end_the_process_with_one_line(good_environment: dict[str, str], changes: dict[str, str],
                                                    status: int, line: str) -> None:
    finished = start({**good_environment, **changes})
    assert (finished.returncode, finished.stderr, finished.stdout) == (status, line + "\n", "")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_a_loopback_database_may_take_iam_tokens_over_tls_without_a_certificate_check(
        good_environment: dict[str, str], host: str) -> None:
    settings = load_settings({**good_environment, "DB_SECRET_ARN": "", "DB_IAM_USER": "selfnest_api_iam",
                              "DB_REGION": "eu-west-1", "DB_HOST": host, "DB_PORT": "5432", "DB_NAME": "selfnest",
                              "DB_SSLMODE": "require"})
    assert (settings.db_host, settings.db_sslmode) == (host, "require")


def test_a_secret_naming_a_remote_host_needs_a_certificate_check(good_environment: dict[str, str],
                                                                  identity: Identity) -> None:
    """The master secret names the host when DB_HOST does not: its password goes there, so the same rule holds."""
    remote = DatabaseLogin(host="db.example.com", port=5432, dbname="selfnest", username="master", password="pw")
    finished = start({**good_environment, "DB_HOST": "", "DB_SSLMODE": "verify-ca",
                      "DB_SECRET_ARN": store_secret(remote, region=identity.region)})
    assert (finished.returncode, finished.stderr) == (
        2, "selfnest-api: DB_SSLMODE='verify-ca' is not valid with DB_SECRET_ARN and the secret's "
           "host=db.example.com: the secret's password would go to whoever answers, so only a server whose "
           "certificate names that host may receive it (verify-full; a loopback host may use another mode)\n")


def test_migrate_signs_in_only_as_the_master(good_environment: dict[str, str]) -> None:
    finished = run_main(api_main.main, ["migrate"], environ=process_environment({
        **good_environment, "DB_SECRET_ARN": "", "DB_IAM_USER": "selfnest_api_iam", "DB_REGION": "eu-west-1",
        "DB_HOST": "db.example.com", "DB_PORT": "5432", "DB_NAME": "selfnest", "DB_SSLMODE": "verify-full",
        "APP_DB_IAM_USER": "selfnest_api_iam"}))
    assert (finished.returncode, finished.stderr, finished.stdout) == (
        2, "selfnest-api: migrate signs in as the master user: set DB_SECRET_ARN to the master secret (DB_IAM_USER "
           "is the API's own login)\n", "")


def test_credentials_never_show_their_password() -> None:
    credentials = Credentials(username="selfnest_api_iam", password="a-token-or-password", host=None, port=None,
                              dbname=None)
    assert "a-token-or-password" not in repr(credentials) and "a-token-or-password" not in str(credentials)
    assert "selfnest_api_iam" in repr(credentials)


def test_a_missing_secret_is_one_line(good_environment: dict[str, str], identity: Identity) -> None:
    missing = f"arn:aws:secretsmanager:{identity.region}:123456789012:secret:nowhere-AbCdEf"
    finished = start({**good_environment, "DB_SECRET_ARN": missing})
    assert finished.returncode == 1
    assert finished.stderr.startswith("selfnest-api: cannot read the database secret: ")
    assert finished.stderr.count("\n") == 1


def test_an_unreachable_database_is_one_line(good_environment: dict[str, str]) -> None:
    finished = start({**good_environment, "DB_HOST": "127.0.0.1", "DB_PORT": str(free_port())})
    assert finished.returncode == 1
    assert finished.stderr.startswith("selfnest-api: cannot connect to the database: ")
    assert finished.stderr.count("\n") == 1


def test_a_secret_that_is_not_an_rds_secret_is_one_line(good_environment: dict[str, str], identity: Identity) -> None:
    login = DatabaseLogin(host="127.0.0.1", port=1, dbname="x", username="", password="")
    finished = start({**good_environment, "DB_SECRET_ARN": store_secret(login, region=identity.region)})
    assert (finished.returncode, finished.stderr) == (
        2, "selfnest-api: DB_SECRET_ARN: the secret is not JSON with a username and a password\n")


def test_the_database_certificate_is_verified_unless_told_otherwise(good_environment: dict[str, str]) -> None:
    defaults = {name: value for name, value in good_environment.items() if name != "DB_SSLMODE"}
    assert load_settings(defaults).db_sslmode == "verify-full"


def test_the_image_bakes_in_the_rds_ca_bundle_and_points_verify_full_at_it() -> None:
    dockerfile = (Path(SERVICE_DIRECTORY) / "Dockerfile").read_text()
    [bundle] = [line.split()[2] for line in dockerfile.splitlines()
                if line.startswith("ADD https://truststore.pki.rds.amazonaws.com/")]
    assert f"chmod 0644 {bundle}" in dockerfile          # ADD from a URL writes mode 600; the API runs unprivileged
    assert "DB_SSLMODE=verify-full" in dockerfile and f"DB_SSLROOTCERT={bundle}" in dockerfile
