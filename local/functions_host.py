"""A local host for the BabyBloom Functions app (Python v2 model): what Azure Functions does, without Core Tools.

`python -m refarch.local.functions_host --app DIR --settings FILE --port N` imports DIR/function_app.py with the
settings as its environment, then:
- serves every HTTP trigger at http://127.0.0.1:N/api/<route> (route parameters, methods), behind App Service
  authentication as the plan configures it (`requireAuthentication` + `Return401`): a request without a bearer
  token is answered 401 before the app sees it; the app verifies the token itself (`python -m refarch.local
  sign-in NAME` issues one from the local Entra ID stand-in);
- runs each timer trigger on its NCRONTAB schedule (second minute hour fields; day fields `*`);
- polls each queue trigger's queue (its connection's settings), with host.json's maxDequeueCount and message
  encoding, moving a message that keeps failing to `<queue>-poison` as the Functions host does.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import sys
import threading
import time
import traceback
import warnings
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

AUTHORIZATION_HEADER = "Authorization"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m refarch.local.functions_host", description=__doc__.splitlines()[0])
    parser.add_argument("--app", type=Path, required=True)
    parser.add_argument("--settings", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args(argv)
    os.environ.update(json.loads(arguments.settings.read_text(encoding="utf-8")))
    # cosmosdb-server's self-signed certificate on 127.0.0.1 (the app verifies certificates for any other host).
    warnings.filterwarnings("ignore", "Unverified HTTPS request is being made to host '127.0.0.1'")
    sys.path.insert(0, str(arguments.app))   # the Functions host puts the app root on sys.path
    import function_app

    host_settings = json.loads((arguments.app / "host.json").read_text(encoding="utf-8"))
    functions: list[Any] = function_app.app.get_functions()
    routes = [_Route(function) for function in functions if function.get_trigger().type == "httpTrigger"]
    for function in functions:
        trigger = function.get_trigger()
        if trigger.type == "timerTrigger":
            threading.Thread(target=_run_timer, args=(function,), daemon=True).start()
        elif trigger.type == "queueTrigger":
            threading.Thread(target=_poll_queue, args=(function, host_settings), daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", arguments.port), _handler(routes))
    print(f"functions host: {len(routes)} HTTP functions on http://127.0.0.1:{arguments.port}/api", flush=True)
    server.serve_forever()
    return 0


class _Route:
    def __init__(self, function: Any) -> None:
        trigger = function.get_trigger()
        self.function = function.get_user_function()
        self.methods = {str(getattr(method, "value", method)) for method in trigger.methods}
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", trigger.route)
        self.pattern = re.compile(f"/api/{pattern}")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found and method in self.methods else None


def _handler(routes: list[_Route]) -> type[BaseHTTPRequestHandler]:
    import azure.functions as func

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.headers.get(AUTHORIZATION_HEADER, "").startswith("Bearer "):   # App Service auth: Return401
                return self._answer(401, b"", {})
            for route in routes:
                parameters = route.match(self.command, url.path)
                if parameters is not None:
                    request = func.HttpRequest(method=self.command, url=f"http://{self.headers['Host']}{self.path}",
                                               headers=dict(self.headers.items()), params=dict(parse_qsl(url.query)),
                                               route_params=parameters, body=body)
                    try:
                        response = route.function(request)
                    except Exception:   # the Functions host answers 500 and logs the exception
                        traceback.print_exc()
                        return self._answer(500, b"", {})
                    return self._answer(response.status_code, response.get_body(), dict(response.headers))
            return self._answer(404, b"", {})

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve  # noqa: N815 - http.server's handler names

        def log_message(self, format: str, *args: Any) -> None:
            print(f"http {self.command} {self.path.split('?')[0]} -> {args[1] if len(args) > 1 else ''}", flush=True)

    return Handler


def next_occurrence(schedule: str, after: datetime) -> datetime:
    """The next time an NCRONTAB `{second} {minute} {hour} * * *` schedule fires after `after` (UTC)."""
    fields = schedule.split()
    if len(fields) != 6 or fields[3:] != ["*", "*", "*"] or not all(field.isdigit() for field in fields[:3]):
        raise ValueError(f"schedule {schedule!r}: the local host runs daily schedules 'S M H * * *' only")
    second, minute, hour = (int(field) for field in fields[:3])
    candidate = after.replace(hour=hour, minute=minute, second=second, microsecond=0)
    return candidate if candidate > after else candidate + timedelta(days=1)


def _run_timer(function: Any) -> None:
    from azure.functions.timer import TimerRequest

    schedule = function.get_trigger().schedule
    while True:
        due = next_occurrence(schedule, datetime.now(UTC))
        time.sleep(max((due - datetime.now(UTC)).total_seconds(), 0))
        try:
            function.get_user_function()(TimerRequest(past_due=False))
            print(f"timer {function.get_function_name()} ran", flush=True)
        except Exception:
            traceback.print_exc()


def _poll_queue(function: Any, host_settings: dict[str, Any]) -> None:
    from azure.functions.queue import QueueMessage
    from azure.storage.queue import QueueClient

    trigger = function.get_trigger()
    queue_name = re.sub(r"%(\w+)%", lambda setting: os.environ[setting.group(1)], trigger.queue_name)
    connection = os.environ[trigger.connection]
    options = host_settings.get("extensions", {}).get("queues", {})
    max_dequeue = int(options.get("maxDequeueCount", 5))
    base64_encoded = options.get("messageEncoding", "base64") == "base64"
    hours, minutes, seconds = (int(part) for part in str(options.get("visibilityTimeout", "00:00:00")).split(":"))
    retry_after = hours * 3600 + minutes * 60 + seconds
    queue = QueueClient.from_connection_string(connection, queue_name)
    poison = QueueClient.from_connection_string(connection, f"{queue_name}-poison")
    while True:
        try:
            for message in queue.receive_messages(messages_per_page=16, visibility_timeout=30):
                body = message.content.encode() if isinstance(message.content, str) else message.content
                decoded = base64.b64decode(body) if base64_encoded else body
                try:
                    function.get_user_function()(QueueMessage(  # type: ignore[no-untyped-call]
                        id=message.id, body=decoded, dequeue_count=message.dequeue_count,
                        pop_receipt=message.pop_receipt))
                    queue.delete_message(message)
                except Exception:
                    traceback.print_exc()
                    if (message.dequeue_count or 0) >= max_dequeue:
                        _create_quietly(poison)
                        poison.send_message(message.content)
                        queue.delete_message(message)
                    else:   # visible again after host.json's visibilityTimeout (the host's default: at once)
                        queue.update_message(message, visibility_timeout=retry_after)
        except Exception:   # the queue service is down or the queue does not exist yet: try again shortly
            traceback.print_exc()
        time.sleep(1)


def _create_quietly(queue: Any) -> None:
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()


if __name__ == "__main__":
    sys.exit(main())
