"""A small typed httpx client for the LINE Messaging API endpoints this connector uses.

Documentation (November 2026):
- Reference, common specifications (domains, status codes, error body `{"message", "details"}`):
  https://developers.line.biz/en/reference/messaging-api/
- Reply: https://developers.line.biz/en/reference/messaging-api/#send-reply-message
- Push and the retry key: https://developers.line.biz/en/reference/messaging-api/#send-push-message
  and https://developers.line.biz/en/docs/messaging-api/retrying-api-request/
- Profile: https://developers.line.biz/en/reference/messaging-api/#get-profile
- Content (on the api-data domain): https://developers.line.biz/en/reference/messaging-api/#get-content

We use httpx with pydantic models rather than line-bot-sdk: four endpoints, and the SDK's
generated clients would pull in their own HTTP stack and hide the status codes we map.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from madoguchi.connectors.http import ApiClient, may_have_landed
from madoguchi.connectors.models import ChannelAccount

API_BASE = "https://api.line.me"
DATA_API_BASE = "https://api-data.line.me"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class LineAPIError(Exception):
    """The LINE Platform answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, message: str, headers: httpx.Headers | None = None, *, timed_out: bool = False):
        super().__init__(f"LINE API {status}: {message}" if status else f"LINE API unreachable: {message}")
        # The request may have reached LINE (a read timeout, a dropped connection): it may have acted.
        self.timed_out = timed_out
        self.status = status
        self.message = message
        self.headers = headers or httpx.Headers()


class Profile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    userId: str  # noqa: N815 (the platform's field names)
    displayName: str = ""  # noqa: N815
    pictureUrl: str = ""  # noqa: N815
    language: str = ""


class SentMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    quoteToken: str = ""  # noqa: N815


class SendResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sentMessages: list[SentMessage] = []  # noqa: N815


class LineClient(ApiClient):
    """Calls the LINE Platform (or the local fake) with the account's channel access token."""

    def __init__(self, account: ChannelAccount, *, transport: httpx.BaseTransport | None = None):
        config = account.config or {}
        self.api_base = str(config.get("api_base") or API_BASE).rstrip("/")
        # A fake serves both domains; the real platform serves content on api-data only.
        default_data = self.api_base if config.get("api_base") else DATA_API_BASE
        self.data_api_base = str(config.get("data_api_base") or default_data).rstrip("/")
        token = (account.secrets or {}).get("channel_access_token", "")
        self._http = httpx.Client(
            timeout=TIMEOUT, transport=transport, headers={"Authorization": f"Bearer {token}"}
        )

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise LineAPIError(0, f"{type(exc).__name__}: {exc}", timed_out=may_have_landed(exc)) from exc
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message", ""))
            except ValueError:
                message = response.text[:200]
            raise LineAPIError(response.status_code, message or response.reason_phrase, response.headers)
        return response

    def profile(self, user_id: str, *, group_id: str = "", room_id: str = "") -> Profile:
        if group_id:
            path = f"/v2/bot/group/{group_id}/member/{user_id}"
        elif room_id:
            path = f"/v2/bot/room/{room_id}/member/{user_id}"
        else:
            path = f"/v2/bot/profile/{user_id}"
        return Profile.model_validate(self._call("GET", self.api_base + path).json())

    def content(self, message_id: str, max_bytes: int) -> tuple[bytes, str]:
        """The bytes a user sent (image, video, audio, file); refuses more than `max_bytes`."""
        url = f"{self.data_api_base}/v2/bot/message/{message_id}/content"
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        message = str(response.json().get("message", ""))
                    except ValueError:
                        message = response.reason_phrase
                    raise LineAPIError(response.status_code, message, response.headers)
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise LineAPIError(413, f"content larger than {max_bytes} bytes")
                    chunks.append(chunk)
                content_type = response.headers.get("content-type", "application/octet-stream")
        except httpx.HTTPError as exc:
            raise LineAPIError(0, f"{type(exc).__name__}: {exc}") from exc
        return b"".join(chunks), content_type.split(";")[0].strip()

    def reply(self, reply_token: str, messages: list[dict[str, Any]]) -> SendResponse:
        body = {"replyToken": reply_token, "messages": messages}
        return SendResponse.model_validate(self._call("POST", f"{self.api_base}/v2/bot/message/reply", json=body).json())

    def push(self, to: str, messages: list[dict[str, Any]], retry_key: uuid.UUID) -> SendResponse:
        """Push with an X-Line-Retry-Key: a retried request the platform already accepted gets 409."""
        body = {"to": to, "messages": messages}
        response = self._call(
            "POST",
            f"{self.api_base}/v2/bot/message/push",
            json=body,
            headers={"X-Line-Retry-Key": str(retry_key)},
        )
        return SendResponse.model_validate(response.json())
