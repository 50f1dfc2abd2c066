"""`python -m refarch.local up|down|demo|follow` (what `make up`, `make down`, `make demo` and `make follow` run)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .babybloom import BabyBloomEndpoints, sign_in
from .processes import LocalError, Registry
from .selfnest import ROOT

STATE = ROOT / ".local"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m refarch.local", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("up", "down", "demo", "sign-in", "follow"))
    parser.add_argument("name", nargs="?", help="sign-in: the BabyBloom user to sign in as; follow: a booking id "
                                                "or a correlation id")
    parser.add_argument("--env", default="dev", help="Selfnest environment (config/<env>.yaml)")
    parser.add_argument("--port", type=int, default=None, help="the emulator's port (default: a free one)")
    parser.add_argument("--state", type=Path, default=STATE, help="where processes, logs and state live")
    arguments = parser.parse_args(argv)
    state: Path = arguments.state.resolve()
    try:
        if arguments.command == "up":
            return _up(arguments.env, arguments.port, state)
        if arguments.command == "down":
            _keep_function_logs(state)
            stopped = Registry(state).stop_all()
            (state / "endpoints.json").unlink(missing_ok=True)
            print(f"stopped {len(stopped)} process(es): {', '.join(p.name for p in stopped) or 'nothing was running'}")
            return 0
        if arguments.command == "sign-in":
            if not arguments.name:
                raise LocalError("sign-in needs a user name: python -m refarch.local sign-in NAME")
            print(f"Authorization: Bearer {sign_in(state, arguments.name)}")
            return 0
        if arguments.command == "follow":
            if not arguments.name:
                raise LocalError("follow needs a booking id or a correlation id: make follow ID=... "
                                 "(`make demo` prints one)")
            from .logs import print_followed
            return print_followed(arguments.name, state)
        from .demo import run_demo
        return run_demo(state)
    except LocalError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: everything `make up` had started is stopped", file=sys.stderr)
        return 130


def _up(environment: str, port: int | None, state: Path) -> int:
    import time

    from .selfnest import up

    started = time.monotonic()
    endpoints = up(environment=environment, state=state, port=port)
    print(f"\nSelfnest {environment} is up in {time.monotonic() - started:.0f}s (state and logs: {_short(state)}/)")
    print(f"  AWS emulator (MiniStack)  {endpoints.emulator}   e.g. AWS_ENDPOINT_URL={endpoints.emulator} "
          "aws cognito-idp list-user-pools --max-results 5")
    print(f"  booking API               {endpoints.api}   (GET /healthz, /therapists, /sessions)")
    print(f"  chat WebSocket            {endpoints.chat}?token=<access token>")
    print(f"  user pool                 {endpoints.user_pool_id}, app client {endpoints.mobile_client_id}")
    bloom = BabyBloomEndpoints.load(state)
    if bloom is not None:
        print(f"  BabyBloom functions       {bloom.functions}   (GET /profile, /content/current, /journal; "
              "header from `.venv/bin/python -m refarch.local sign-in NAME`)")
        print(f"  Cosmos DB / queues        {bloom.cosmos} (cosmosdb-server)   {bloom.queues} (Azurite)")
    print("  users                     none yet: `make demo` signs up a client, a therapist and a third user")
    print(f"  not emulated              {len(endpoints.not_emulated)} resources (listed in "
          f"{_short(state)}/endpoints.json; why: docs/local.md)")
    print(f"  logs                      {_short(state)}/logs/ (functions' too, after `make follow ID=...`)")
    print("next: make demo   ·   make follow ID=<booking id>   ·   make down")
    return 0


def _keep_function_logs(state: Path) -> None:
    """The emulator keeps the functions' logs in memory: copy them to .local/logs/lambda/ before it stops."""
    from botocore.exceptions import BotoCoreError, ClientError

    from .logs import save_function_logs

    emulator_running = any(process.name == "ministack" for process in Registry(state).running())
    if not (state / "endpoints.json").is_file() or not emulator_running:
        return
    try:
        save_function_logs(state)
    except (BotoCoreError, ClientError, LocalError) as error:   # stopping matters more than the copy
        print(f"note: the functions' logs were not kept ({type(error).__name__}); stopping anyway", file=sys.stderr)


def _short(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


if __name__ == "__main__":
    sys.exit(main())
