"""A small typed httpx client for the Mastodon REST and streaming endpoints this connector uses.

Documentation (docs.joinmastodon.org, November 2026):
- Notifications: https://docs.joinmastodon.org/methods/notifications/#get — `types[]`, `min_id`
  ("results immediately newer than this ID"), `max_id`, `since_id`, `limit` (default 40, max 80);
  the `Link` header carries `rel="next"` (`max_id`, older) and `rel="prev"` (`min_id`, newer).
  401 body `{"error": "The access token is invalid"}`.
- Notification and Status entities: https://docs.joinmastodon.org/entities/Notification/ and
  https://docs.joinmastodon.org/entities/Status/ — `content` is HTML, `visibility` one of public,
  unlisted, private, direct; `edited_at` set on edits; `language` may be null.
- Posting: https://docs.joinmastodon.org/methods/statuses/#create — `POST /api/v1/statuses`
  `{status, in_reply_to_id, visibility, language}` with an `Idempotency-Key` header (the server
  keeps it an hour and answers a repeat with the status it already made); 422
  `{"error": "Validation failed: Text character limit of 500 exceeded"}`; replying to a status
  that is gone answers 404.
- Instance: https://docs.joinmastodon.org/methods/instance/#v2 —
  `configuration.statuses.max_characters` and `characters_reserved_per_url`.
- Search: https://docs.joinmastodon.org/methods/search/#v2 — `GET /api/v2/search?q=&type=statuses`
  with `min_id` and `limit` (max 40) → `{"accounts": [], "statuses": [...], "hashtags": []}`.
- Streaming: https://docs.joinmastodon.org/methods/streaming/ — server-sent events
  (`event: <name>` / `data: <payload>`, `:thump` heartbeats) at `/api/v1/streaming/user/notification`
  and `/api/v1/streaming/hashtag?tag=`; events `notification`, `update`, `status.update`
  (payload: a JSON entity) and `delete` (payload: the bare status id). We read the SSE form;
  the WebSocket form (`/api/v1/streaming`, frames whose payload is JSON encoded twice) carries
  the same events and is not used.
- Rate limits: https://docs.joinmastodon.org/api/rate-limits/ — 300 requests per 5 minutes per
  account; `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (an ISO 8601 time).

httpx rather than Mastodon.py: we call six endpoints and need the raw `Link` and `X-RateLimit-*`
headers, the `Idempotency-Key` header and a bounded, interruptible SSE read; Mastodon.py hides
the first two behind its own pagination and pacing and runs its streams in its own threads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from madoguchi.connectors.http import ApiClient
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.ratelimit import RateLimit, parse_reset  # noqa: F401  (re-exported)

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
NOTIFICATION_TYPES = ("mention", "favourite", "reblog", "follow", "update")
LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-z]+)"?')


class MastodonAPIError(Exception):
    """Mastodon answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, detail: str, rate: RateLimit | None = None):
        super().__init__(f"Mastodon API {status}: {detail}" if status else f"Mastodon unreachable: {detail}")
        self.status = status
        self.detail = detail
        self.rate = rate or RateLimit.unknown()


# --- entities (only the fields we read; the rest is kept in `raw` by the caller) -------------


