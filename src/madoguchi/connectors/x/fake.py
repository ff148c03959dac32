"""A local fake of X API v2 for tests and the demo, on 127.0.0.1 in a thread.

It reproduces what the connector relies on, as documented (see client.py): the mentions timeline
newest first with `since_id`, `max_results` and opaque `pagination_token`s, `meta` and
`includes.users` with only the requested fields, the 800-mention reach, `POST /2/tweets` with
`reply.in_reply_to_tweet_id`, DMs, the `x-rate-limit-*` headers on every response with 429 when a
window is used up, and problem bodies for 401, 403 (duplicate content, deleted post) and 5xx.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from madoguchi.connectors.x.outbound import weighted_length

REACHABLE_MENTIONS = 800
DEFAULT_TWEET_FIELDS = ("id", "text", "edit_history_tweet_ids")
DEFAULT_USER_FIELDS = ("id", "name", "username")


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"title": title, "detail": detail, "type": "about:blank", "status": status}


@dataclass
class Window:
    """One endpoint's 15-minute rate-limit window."""

    limit: int
    remaining: int
    reset: int = field(default_factory=lambda: int(time.time()) + 900)

    def headers(self) -> dict[str, str]:
        return {"x-rate-limit-limit": str(self.limit), "x-rate-limit-remaining": str(max(0, self.remaining)), "x-rate-limit-reset": str(self.reset)}


