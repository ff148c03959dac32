"""The HTTP scaffolding the fake platforms (`connectors/<kind>/fake.py`) share.

A fake is a `LoopbackServer` (127.0.0.1, a free port unless told, served from a daemon thread) with
a `JsonHandler` subclass that answers the platform's endpoints. Only the plumbing is here: each
fake keeps its own auth, rate limits and bodies, which differ from platform to platform.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LoopbackServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1; `start()` serves it in the background, `stop()` ends it."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.lose_responses = 0  # the next N responses that ask `lose_response()` are lost
        self._lose_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> Self:
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def take_lost_response(self) -> bool:
        """True, counting it off, if the next response is to be lost."""
        with self._lose_lock:
            lose = self.lose_responses > 0
            self.lose_responses -= lose
        return lose


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 handler with the helpers to answer in JSON (or any body)."""

    server: LoopbackServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def send_body(
        self, status: int, data: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self.send_body(
            status,
            json.dumps(body, ensure_ascii=False).encode(),
            "application/json; charset=utf-8",
            headers,
        )

    def lose_response(self) -> bool:
        """Done, but the answer never reaches the caller (when the server's `lose_responses` says so)."""
        if not self.server.take_lost_response():
            return False
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)
        return True
