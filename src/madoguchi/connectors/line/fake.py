"""A local fake of the LINE Platform for tests and the demo, on 127.0.0.1 in a thread.

It reproduces what the connector relies on, as documented (see inbound.py and outbound.py):
signed webhook deliveries (`x-line-signature`, base64 HMAC-SHA256), event shapes with
`webhookEventId`, `deliveryContext.isRedelivery` and single-use reply tokens that expire; the
reply, push (with `X-Line-Retry-Key` and 409 on a repeat), profile and content endpoints; error
bodies `{"message": …}` with 400 (invalid reply token, bad body), 401 (bad token), 404, 429, 5xx;
and a push that is delivered but whose response is lost (`lose_responses`), as a timeout looks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx

from madoguchi.connectors.fakes import JsonHandler, LoopbackServer

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
TOKEN_ERROR = (
    "Authentication failed due to the following reason: invalid token. "
    "Confirm that the access token in the authorization header is valid."
)


def ulid() -> str:
    """A ULID like LINE's webhookEventId: 48-bit milliseconds and 80 random bits, Crockford base32."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def sign(channel_secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Failure:
    path: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakeLine(LoopbackServer):
    """The LINE Platform as one bot channel sees it."""

    def __init__(self, channel_secret: str = "fake-channel-secret", access_token: str = "fake-access-token"):
        super().__init__(_Handler)
        self.channel_secret = channel_secret
        self.access_token = access_token
        self.destination = "U" + uuid.uuid4().hex
        self.reply_token_ttl = 60.0
        self.users: dict[str, dict[str, str]] = {}
        self.contents: dict[str, tuple[bytes, str]] = {}
        self.reply_tokens: dict[str, float] = {}
        self.used_tokens: set[str] = set()
        self.retry_keys: dict[str, str] = {}
        self.sent: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.failures: deque[Failure] = deque()
        self.lose_responses = 0  # the next N accepted replies/pushes lose their response (a timeout)
        self.lock = threading.Lock()
        self._ids = itertools.count(int(time.time()) * 1000)

    def account_settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(config, secrets) of a ChannelAccount that talks to this fake."""
        return {"api_base": self.url}, {"channel_secret": self.channel_secret, "channel_access_token": self.access_token}

    # --- the platform's state ----------------------------------------------------------------

    def add_user(self, user_id: str, display_name: str, *, picture_url: str = "", language: str = "ja") -> None:
        self.users[user_id] = {"userId": user_id, "displayName": display_name, "pictureUrl": picture_url, "language": language, "statusMessage": ""}

    def fail(self, path: str, status: int, message: str, *, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """The next `times` requests whose path starts with `path` get this error."""
        for _ in range(times):
            self.failures.append(Failure(path, status, {"message": message}, headers or {}))

    def expire_reply_tokens(self) -> None:
        with self.lock:
            for token in self.reply_tokens:
                self.reply_tokens[token] = 0.0

    # --- webhook events ----------------------------------------------------------------------

    def _event(self, type_: str, user_id: str, *, group_id: str = "", reply: bool = True, **extra: Any) -> dict[str, Any]:
        source: dict[str, str] = {"type": "group", "groupId": group_id, "userId": user_id} if group_id else {"type": "user", "userId": user_id}
        event: dict[str, Any] = {"type": type_, "mode": "active", "timestamp": int(time.time() * 1000), "source": source, "webhookEventId": ulid(), "deliveryContext": {"isRedelivery": False}}
        if reply:
            token = uuid.uuid4().hex
            with self.lock:
                self.reply_tokens[token] = time.monotonic()
            event["replyToken"] = token
        event.update(extra)
        return event

    def message_id(self) -> str:
        return str(next(self._ids))

    def text_event(self, user_id: str, text: str, *, group_id: str = "") -> dict[str, Any]:
        message = {"type": "text", "id": self.message_id(), "quoteToken": uuid.uuid4().hex, "text": text}
        return self._event("message", user_id, group_id=group_id, message=message)

    def sticker_event(self, user_id: str, *, package_id: str = "446", sticker_id: str = "1988", keywords: list[str] | None = None) -> dict[str, Any]:
        message = {"type": "sticker", "id": self.message_id(), "quoteToken": uuid.uuid4().hex, "packageId": package_id, "stickerId": sticker_id, "stickerResourceType": "STATIC", "keywords": keywords or ["Happy", "smile"]}
        return self._event("message", user_id, message=message)

    def image_event(self, user_id: str, content: bytes, content_type: str = "image/jpeg") -> dict[str, Any]:
        message_id = self.message_id()
        self.contents[message_id] = (content, content_type)
        message = {"type": "image", "id": message_id, "quoteToken": uuid.uuid4().hex, "contentProvider": {"type": "line"}}
        return self._event("message", user_id, message=message)

    def follow_event(self, user_id: str) -> dict[str, Any]:
        return self._event("follow", user_id, follow={"isUnblocked": False})

    def unfollow_event(self, user_id: str) -> dict[str, Any]:
        return self._event("unfollow", user_id, reply=False)

    def unsend_event(self, user_id: str, message_id: str) -> dict[str, Any]:
        return self._event("unsend", user_id, reply=False, unsend={"messageId": message_id})

    def redelivered(self, event: dict[str, Any]) -> dict[str, Any]:
        """The same event again, as LINE redelivers it: same webhookEventId, isRedelivery true."""
        again = json.loads(json.dumps(event))
        again["deliveryContext"] = {"isRedelivery": True}
        again.pop("replyToken", None)  # a redelivered event's reply token is not usable
        return again

    def delivery(self, events: list[dict[str, Any]]) -> tuple[bytes, str]:
        """A webhook request body and its x-line-signature."""
        body = json.dumps({"destination": self.destination, "events": events}, ensure_ascii=False, separators=(",", ":")).encode()
        return body, sign(self.channel_secret, body)

    def deliver(self, webhook_url: str, events: list[dict[str, Any]]) -> httpx.Response:
        """POST a signed delivery to a running madoguchi (the demo)."""
        body, signature = self.delivery(events)
        return httpx.post(webhook_url, content=body, headers={"content-type": "application/json; charset=utf-8", "x-line-signature": signature}, timeout=10)


class _Handler(JsonHandler):
    server: FakeLine
    def _send(self, status: int, body: dict[str, Any] | bytes, *, content_type: str = "application/json", headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_body(status, data, content_type, {"x-line-request-id": str(uuid.uuid4()), **(headers or {})})

    def _prelude(self) -> bool:
        """Auth and injected failures; True if a response was already sent."""
        self.server.requests.append((self.command, self.path))
        if self.headers.get("Authorization") != f"Bearer {self.server.access_token}":
            self._send(401, {"message": TOKEN_ERROR})
            return True
        with self.server.lock:
            failure = next((f for f in self.server.failures if self.path.startswith(f.path)), None)
            if failure is not None:
                self.server.failures.remove(failure)
        if failure is not None:
            self._send(failure.status, failure.body, headers=failure.headers)
            return True
        return False

    def _json(self) -> dict[str, Any] | None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _check_messages(self, body: dict[str, Any]) -> str:
        messages = body.get("messages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
            return "messages"
        for i, message in enumerate(messages):
            if message.get("type") != "text" or not isinstance(message.get("text"), str) or not 1 <= len(message["text"]) <= 5000:
                return f"messages[{i}].text"
        return ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self._prelude():
            return
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[:3] == ["v2", "bot", "profile"] and len(parts) == 4 or parts[:3] == ["v2", "bot", "group"] and len(parts) == 6:
            user = self.server.users.get(parts[-1])
            self._send(200, user) if user else self._send(404, {"message": "Not found"})
        elif parts[:3] == ["v2", "bot", "message"] and len(parts) == 5 and parts[4] == "content":
            found = self.server.contents.get(parts[3])
            if found:
                self._send(200, found[0], content_type=found[1])
            else:
                self._send(404, {"message": "Not found"})
        else:
            self._send(404, {"message": "Not found"})

    def do_POST(self) -> None:  # noqa: N802
        if self._prelude():
            return
        body = self._json()
        if body is None:
            self._send(400, {"message": "The request body could not be parsed as JSON"})
            return
        bad = self._check_messages(body)
        if bad:
            self._send(400, {"message": "The request body has 1 error(s)", "details": [{"message": "invalid", "property": bad}]})
            return
        sent = [{"id": self.server.message_id(), "quoteToken": uuid.uuid4().hex} for _ in body["messages"]]
        if self.path == "/v2/bot/message/reply":
            token = body.get("replyToken", "")
            with self.server.lock:
                issued = self.server.reply_tokens.get(token)
                valid = issued is not None and token not in self.server.used_tokens and time.monotonic() - issued < self.server.reply_token_ttl
                if valid:
                    self.server.used_tokens.add(token)
            if not valid:
                self._send(400, {"message": "Invalid reply token"})
                return
            self.server.sent.append({"endpoint": "reply", "replyToken": token, "messages": body["messages"], "ids": sent})
            if self.lose_response():
                return
            self._send(200, {"sentMessages": sent})
        elif self.path == "/v2/bot/message/push":
            key = self.headers.get("X-Line-Retry-Key")
            if key is not None:
                try:
                    uuid.UUID(key)
                except ValueError:
                    self._send(400, {"message": "The value for the 'X-Line-Retry-Key' header is invalid"})
                    return
                with self.server.lock:
                    accepted = self.server.retry_keys.get(key)
                    if accepted is None:
                        self.server.retry_keys[key] = str(uuid.uuid4())
                if accepted is not None:
                    self._send(409, {"message": "The retry key is already accepted"}, headers={"x-line-accepted-request-id": accepted})
                    return
            self.server.sent.append({"endpoint": "push", "to": body.get("to"), "messages": body["messages"], "ids": sent, "retry_key": key})
            if self.lose_response():
                return
            self._send(200, {"sentMessages": sent})
        else:
            self._send(404, {"message": "Not found"})