class FakeX(ThreadingHTTPServer):
    """X as one brand account sees it: its user, the people who mention it, their posts."""

    daemon_threads = True

    def __init__(self, brand_id: str = "2244994945", brand_username: str = "AcmeSupport"):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bearer_token = "fake-app-bearer"
        self.access_token = "fake-user-token"
        self.consumer_secret = "fake-consumer-secret"
        self.brand_id = brand_id
        self.users: dict[str, dict[str, Any]] = {}
        self.tweets: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.mention_ids: list[str] = []  # oldest first
        self.posted: list[dict[str, Any]] = []
        self.dms: list[dict[str, Any]] = []  # what the brand sent
        self.dm_events: list[dict[str, Any]] = []  # every DM event, oldest first
        self.requests: list[tuple[str, str]] = []
        self.failures: deque[tuple[str, int, dict[str, Any]]] = deque()
        self.windows = {"mentions": Window(300, 300), "tweets": Window(100, 100), "dm": Window(200, 200), "dm_events": Window(300, 300)}
        self.lock = threading.Lock()
        self._ids = itertools.count(1_860_000_000_000_000_000, 4_194_304)  # snowflake-like, growing
        self.add_user(brand_id, brand_username, "Acme サポート", followers=52000, verified=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> FakeX:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def account_settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(config, secrets) of a ChannelAccount that talks to this fake."""
        return {"api_base": self.url, "user_id": self.brand_id}, {"bearer_token": self.bearer_token, "access_token": self.access_token, "consumer_secret": self.consumer_secret}

    # --- the platform's state ----------------------------------------------------------------

    def add_user(self, user_id: str, username: str, name: str, *, followers: int = 10, verified: bool = False) -> dict[str, Any]:
        user = {"id": user_id, "username": username, "name": name, "profile_image_url": f"https://pbs.twimg.com/profile_images/{user_id}/normal.jpg", "verified": verified, "public_metrics": {"followers_count": followers, "following_count": 1, "tweet_count": 1, "listed_count": 0}, "description": ""}
        self.users[user_id] = user
        return user

    def post(self, author_id: str, text: str, *, in_reply_to: str = "", lang: str = "ja") -> dict[str, Any]:
        """Someone posts; a post that names the brand's @username is a mention of it."""
        tweet_id = str(next(self._ids))
        parent = self.tweets.get(in_reply_to)
        tweet: dict[str, Any] = {
            "id": tweet_id,
            "text": text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
            "edit_history_tweet_ids": [tweet_id],
            "author_id": author_id,
            "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conversation_id": parent["conversation_id"] if parent else tweet_id,
            "lang": lang,
        }
        if parent:
            tweet["in_reply_to_user_id"] = parent["author_id"]
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": in_reply_to}]
        with self.lock:
            self.tweets[tweet_id] = tweet
            brand = self.users[self.brand_id]["username"].lower()
            if f"@{brand}" in text.lower() or (parent and parent["author_id"] == self.brand_id):
                self.mention_ids.append(tweet_id)
        return tweet

    def dm(self, sender_id: str, text: str, *, to: str = "") -> dict[str, Any]:
        """A direct message between someone and the brand (sender_id may be the brand itself)."""
        other = to or sender_id
        pair = sorted([other, self.brand_id], key=int)
        event = {
            "id": str(next(self._ids)),
            "event_type": "MessageCreate",
            "text": text,
            "sender_id": sender_id,
            "dm_conversation_id": f"{pair[0]}-{pair[1]}",
            "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
        with self.lock:
            self.dm_events.append(event)
        return event

    # --- Account Activity webhook deliveries (v1.1-shaped) -------------------------------------

    def _v1_user(self, user_id: str) -> dict[str, Any]:
        user = self.users[user_id]
        return {"id": int(user_id), "id_str": user_id, "name": user["name"], "screen_name": user["username"], "profile_image_url_https": user["profile_image_url"], "followers_count": user["public_metrics"]["followers_count"], "verified": user["verified"]}

    def _v1_tweet(self, tweet: dict[str, Any]) -> dict[str, Any]:
        created = dt.datetime.strptime(tweet["created_at"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=dt.UTC)
        parent = next((r["id"] for r in tweet.get("referenced_tweets", []) if r["type"] == "replied_to"), None)
        return {"created_at": created.strftime("%a %b %d %H:%M:%S +0000 %Y"), "id": int(tweet["id"]), "id_str": tweet["id"], "text": tweet["text"], "in_reply_to_status_id_str": parent, "user": self._v1_user(tweet["author_id"]), "lang": tweet.get("lang", "und")}

    def _v1_dm(self, event: dict[str, Any]) -> dict[str, Any]:
        a, b = event["dm_conversation_id"].split("-")
        recipient = b if event["sender_id"] == a else a
        created = dt.datetime.strptime(event["created_at"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=dt.UTC)
        return {"type": "message_create", "id": event["id"], "created_timestamp": str(int(created.timestamp() * 1000)), "message_create": {"target": {"recipient_id": recipient}, "sender_id": event["sender_id"], "message_data": {"text": event["text"], "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []}}}}

    def activity(self, *, tweets: list[dict[str, Any]] = (), dms: list[dict[str, Any]] = ()) -> tuple[bytes, str]:  # type: ignore[assignment]
        """An Account Activity delivery of these posts and DMs, and its signature header."""
        payload: dict[str, Any] = {"for_user_id": self.brand_id}
        if tweets:
            payload["tweet_create_events"] = [self._v1_tweet(t) for t in tweets]
        if dms:
            payload["direct_message_events"] = [self._v1_dm(e) for e in dms]
            payload["users"] = {uid: self._v1_user(uid) for e in dms for uid in e["dm_conversation_id"].split("-")}
        body = json.dumps(payload, ensure_ascii=False).encode()
        digest = hmac.new(self.consumer_secret.encode(), body, hashlib.sha256).digest()
        return body, "sha256=" + base64.b64encode(digest).decode()

    def delete(self, tweet_id: str) -> None:
        with self.lock:
            self.deleted.add(tweet_id)
            if tweet_id in self.mention_ids:
                self.mention_ids.remove(tweet_id)

    def fail(self, path: str, status: int, detail: str, *, times: int = 1) -> None:
        titles = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
        for _ in range(times):
            self.failures.append((path, status, problem(status, titles.get(status, "Error"), detail)))


def _token(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _untoken(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


class _Handler(BaseHTTPRequestHandler):
    server: FakeX
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any], window: Window | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (window.headers() if window else {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _prelude(self, endpoint: str, *, user_context: bool) -> Window | None:
        """Auth, injected failures and the rate limit; None if a response was already sent."""
        self.server.requests.append((self.command, self.path))
        auth = self.headers.get("Authorization", "")
        allowed = {f"Bearer {self.server.access_token}"} | (set() if user_context else {f"Bearer {self.server.bearer_token}"})
        if auth == f"Bearer {self.server.bearer_token}" and user_context:
            self._send(403, problem(403, "Unsupported Authentication", "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context]."))
            return None
        if auth not in allowed:
            self._send(401, problem(401, "Unauthorized", "Unauthorized"))
            return None
        window = self.server.windows[endpoint]
        with self.server.lock:
            if window.reset <= time.time():
                window.remaining, window.reset = window.limit, int(time.time()) + 900
            if window.remaining <= 0:
                limited = True
            else:
                limited = False
                window.remaining -= 1
            failure = next((f for f in self.server.failures if urlsplit(self.path).path.startswith(f[0])), None)
            if failure is not None:
                self.server.failures.remove(failure)
        if limited:
            self._send(429, problem(429, "Too Many Requests", "Too Many Requests"), window)
            return None
        if failure is not None:
            self._send(failure[1], failure[2], window)
            return None
        return window

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if url.path == "/2/dm_events":
            self._dm_events({k: v[0] for k, v in parse_qs(url.query).items()})
            return
        if not (len(parts) == 4 and parts[:2] == ["2", "users"] and parts[3] == "mentions"):
            self._send(404, problem(404, "Not Found Error", "Not found"))
            return
        window = self._prelude("mentions", user_context=False)
        if window is None:
            return
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            max_results = int(query.get("max_results", "10"))
        except ValueError:
            max_results = 0
        if not 5 <= max_results <= 100:
            self._send(400, {"errors": [{"parameters": {"max_results": [query.get("max_results")]}, "message": "The `max_results` query parameter value is not between 5 and 100"}], "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"}, window)
            return
        if parts[2] != self.server.brand_id:
            self._send(200, {"meta": {"result_count": 0}}, window)
            return
        since = int(query.get("since_id", "0") or 0)
        with self.server.lock:
            ids = [i for i in self.server.mention_ids[-REACHABLE_MENTIONS:] if int(i) > since]
        ids.reverse()  # newest first
        if "pagination_token" in query:
            until = int(_untoken(query["pagination_token"]))
            ids = [i for i in ids if int(i) < until]
        page, rest = ids[:max_results], ids[max_results:]
        if not page:
            self._send(200, {"meta": {"result_count": 0}}, window)
            return
        tweet_fields = set(DEFAULT_TWEET_FIELDS) | set(filter(None, query.get("tweet.fields", "").split(",")))
        user_fields = set(DEFAULT_USER_FIELDS) | set(filter(None, query.get("user.fields", "").split(",")))
        data = [{k: v for k, v in self.server.tweets[i].items() if k in tweet_fields} for i in page]
        body: dict[str, Any] = {"data": data, "meta": {"result_count": len(page), "newest_id": page[0], "oldest_id": page[-1]}}
        if rest:
            body["meta"]["next_token"] = _token(page[-1])
        if "author_id" in query.get("expansions", ""):
            authors = dict.fromkeys(self.server.tweets[i]["author_id"] for i in page)
            body["includes"] = {"users": [{k: v for k, v in self.server.users[a].items() if k in user_fields} for a in authors if a in self.server.users]}
        self._send(200, body, window)

    def _dm_events(self, query: dict[str, str]) -> None:
        window = self._prelude("dm_events", user_context=True)
        if window is None:
            return
        max_results = int(query.get("max_results", "100") or 100)
        with self.server.lock:
            events = list(reversed(self.server.dm_events))  # newest first
        if "pagination_token" in query:
            until = int(_untoken(query["pagination_token"]))
            events = [e for e in events if int(e["id"]) < until]
        page, rest = events[:max_results], events[max_results:]
        body: dict[str, Any] = {"data": page, "meta": {"result_count": len(page)}} if page else {"meta": {"result_count": 0}}
        if rest:
            body["meta"]["next_token"] = _token(page[-1]["id"])
        if page and "sender_id" in query.get("expansions", ""):
            user_fields = set(DEFAULT_USER_FIELDS) | set(filter(None, query.get("user.fields", "").split(",")))
            senders = dict.fromkeys(e["sender_id"] for e in page)
            body["includes"] = {"users": [{k: v for k, v in self.server.users[s].items() if k in user_fields} for s in senders if s in self.server.users]}
        self._send(200, body, window)

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        endpoint = "tweets" if path == "/2/tweets" else "dm" if path.startswith("/2/dm_conversations/with/") else ""
        if not endpoint:
            self._send(404, problem(404, "Not Found Error", "Not found"))
            return
        window = self._prelude(endpoint, user_context=True)
        if window is None:
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            text = body["text"]
            assert isinstance(text, str) and text
        except (ValueError, KeyError, TypeError, AssertionError):
            self._send(400, {"errors": [{"message": "$.text: is missing but it is required"}], "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"}, window)
            return
        if endpoint == "dm":
            participant = path.split("/")[4]
            event = self.server.dm(self.server.brand_id, text, to=participant)
            self.server.dms.append({"to": participant, "text": text, "id": event["id"]})
            self._send(201, {"data": {"dm_conversation_id": event["dm_conversation_id"], "dm_event_id": event["id"]}}, window)
            return
        if weighted_length(text) > 280:
            self._send(403, problem(403, "Forbidden", "Your Tweet text is too long. For more information on how X determines text length see https://github.com/twitter/twitter-text."), window)
            return
        reply_to = str((body.get("reply") or {}).get("in_reply_to_tweet_id", ""))
        if reply_to and (reply_to not in self.server.tweets or reply_to in self.server.deleted):
            self._send(403, problem(403, "Forbidden", "You attempted to reply to a Tweet that is deleted or not visible to you."), window)
            return
        if any(p["text"] == text for p in self.server.posted):
            self._send(403, problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."), window)
            return
        tweet = self.server.post(self.server.brand_id, text, in_reply_to=reply_to)
        self.server.posted.append({"id": tweet["id"], "text": text, "in_reply_to_tweet_id": reply_to})
        self._send(201, {"data": {"id": tweet["id"], "text": tweet["text"], "edit_history_tweet_ids": [tweet["id"]]}}, window)
