"""A small HTTP client for the API under test (urllib; errors are answers, not exceptions)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Reply:
    status: int
    body: Any
    headers: Message     # looked up case-insensitively, as HTTP header names are

    @property
    def detail(self) -> str:
        return str(self.body.get("detail", "")) if isinstance(self.body, dict) else ""


class ApiClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def call(self, method: str, path: str, *, token: str | None = None, json_body: Any = None,
             raw_body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        data = raw_body if raw_body is not None else (None if json_body is None else json.dumps(json_body).encode())
        request = urllib.request.Request(f"{self.base_url}{path}", method=method, data=data)  # noqa: S310 - local
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local test server
                return Reply(status=response.status, body=json.loads(response.read()), headers=response.headers)
        except urllib.error.HTTPError as error:
            return Reply(status=error.code, body=json.loads(error.read()), headers=error.headers)

    def get(self, path: str, *, token: str | None = None) -> Reply:
        return self.call("GET", path, token=token)

    def put(self, path: str, body: Any, *, token: str) -> Reply:
        return self.call("PUT", path, token=token, json_body=body)

    def post(self, path: str, body: Any, *, token: str) -> Reply:
        return self.call("POST", path, token=token, json_body=body)

    def delete(self, path: str, *, token: str) -> Reply:
        return self.call("DELETE", path, token=token)