class Account(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    username: str = ""
    acct: str = ""
    display_name: str = ""
    avatar: str = ""
    url: str = ""
    bot: bool = False
    followers_count: int | None = None


class Mention(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    acct: str = ""


class Tag(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str


class Status(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    created_at: str = ""
    edited_at: str | None = None
    in_reply_to_id: str | None = None
    in_reply_to_account_id: str | None = None
    visibility: str = "public"
    language: str | None = None
    url: str | None = None
    uri: str = ""
    spoiler_text: str = ""
    content: str = ""
    replies_count: int = 0
    reblogs_count: int = 0
    favourites_count: int = 0
    account: Account
    mentions: list[Mention] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)
    reblog: Status | None = None


class Notification(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    type: str
    created_at: str = ""
    account: Account
    status: Status | None = None


@dataclass
class NotificationPage:
    entries: list[dict[str, Any]]  # newest first, as the server sends them; parsed by the caller
    newer_min_id: str  # the `rel="prev"` cursor: ask with min_id=this for what came after
    rate: RateLimit


@dataclass
class StreamEvent:
    """One event from a stream: `payload` is the decoded entity, or the bare id of a `delete`."""

    event: str
    payload: Any
    stream: tuple[str, ...] = ()


def parse_links(header: str) -> dict[str, str]:
    """`Link: <url>; rel="next", <url>; rel="prev"` → {"next": url, "prev": url}."""
    return {rel: url for url, rel in LINK.findall(header or "")}


def query_value(url: str, name: str) -> str:
    values = httpx.URL(url).params.get_list(name)
    return values[0] if values else ""


def _decode_payload(event: str, data: str) -> Any:
    if event == "delete" or event.startswith("announcement.delete"):
        return data.strip().strip('"')
    try:
        return json.loads(data) if data.strip() and data.strip() != "undefined" else None
    except ValueError:
        return None


def iter_sse(lines: Iterator[str]) -> Iterator[StreamEvent]:
    """Server-sent events from text lines: `event:`/`data:` fields, a blank line ends an event,
    lines starting with ':' are heartbeats."""
    event, data = "", list[str]()
    for line in lines:
        if line == "":
            if event or data:
                yield StreamEvent(event or "message", _decode_payload(event, "\n".join(data)))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"]) + (f" ({body['error_description']})" if body.get("error_description") else "")
    return response.reason_phrase


class MastodonClient(ApiClient):
    """Calls one Mastodon server (or the local fake) with the account's user token."""

    def __init__(self, account: ChannelAccount, *, transport: httpx.BaseTransport | None = None):
        config = account.config or {}
        self.api_base = str(config.get("api_base_url") or "").rstrip("/")
        if not self.api_base:
            raise MastodonAPIError(0, "the account has no api_base_url")
        self.streaming_base = str(config.get("streaming_url") or self.api_base).rstrip("/")
        self.token = (account.secrets or {}).get("access_token", "")
        self._http = httpx.Client(timeout=TIMEOUT, transport=transport, headers={"Authorization": f"Bearer {self.token}"})
        self.last_instance: dict[str, Any] = {}

    def _call(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, RateLimit]:
        try:
            response = self._http.request(method, self.api_base + path, **kwargs)
        except httpx.HTTPError as exc:
            raise MastodonAPIError(0, f"{type(exc).__name__}: {exc}") from exc
        rate = RateLimit.from_headers(response.headers, "x-ratelimit-")
        if response.status_code >= 400:
            raise MastodonAPIError(response.status_code, _detail(response), rate)
        return response, rate

    def _json(self, response: httpx.Response, rate: RateLimit) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise MastodonAPIError(502, "response is not JSON", rate) from exc

    def verify_credentials(self) -> Account:
        response, rate = self._call("GET", "/api/v1/accounts/verify_credentials")
        return Account.model_validate(self._json(response, rate))

    def notifications(self, *, min_id: str = "", limit: int = 40, types: tuple[str, ...] = NOTIFICATION_TYPES) -> NotificationPage:
        params: list[tuple[str, str]] = [("limit", str(limit))] + [("types[]", t) for t in types]
        if min_id:
            params.append(("min_id", min_id))
        response, rate = self._call("GET", "/api/v1/notifications", params=params)
        body = self._json(response, rate)
        if not isinstance(body, list):
            raise MastodonAPIError(502, "notifications: expected a list", rate)
        raw = [entry for entry in body if isinstance(entry, dict)]
        prev = parse_links(response.headers.get("link", "")).get("prev", "")
        return NotificationPage(raw, query_value(prev, "min_id") if prev else "", rate)

    def status(self, status_id: str) -> Status:
        response, rate = self._call("GET", f"/api/v1/statuses/{status_id}")
        return Status.model_validate(self._json(response, rate))

    def post_status(self, text: str, *, idempotency_key: str, in_reply_to_id: str = "", visibility: str = "public", language: str = "") -> tuple[Status, RateLimit]:
        payload: dict[str, Any] = {"status": text, "visibility": visibility}
        if in_reply_to_id:
            payload["in_reply_to_id"] = in_reply_to_id
        if language:
            payload["language"] = language
        response, rate = self._call("POST", "/api/v1/statuses", json=payload, headers={"Idempotency-Key": idempotency_key})
        return Status.model_validate(self._json(response, rate)), rate

    def instance(self) -> dict[str, Any]:
        response, rate = self._call("GET", "/api/v2/instance")
        body = self._json(response, rate)
        self.last_instance = body if isinstance(body, dict) else {}
        return self.last_instance

    def search_statuses(self, query: str, *, min_id: str = "", limit: int = 40) -> tuple[list[Status], list[dict[str, Any]], RateLimit]:
        params = {"q": query, "type": "statuses", "limit": str(limit), "resolve": "false"}
        if min_id:
            params["min_id"] = min_id
        response, rate = self._call("GET", "/api/v2/search", params=params)
        body = self._json(response, rate)
        raw = [s for s in (body.get("statuses") or []) if isinstance(s, dict)] if isinstance(body, dict) else []
        statuses = []
        for entry in raw:
            try:
                statuses.append(Status.model_validate(entry))
            except ValidationError:
                continue
        return statuses, raw, rate

    def tag_timeline(self, tag: str, *, min_id: str = "", limit: int = 40) -> tuple[list[dict[str, Any]], RateLimit]:
        """`GET /api/v1/timelines/tag/:hashtag` (https://docs.joinmastodon.org/methods/timelines/#tag)."""
        params = {"limit": str(limit)}
        if min_id:
            params["min_id"] = min_id
        response, rate = self._call("GET", f"/api/v1/timelines/tag/{quote(tag, safe='')}", params=params)
        body = self._json(response, rate)
        return ([s for s in body if isinstance(s, dict)] if isinstance(body, list) else []), rate

    def stream(self, path: str, params: dict[str, str] | None = None, *, read_timeout: float = 90.0) -> Iterator[StreamEvent]:
        """Server-sent events from a streaming path until the server closes it; raises
        MastodonAPIError on a refused connection (401) or a network failure."""
        timeout = httpx.Timeout(read_timeout, connect=5.0)
        try:
            with self._http.stream("GET", self.streaming_base + path, params=params, timeout=timeout, headers={"Accept": "text/event-stream"}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise MastodonAPIError(response.status_code, _detail(response), RateLimit.from_headers(response.headers, "x-ratelimit-"))
                yield from iter_sse(response.iter_lines())
        except httpx.HTTPError as exc:
            raise MastodonAPIError(0, f"stream: {type(exc).__name__}: {exc}") from exc
