"""`python -m selfnest_api [serve]` runs the API; `python -m selfnest_api migrate` is the one-off migration task.

The API signs in with its own secret (an application role: DML on its tables only). The migrate task signs in with
the master secret (DB_SECRET_ARN), applies the migrations and, given APP_DB_SECRET_ARN, creates the API's login from
that secret when it does not exist yet.

A bad setting, an unreadable secret or an unreachable database ends the process with one line on stderr and a
non-zero status (2: configuration, 1: a dependency is down), so the ECS task's stopped reason says what is wrong.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg_pool import PoolTimeout

from . import logs
from .api import AWS_CLIENT_CONFIG, ApiService
from .database import Database, DatabaseSecret
from .migrations import MigrationError, apply_migrations, provision_application_login
from .settings import Settings, SettingsError, load_settings

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
        return _refuse(f"cannot read the database secret: {error}", status=DEPENDENCY_PROBLEM)
    except (psycopg.OperationalError, PoolTimeout) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return _refuse(f"cannot connect to the database: {first_line}", status=DEPENDENCY_PROBLEM)
    return 0


def migrate(*, settings: Settings) -> None:
    import boto3

    secrets = boto3.client("secretsmanager", region_name=settings.secret_region, config=AWS_CLIENT_CONFIG)
    secret = DatabaseSecret(client=secrets, secret_arn=settings.db_secret_arn)
    with Database(settings=settings, secret=secret).connect_outside_pool() as connection:
        applied = apply_migrations(connection)
        if settings.app_db_secret_arn is not None:
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
