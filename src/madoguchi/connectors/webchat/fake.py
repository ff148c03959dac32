"""A scripted chat visitor: talks to the widget API exactly as widget.js does (same endpoints,
headers, Origin), for the tests and the demo's sample traffic.

Against a running server: ``FakeVisitor(base_url="http://127.0.0.1:8000", key=…, origin=…)``.
In the same process (tests, the demo's seeding) pass ``transport=in_process()``: requests then
go through Django's WSGI handler without a socket.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from madoguchi.connectors.http import ApiClient


def in_process(remote_addr: str = "127.0.0.1") -> httpx.WSGITransport:
    """Requests handled by this process's Django (no server needed), from `remote_addr`.

    Like Django's test client, the handler keeps the caller's database connection open (it would
    close it at the end of each request, which breaks a caller inside a transaction).
    """
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    handler = WSGIHandler()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            result = handler(environ, start_response)
            body = b"".join(result)
            result.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return [body]

    return httpx.WSGITransport(app=app, remote_addr=remote_addr)


class FakeVisitor(ApiClient):
    """One visitor on one website: starts a session, chats, types, reads, uploads."""

    def __init__(
        self,
        *,
        key: str,
        origin: str = "https://shop.example",
        base_url: str = "http://testserver",
        token: str = "",
        lang: str = "en",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.key = key
        self.origin = origin
        self.token = token
        self.lang = lang
        self._http = httpx.Client(base_url=base_url.rstrip("/"), transport=transport, headers={"Origin": origin}, timeout=10)

    def _url(self, path: str) -> str:
        return f"/connectors/webchat/api/{self.key}/{path}"

    def _headers(self) -> dict[str, str]:
        return {"X-Madoguchi-Visitor": self.token} if self.token else {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        return self._http.request(method, self._url(path), headers=headers, **kwargs)

    def config(self) -> dict[str, Any]:
        return self.request("GET", "config/", params={"lang": self.lang}).raise_for_status().json()

    def start(self, name: str = "", email: str = "") -> dict[str, Any]:
        """Start (or resume, with a token) a session; keeps the new token."""
        data = self.request("POST", "session/", json={"name": name, "email": email}).raise_for_status().json()
        self.token = data["token"]
        return data

    def say(self, text: str, *, client_id: str = "") -> dict[str, Any]:
        """Send a message; returns the stored message as the widget sees it."""
        response = self.request(
            "POST",
            "messages/",
            data={"text": text, "client_id": client_id or secrets.token_hex(8), "lang": self.lang},
        )
        return response.raise_for_status().json()["message"]

    def upload(self, filename: str, content: bytes, content_type: str) -> httpx.Response:
        return self.request(
            "POST",
            "messages/",
            data={"client_id": secrets.token_hex(8), "lang": self.lang},
            files={"file": (filename, content, content_type)},
        )

    def history(self, before: int | None = None) -> dict[str, Any]:
        params = {"before": str(before)} if before else None
        return self.request("GET", "messages/", params=params).raise_for_status().json()

    def typing(self) -> httpx.Response:
        return self.request("POST", "typing/", json={})

    def read(self, up_to: int) -> httpx.Response:
        return self.request("POST", "read/", json={"up_to": up_to})

    def events(self, after: int | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """The live stream as (event, data) pairs, from event `after` on (as the widget does with
        the history's `live_after`); against a running server only."""
        headers = self._headers() | ({"Last-Event-ID": str(after)} if after else {})
        with self._http.stream("GET", self._url("events/"), headers=headers, timeout=None) as response:
            response.raise_for_status()
            kind, data = "message", ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data += line[6:]
                elif not line and data:
                    yield kind, json.loads(data)
                    kind, data = "message", ""
