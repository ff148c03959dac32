"""A small typed httpx client for the X API v2 endpoints this connector uses.

Documentation (November 2026):
- Mentions timeline: https://docs.x.com/x-api/posts/timelines/introduction and
  https://docs.x.com/x-api/posts/timelines/quickstart/user-mention-quickstart — `since_id`,
  `pagination_token`, `max_results` 5–100, `meta {result_count, newest_id, oldest_id, next_token}`,
  only the latest 800 mentions are reachable; `expansions=author_id` puts authors in `includes.users`.
- Create a post: https://docs.x.com/x-api/posts/manage-tweets/introduction —
  `POST /2/tweets {"text", "reply": {"in_reply_to_tweet_id"}}` → 201 `{"data": {"id", "text"}}`.
- Direct messages: https://docs.x.com/x-api/direct-messages/manage/introduction —
  `POST /2/dm_conversations/with/{participant_id}/messages {"text"}`.
- DM events: https://docs.x.com/x-api/direct-messages/lookup/introduction —
  `GET /2/dm_events?event_types=MessageCreate` (newest first, last 30 days, `pagination_token`
  only: there is no since_id), fields `id, event_type, text, sender_id, dm_conversation_id, created_at`.
- Rate limits: https://docs.x.com/fundamentals/rate-limits — headers `x-rate-limit-limit`,
  `x-rate-limit-remaining`, `x-rate-limit-reset` (Unix seconds), 429 when exhausted, no Retry-After.
- Errors: https://docs.x.com/x-api/fundamentals/response-codes-and-errors — problem bodies
  `{"title", "detail", "type", "status"}` (older endpoints: `{"errors": [{"code", "message"}]}`).

httpx and pydantic rather than tweepy: tweepy hard-codes the API host and hides the rate-limit
headers we need to wait on; we call three endpoints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from madoguchi.connectors.models import ChannelAccount

API_BASE = "https://api.x.com"
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
TWEET_FIELDS = "created_at,lang,author_id,conversation_id,in_reply_to_user_id,referenced_tweets"
USER_FIELDS = "username,name,profile_image_url,public_metrics,verified"


@dataclass
class RateLimit:
    limit: int | None
    remaining: int | None
    reset: float | None  # Unix seconds

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> RateLimit:
        def number(name: str) -> int | None:
            try:
                return int(headers[name])
            except (KeyError, ValueError):
                return None

        reset = number("x-rate-limit-reset")
        return cls(number("x-rate-limit-limit"), number("x-rate-limit-remaining"), float(reset) if reset is not None else None)

    def wait_seconds(self, now: float | None = None) -> float:
        """How long to wait before the next call: 0 unless the window is used up."""
        if self.remaining is None or self.remaining > 0 or self.reset is None:
            return 0.0
        return max(1.0, self.reset - (now or time.time()))


class XAPIError(Exception):
    """X answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, detail: str, rate: RateLimit | None = None):
        super().__init__(f"X API {status}: {detail}" if status else f"X API unreachable: {detail}")
        self.status = status
        self.detail = detail
        self.rate = rate or RateLimit(None, None, None)


class PublicMetrics(BaseModel):
    model_config = ConfigDict(extra="ignore")

    followers_count: int | None = None


class User(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    username: str = ""
    name: str = ""
    profile_image_url: str = ""
    verified: bool = False
    public_metrics: PublicMetrics = Field(default_factory=PublicMetrics)


class Reference(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    id: str


class Tweet(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    text: str = ""
    author_id: str = ""
    created_at: str = ""
    conversation_id: str = ""
    in_reply_to_user_id: str = ""
    lang: str = ""
    referenced_tweets: list[Reference] = Field(default_factory=list)


class Includes(BaseModel):
    model_config = ConfigDict(extra="ignore")

    users: list[User] = Field(default_factory=list)


class Meta(BaseModel):
    model_config = ConfigDict(extra="ignore")

    result_count: int = 0
    newest_id: str = ""
    oldest_id: str = ""
    next_token: str = ""


class TimelinePage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: list[Tweet] = Field(default_factory=list)
    includes: Includes = Field(default_factory=Includes)
    meta: Meta = Field(default_factory=Meta)


class DMEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    event_type: str = "MessageCreate"
    text: str = ""
    sender_id: str = ""
    dm_conversation_id: str = ""
    created_at: str = ""


class DMPage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: list[DMEvent] = Field(default_factory=list)
    includes: Includes = Field(default_factory=Includes)
    meta: Meta = Field(default_factory=Meta)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        if body.get("detail"):
            return str(body["detail"])
        errors = body.get("errors") or []
        if errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0].get("detail") or errors[0])
        if body.get("title"):
            return str(body["title"])
    return response.reason_phrase


class XClient:
    """Calls X (or the local fake): the app bearer token reads, the user's token writes."""

    def __init__(self, account: ChannelAccount, *, transport: httpx.BaseTransport | None = None):
        self.api_base = str((account.config or {}).get("api_base") or API_BASE).rstrip("/")
        secrets = account.secrets or {}
        self.user_token = secrets.get("access_token", "")
        self.read_token = secrets.get("bearer_token") or self.user_token
        self._http = httpx.Client(timeout=TIMEOUT, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> XClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, token: str, **kwargs: Any) -> tuple[dict[str, Any], RateLimit]:
        try:
            response = self._http.request(method, self.api_base + path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        except httpx.HTTPError as exc:
            raise XAPIError(0, f"{type(exc).__name__}: {exc}") from exc
        rate = RateLimit.from_headers(response.headers)
        if response.status_code >= 400:
            raise XAPIError(response.status_code, _detail(response), rate)
        try:
            return response.json(), rate
        except ValueError as exc:
            raise XAPIError(502, "response is not JSON", rate) from exc

    def mentions(self, user_id: str, *, since_id: str = "", pagination_token: str = "", max_results: int = 100) -> tuple[TimelinePage, RateLimit]:
        params = {"max_results": str(max_results), "tweet.fields": TWEET_FIELDS, "expansions": "author_id", "user.fields": USER_FIELDS}
        if since_id:
            params["since_id"] = since_id
        if pagination_token:
            params["pagination_token"] = pagination_token
        body, rate = self._call("GET", f"/2/users/{user_id}/mentions", self.read_token, params=params)
        return TimelinePage.model_validate(body), rate

    def create_tweet(self, text: str, *, in_reply_to: str = "") -> tuple[str, RateLimit]:
        payload: dict[str, Any] = {"text": text}
        if in_reply_to:
            payload["reply"] = {"in_reply_to_tweet_id": in_reply_to}
        body, rate = self._call("POST", "/2/tweets", self.user_token, json=payload)
        return str(body["data"]["id"]), rate

    def dm_events(self, *, pagination_token: str = "", max_results: int = 100) -> tuple[DMPage, RateLimit]:
        params = {
            "event_types": "MessageCreate",
            "max_results": str(max_results),
            "dm_event.fields": "id,text,event_type,dm_conversation_id,created_at,sender_id",
            "expansions": "sender_id",
            "user.fields": USER_FIELDS,
        }
        if pagination_token:
            params["pagination_token"] = pagination_token
        body, rate = self._call("GET", "/2/dm_events", self.user_token, params=params)
        return DMPage.model_validate(body), rate

    def send_dm(self, participant_id: str, text: str) -> tuple[str, RateLimit]:
        body, rate = self._call("POST", f"/2/dm_conversations/with/{participant_id}/messages", self.user_token, json={"text": text})
        return str(body["data"]["dm_event_id"]), rate
