"""`python -m selfnest_api [serve]` runs the API; `python -m selfnest_api migrate` is the one-off migration task.

The API signs in as its own login (an application role: DML on its tables only), with IAM database authentication
(DB_IAM_USER) or a secret (DB_SECRET_ARN). The migrate task signs in with the master secret (DB_SECRET_ARN), applies
the migrations and creates the API's login when it does not exist yet: an IAM login granted rds_iam
(APP_DB_IAM_USER), or a password login from a secret (APP_DB_SECRET_ARN). With an IAM login and
RETIRE_PRE_IAM_LOGINS=true it then retires the password-era logins (migrations.PRE_IAM_LOGINS) once nobody is signed
in as them any more.

A bad setting, an unreadable secret or an unreachable database ends the process with one line on stderr and a
non-zero status (2: configuration, 1: a dependency is down), so the ECS task's stopped reason says what is wrong.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Mapping
from types import FrameType

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg_pool import PoolTimeout

from . import logs
from .api import AWS_CLIENT_CONFIG, ApiService
from .database import Database, DatabaseSecret, describe_connection_failure, login_for
from .migrations import (
    MigrationError,
    apply_migrations,
    first_line,
    provision_application_login,
    retire_pre_iam_logins,
)
from .settings import Settings, SettingsError, load_settings, secret_region

CONFIGURATION_PROBLEM = 2
DEPENDENCY_PROBLEM = 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m selfnest_api", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=("serve", "migrate"), default="serve")
    command = parser.parse_args(argv).command
    try:
        settings = load_settings(os.environ)
        if command == "migrate":
            migrate(settings=settings)
        else:
            serve(settings=settings)
    except (SettingsError, MigrationError) as error:
        return _refuse(f"{error}", status=CONFIGURATION_PROBLEM)
    except (ClientError, BotoCoreError) as error:
        what = "sign an IAM database token" if settings_say_iam(os.environ) else "read the database secret"
        return _refuse(f"cannot {what}: {error}", status=DEPENDENCY_PROBLEM)
    except (psycopg.OperationalError, PoolTimeout) as error:
        return _refuse(f"cannot connect to the database: {describe_connection_failure(error)}",
                       status=DEPENDENCY_PROBLEM)
    except psycopg.Error as error:
        # Connected, then refused: a statement timed out (statement_timeout), a privilege is missing, a migration
        # file failed... One line naming the statement's failure, not a traceback and not "cannot connect".
        return _refuse(f"{command}: the database refused a statement: {type(error).__name__}: "
                       f"{first_line(error)}", status=DEPENDENCY_PROBLEM)
    return 0


def settings_say_iam(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("DB_IAM_USER", "").strip())


def migrate(*, settings: Settings) -> None:
    import boto3

    if settings.db_secret_arn is None:
        # Creating and retiring logins takes the master's CREATEROLE; an API login (DB_IAM_USER) has none.
        raise SettingsError("migrate signs in as the master user: set DB_SECRET_ARN to the master secret "
                            "(DB_IAM_USER is the API's own login)")
    with Database(settings=settings, login=login_for(settings, client_config=AWS_CLIENT_CONFIG)
                  ).connect_outside_pool() as connection:
        applied = apply_migrations(connection)
        if settings.app_db_iam_user is not None:
            provision_application_login(connection, username=settings.app_db_iam_user, password=None)
            # The logins the previous version signed in with, once its tasks are gone (not before: see there), and
            # only where this instance sees every session (no replica serving API tasks: RETIRE_PRE_IAM_LOGINS).
            if settings.retire_pre_iam_logins:
                retire_pre_iam_logins(connection, keep=settings.app_db_iam_user)
            else:
                logs.info("pre_iam_logins_kept", reason="RETIRE_PRE_IAM_LOGINS is not true (a replica may serve "
                                                        "API tasks whose sessions this instance cannot see)")
        elif settings.app_db_secret_arn is not None:
            secrets = boto3.client("secretsmanager", region_name=secret_region(settings.app_db_secret_arn),
                                   config=AWS_CLIENT_CONFIG)
            login = DatabaseSecret(client=secrets, secret_arn=settings.app_db_secret_arn).current()
            provision_application_login(connection, username=login.username, password=login.password)
    logs.info("migrations_done", applied=len(applied))


def serve(*, settings: Settings) -> None:
    stopping = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        stopping.set()  # ECS sends SIGTERM, then SIGKILL after the stop timeout

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    service = ApiService(settings=settings)
    try:
        service.start()
        stopping.wait()
    finally:
        service.stop()


def _refuse(message: str, *, status: int) -> int:
    print(f"selfnest-api: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
