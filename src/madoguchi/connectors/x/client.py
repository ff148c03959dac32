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
- Filtered stream: https://docs.x.com/x-api/posts/filtered-stream/introduction and
  https://docs.x.com/x-api/stream/update-stream-rules — `GET /2/tweets/search/stream` (app bearer
  token) sends one JSON object per line, `{data, includes, matching_rules: [{id, tag}]}`, and a
  blank keep-alive line every 20 s; rules: `GET /2/tweets/search/stream/rules` → `{data: [{id,
  value, tag}], meta: {sent, result_count}}`, `POST …/rules[?dry_run=true]` with `{"add": [{value,
  tag}]}` or `{"delete": {"ids": […]}}` → `meta.summary {created, not_created, valid, invalid,
  deleted, not_deleted}` and `errors [{value, id, title, type, details}]`.
- Recent search: https://docs.x.com/x-api/posts/search/introduction — `GET
  /2/tweets/search/recent?query=…` with `since_id` and `next_token`, last 7 days, the same fields.
- User posts timeline: https://docs.x.com/x-api/posts/timelines/introduction — `GET
  /2/users/{id}/tweets` (newest first), to find a reply we already posted before posting it again.

httpx and pydantic rather than tweepy: tweepy hard-codes the API host and hides the rate-limit
headers we need to wait on; we call three endpoints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from madoguchi.connectors.http import ApiClient, may_have_landed
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.ratelimit import RateLimit

API_BASE = "https://api.x.com"
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
TWEET_FIELDS = "created_at,lang,author_id,conversation_id,in_reply_to_user_id,referenced_tweets,edit_history_tweet_ids,entities"
USER_FIELDS = "username,name,profile_image_url,public_metrics,verified"


# X's rate-limit headers: x-rate-limit-limit, x-rate-limit-remaining, x-rate-limit-reset (Unix s).
RATE_PREFIX = "x-rate-limit-"


class XAPIError(Exception):
    """X answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, detail: str, rate: RateLimit | None = None, *, timed_out: bool = False, body: Any = None):
        super().__init__(f"X API {status}: {detail}" if status else f"X API unreachable: {detail}")
        self.body = body
        self.status = status
        self.detail = detail
        self.rate = rate or RateLimit.unknown()
        # The request may have reached X (a read timeout): what it asked for may have happened.
        self.timed_out = timed_out


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


class Mention(BaseModel):
    model_config = ConfigDict(extra="ignore")

    username: str = ""
    id: str = ""


class Entities(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mentions: list[Mention] = Field(default_factory=list)


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
    # Oldest first; a post that was never edited lists only its own id.
    edit_history_tweet_ids: list[str] = Field(default_factory=list)
    entities: Entities = Field(default_factory=Entities)


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


class MatchingRule(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    tag: str = ""


class StreamItem(BaseModel):
    """One line of the filtered stream that carries a post."""

    model_config = ConfigDict(extra="ignore")

    data: Tweet
    includes: Includes = Field(default_factory=Includes)
    matching_rules: list[MatchingRule] = Field(default_factory=list)


class StreamRule(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    value: str
    tag: str = ""


class RuleError(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: str = ""
    id: str = ""
    title: str = ""
    type: str = ""
    details: list[str] = Field(default_factory=list)


class RulesSummary(BaseModel):
    model_config = ConfigDict(extra="ignore")

    created: int = 0
    not_created: int = 0
    valid: int = 0
    invalid: int = 0
    deleted: int = 0
    not_deleted: int = 0


class RulesMeta(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sent: str = ""
    result_count: int = 0
    summary: RulesSummary = Field(default_factory=RulesSummary)


class RulesResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: list[StreamRule] = Field(default_factory=list)
    meta: RulesMeta = Field(default_factory=RulesMeta)
    errors: list[RuleError] = Field(default_factory=list)


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
        if body.get("connection_issue"):  # the stream's 429: another connection is open
            return f"{body['connection_issue']}: {body.get('detail', '')}".strip()
        if body.get("detail"):
            return str(body["detail"])
        errors = body.get("errors") or []
        if errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0].get("detail") or errors[0])
        if body.get("title"):
            return str(body["title"])
    return response.reason_phrase


class XClient(ApiClient):
    """Calls X (or the local fake): the app bearer token reads, the user's token writes."""

    def __init__(self, account: ChannelAccount, *, transport: httpx.BaseTransport | None = None):
        self.api_base = str((account.config or {}).get("api_base") or API_BASE).rstrip("/")
        secrets = account.secrets or {}
        self.user_token = secrets.get("access_token", "")
        self.read_token = secrets.get("bearer_token") or self.user_token
        self._http = httpx.Client(timeout=TIMEOUT, transport=transport)

    def _call(self, method: str, path: str, token: str, **kwargs: Any) -> tuple[dict[str, Any], RateLimit]:
        try:
            response = self._http.request(method, self.api_base + path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        except httpx.HTTPError as exc:
            raise XAPIError(0, f"{type(exc).__name__}: {exc}", timed_out=may_have_landed(exc)) from exc
        rate = RateLimit.from_headers(response.headers, RATE_PREFIX)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise XAPIError(response.status_code, _detail(response), rate, body=body)
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

    def user_tweets(self, user_id: str, *, max_results: int = 100) -> tuple[TimelinePage, RateLimit]:
        """The user's latest posts, replies included, newest first."""
        params = {"max_results": str(max_results), "tweet.fields": TWEET_FIELDS}
        body, rate = self._call("GET", f"/2/users/{user_id}/tweets", self.read_token, params=params)
        return TimelinePage.model_validate(body), rate

    def search_recent(self, query: str, *, since_id: str = "", next_token: str = "", max_results: int = 100) -> tuple[TimelinePage, RateLimit]:
        params = {"query": query, "max_results": str(max_results), "tweet.fields": TWEET_FIELDS, "expansions": "author_id", "user.fields": USER_FIELDS}
        if since_id:
            params["since_id"] = since_id
        if next_token:
            params["next_token"] = next_token
        body, rate = self._call("GET", "/2/tweets/search/recent", self.read_token, params=params)
        return TimelinePage.model_validate(body), rate

    def stream_rules(self) -> RulesResponse:
        body, _ = self._call("GET", "/2/tweets/search/stream/rules", self.read_token)
        return RulesResponse.model_validate(body)

    def add_stream_rules(self, rules: list[dict[str, str]], *, dry_run: bool = False) -> RulesResponse:
        params = {"dry_run": "true"} if dry_run else {}
        try:
            body, _ = self._call("POST", "/2/tweets/search/stream/rules", self.read_token, params=params, json={"add": rules})
        except XAPIError as exc:
            # Invalid rules refuse the whole batch with a 400 that still lists each rule's error.
            if exc.status == 400 and isinstance(exc.body, dict) and "meta" in exc.body:
                return RulesResponse.model_validate(exc.body)
            raise
        return RulesResponse.model_validate(body)

    def delete_stream_rules(self, ids: list[str]) -> RulesResponse:
        body, _ = self._call("POST", "/2/tweets/search/stream/rules", self.read_token, json={"delete": {"ids": ids}})
        return RulesResponse.model_validate(body)

    @contextmanager
    def stream(self, *, stall_seconds: float = 20.0, backfill_minutes: int = 0) -> Iterator[Iterator[dict[str, Any] | None]]:
        """Connect the filtered stream; yields an iterator of parsed lines (None for a keep-alive).

        The read timeout is the stall limit: X sends a keep-alive every 20 s, so nothing for that
        long means the connection is dead (httpx.ReadTimeout, raised as XAPIError status 0).
        """
        params = {"tweet.fields": TWEET_FIELDS, "expansions": "author_id", "user.fields": USER_FIELDS}
        if backfill_minutes:
            params["backfill_minutes"] = str(backfill_minutes)
        timeout = httpx.Timeout(stall_seconds, connect=5.0)
        headers = {"Authorization": f"Bearer {self.read_token}"}
        try:
            with self._http.stream("GET", self.api_base + "/2/tweets/search/stream", params=params, headers=headers, timeout=timeout) as response:
                rate = RateLimit.from_headers(response.headers, RATE_PREFIX)
                if response.status_code >= 400:
                    response.read()
                    raise XAPIError(response.status_code, _detail(response), rate)
                yield _lines(response)
        except httpx.HTTPError as exc:
            raise XAPIError(0, f"{type(exc).__name__}: {exc}") from exc


def _lines(response: httpx.Response) -> Iterator[dict[str, Any] | None]:
    for line in response.iter_lines():
        line = line.strip()
        if not line:
            yield None  # keep-alive
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue  # a torn line after a disconnect; the reconnect carries on
        if isinstance(value, dict):
            yield value
