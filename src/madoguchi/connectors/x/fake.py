"""A local fake of X API v2 for tests and the demo, on 127.0.0.1 in a thread.

It reproduces what the connector relies on, as documented (see client.py): the mentions timeline
newest first with `since_id`, `max_results` and opaque `pagination_token`s, `meta` and
`includes.users` with only the requested fields, the 800-mention reach, `POST /2/tweets` with
`reply.in_reply_to_tweet_id`, DMs, the `x-rate-limit-*` headers on every response with 429 when a
window is used up, and problem bodies for 401, 403 (duplicate content, deleted post) and 5xx.

Listening: the filtered stream (`GET /2/tweets/search/stream`, chunked, one JSON object a line,
blank keep-alive lines, one connection at a time with the documented 429 `TooManyConnections`
problem, scripted disconnects and stalls), its rules (`GET/POST /2/tweets/search/stream/rules`
with add, delete, `dry_run`, `meta.summary` and per-rule errors: invalid rules refuse the whole
batch, duplicates, length and count caps), recent search with `since_id`/`next_token`, and the
user posts timeline. Posts are matched against the rules by a small evaluator of the rule syntax
(terms, "phrases", @mentions, #hashtags, -exclusions, OR, parentheses, lang:).
Edits create a new post id with the edit history; Account Activity deliveries can carry
deletions, likes, follows and read marks too. `lose_responses` makes a post succeed but its
response never arrive (the connection closes), as a timeout after X accepted it looks.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from madoguchi.connectors.fakes import JsonHandler, LoopbackServer
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


class FakeX(LoopbackServer):
    """X as one brand account sees it: its user, the people who mention it, their posts."""

    def __init__(self, brand_id: str = "2244994945", brand_username: str = "AcmeSupport"):
        super().__init__(_Handler)
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
        self.windows = {
            "mentions": Window(300, 300), "tweets": Window(100, 100), "dm": Window(200, 200), "dm_events": Window(300, 300),
            "stream": Window(50, 50), "rules": Window(450, 450), "search": Window(450, 450), "user_tweets": Window(1500, 1500),
        }
        self.lock = threading.Lock()
        # Filtered stream and its rules.
        self.rules: dict[str, dict[str, str]] = {}  # id → {id, value, tag}
        self.rule_max_length = 1024
        self.max_rules = 1000
        self.stream_backlog: deque[Any] = deque()  # payload dicts and scripted actions
        self.stream_ready = threading.Condition(self.lock)
        self.stream_open = False
        self.stream_connects = 0
        self.keepalive_seconds = 20.0
        self.stall_seconds = 30.0
        self.lose_responses = 0  # the next N created posts lose their response
        self.closing = False
        self._ids = itertools.count(1_860_000_000_000_000_000, 4_194_304)  # snowflake-like, growing
        self.add_user(brand_id, brand_username, "Acme サポート", followers=52000, verified=True)

    def stop(self) -> None:
        self.closing = True
        with self.lock:
            self.stream_ready.notify_all()
        super().stop()

    def account_settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(config, secrets) of a ChannelAccount that talks to this fake."""
        return {"api_base": self.url, "user_id": self.brand_id}, {"bearer_token": self.bearer_token, "access_token": self.access_token, "consumer_secret": self.consumer_secret}

    # --- the platform's state ----------------------------------------------------------------

    def add_user(self, user_id: str, username: str, name: str, *, followers: int = 10, verified: bool = False) -> dict[str, Any]:
        user = {"id": user_id, "username": username, "name": name, "profile_image_url": f"https://pbs.twimg.com/profile_images/{user_id}/normal.jpg", "verified": verified, "public_metrics": {"followers_count": followers, "following_count": 1, "tweet_count": 1, "listed_count": 0}, "description": ""}
        self.users[user_id] = user
        return user

    def post(self, author_id: str, text: str, *, in_reply_to: str = "", lang: str = "ja", edits: str = "") -> dict[str, Any]:
        """Someone posts; a post that names the brand's @username is a mention of it. It goes out on
        the filtered stream when it matches a rule. `edits`: the id of the post this one edits."""
        tweet_id = str(next(self._ids))
        parent = self.tweets.get(in_reply_to)
        history = [*self.tweets[edits]["edit_history_tweet_ids"], tweet_id] if edits else [tweet_id]
        tweet: dict[str, Any] = {
            "id": tweet_id,
            "text": text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
            "edit_history_tweet_ids": history,
            "author_id": author_id,
            "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conversation_id": parent["conversation_id"] if parent else tweet_id,
            "lang": lang,
        }
        if parent:
            tweet["in_reply_to_user_id"] = parent["author_id"]
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": in_reply_to}]
        if edits:
            original = self.tweets[edits]
            tweet["conversation_id"] = original["conversation_id"]
            for key in ("in_reply_to_user_id", "referenced_tweets"):
                if key in original:
                    tweet[key] = original[key]
        mentioned = [m for m in re.findall(r"@(\w{1,15})", text)]
        if mentioned:
            by_name = {u["username"].lower(): u["id"] for u in self.users.values()}
            tweet["entities"] = {"mentions": [{"start": 0, "end": 0, "username": m, "id": by_name.get(m.lower(), "")} for m in mentioned]}
        with self.lock:
            self.tweets[tweet_id] = tweet
            brand = self.users[self.brand_id]["username"].lower()
            if f"@{brand}" in text.lower() or (parent and parent["author_id"] == self.brand_id):
                self.mention_ids.append(tweet_id)
            matching = [{"id": r["id"], "tag": r["tag"]} for r in self.rules.values() if rule_matches(r["value"], tweet)]
            if matching:
                user = self.users.get(author_id)
                line = {"data": tweet, "includes": {"users": [user] if user else []}, "matching_rules": matching}
                self.stream_backlog.append(json.loads(json.dumps(line)))
                self.stream_ready.notify_all()
        return tweet

    def edit(self, tweet_id: str, text: str) -> dict[str, Any]:
        """The author edits a post: X gives the new version a new id and the whole edit history."""
        return self.post(self.tweets[tweet_id]["author_id"], text, lang=self.tweets[tweet_id].get("lang", "ja"), edits=tweet_id)

    def stream_script(self, *actions: str) -> None:
        """Queue what the stream does next, in order with the posts: "disconnect" (the connection
        closes), "stall" (nothing at all for `stall_seconds`), "keepalive", "operational" (X's
        operational-disconnect error line, then the connection closes)."""
        with self.lock:
            self.stream_backlog.extend(actions)
            self.stream_ready.notify_all()

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
        history = tweet.get("edit_history_tweet_ids") or [tweet["id"]]
        return {"created_at": created.strftime("%a %b %d %H:%M:%S +0000 %Y"), "id": int(tweet["id"]), "id_str": tweet["id"], "text": tweet["text"], "in_reply_to_status_id_str": parent, "user": self._v1_user(tweet["author_id"]), "lang": tweet.get("lang", "und"), "edit_history": {"initial_tweet_id": history[0], "edit_tweet_ids": history}, "edit_controls": {"editable_until_ms": int(created.timestamp() * 1000) + 3_600_000, "edits_remaining": 5 - len(history) + 1, "is_edit_eligible": True}}

    def favorite_event(self, user_id: str, tweet: dict[str, Any]) -> dict[str, Any]:
        """`favorite_events[]`: someone liked a post (ours, usually)."""
        now = dt.datetime.now(dt.UTC)
        return {"id": hashlib.md5(f"{user_id}:{tweet['id']}".encode()).hexdigest(), "created_at": now.strftime("%a %b %d %H:%M:%S +0000 %Y"), "timestamp_ms": int(now.timestamp() * 1000), "favorited_status": self._v1_tweet(tweet), "user": self._v1_user(user_id)}

    def follow_event(self, source_id: str, target_id: str, kind: str = "follow") -> dict[str, Any]:
        """`follow_events[]`: type "follow" or "unfollow", source follows target."""
        return {"type": kind, "created_timestamp": str(int(time.time() * 1000)), "target": self._v1_user(target_id), "source": self._v1_user(source_id)}

    def delete_event(self, tweet: dict[str, Any]) -> dict[str, Any]:
        """`tweet_delete_events[]`: only the ids are left."""
        return {"status": {"id": tweet["id"], "user_id": tweet["author_id"]}, "timestamp_ms": str(int(time.time() * 1000))}

    def read_event(self, reader_id: str, last_read_event_id: str) -> dict[str, Any]:
        """`direct_message_mark_read_events[]`: `sender_id` is the one who read."""
        return {"created_timestamp": str(int(time.time() * 1000)), "sender_id": reader_id, "target": {"recipient_id": self.brand_id}, "last_read_event_id": last_read_event_id}

    def typing_event(self, user_id: str) -> dict[str, Any]:
        """`direct_message_indicate_typing_events[]`."""
        return {"created_timestamp": str(int(time.time() * 1000)), "sender_id": user_id, "target": {"recipient_id": self.brand_id}}

    def _v1_dm(self, event: dict[str, Any]) -> dict[str, Any]:
        a, b = event["dm_conversation_id"].split("-")
        recipient = b if event["sender_id"] == a else a
        created = dt.datetime.strptime(event["created_at"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=dt.UTC)
        return {"type": "message_create", "id": event["id"], "created_timestamp": str(int(created.timestamp() * 1000)), "message_create": {"target": {"recipient_id": recipient}, "sender_id": event["sender_id"], "message_data": {"text": event["text"], "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []}}}}

    def activity(self, *, tweets: list[dict[str, Any]] = (), dms: list[dict[str, Any]] = (), **events: list[dict[str, Any]]) -> tuple[bytes, str]:  # type: ignore[assignment]
        """An Account Activity delivery of these posts and DMs (and other `…_events` lists, e.g.
        `favorite_events=[fake.favorite_event(…)]`), and its signature header."""
        payload: dict[str, Any] = {"for_user_id": self.brand_id, **events}
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


# --- the rule syntax, as far as the fake needs it ---------------------------------------------

_RULE_TOKEN = re.compile(r'\s*(\(|\)|-?"[^"]*"|-?[^\s()"]+)')


class RuleSyntaxError(ValueError):
    pass


def _rule_tokens(value: str) -> list[str]:
    if value.count('"') % 2:
        raise RuleSyntaxError("There are unbalanced quotes in your rule")
    tokens, pos = [], 0
    while pos < len(value):
        found = _RULE_TOKEN.match(value, pos)
        if not found or not found.group(1):
            break
        tokens.append(found.group(1))
        pos = found.end()
    return tokens


def parse_rule(value: str) -> Any:
    """A rule as a tree: ("or", [...]), ("and", [...]) or ("term", text, negated)."""
    tokens = _rule_tokens(value)

    def parse_or() -> Any:
        items = [parse_and()]
        while tokens and tokens[0] == "OR":
            tokens.pop(0)
            items.append(parse_and())
        return ("or", items)

    def parse_and() -> Any:
        items = []
        while tokens and tokens[0] not in (")", "OR"):
            token = tokens.pop(0)
            if token == "(":
                items.append(parse_or())
                if not tokens or tokens.pop(0) != ")":
                    raise RuleSyntaxError("There are unbalanced parentheses in your rule")
            else:
                negated = token.startswith("-")
                items.append(("term", token[1:] if negated else token, negated))
        if not items:
            raise RuleSyntaxError("Ambiguous use of OR")
        return ("and", items)

    tree = parse_or()
    if tokens:
        raise RuleSyntaxError("There are unbalanced parentheses in your rule")
    return tree


def _positive(tree: Any) -> bool:
    """Whether the rule has a term that is not a negation or a lang: operator."""
    if tree[0] == "term":
        return not tree[2] and not tree[1].startswith("lang:")
    return any(_positive(t) for t in tree[1])


def check_rule(value: str) -> str:
    """Why X would refuse this rule value ("" if it would not)."""
    try:
        tree = parse_rule(value)
    except RuleSyntaxError as exc:
        return str(exc)
    if not _positive(tree):
        return "Rules must contain a non-negation term (at least one positive term that is not lang:)"
    return ""


def rule_matches(value: str, tweet: dict[str, Any]) -> bool:
    try:
        tree = parse_rule(value)
    except RuleSyntaxError:
        return False
    text = html_unescape(tweet.get("text", "")).lower()

    def term(word: str) -> bool:
        if word.startswith("lang:"):
            return tweet.get("lang") == word[5:]
        return word.strip('"').lower() in text

    def evaluate(node: Any) -> bool:
        if node[0] == "term":
            return term(node[1]) != node[2]
        results = [evaluate(n) for n in node[1]]
        return any(results) if node[0] == "or" else all(results)

    return evaluate(tree)


def html_unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _token(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _untoken(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


class _Handler(JsonHandler):
    server: FakeX
    def _send(self, status: int, body: dict[str, Any], window: Window | None = None) -> None:
        self.send_json(status, body, window.headers() if window else None)

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
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/2/dm_events":
            self._dm_events(query)
            return
        if url.path == "/2/tweets/search/stream":
            self._stream()
            return
        if url.path == "/2/tweets/search/stream/rules":
            window = self._prelude("rules", user_context=False)
            if window is not None:
                with self.server.lock:
                    data = list(self.server.rules.values())
                rules_body: dict[str, Any] = {"meta": {"sent": _now(), "result_count": len(data)}}
                if data:
                    rules_body["data"] = data
                self._send(200, rules_body, window)
            return
        if url.path == "/2/tweets/search/recent":
            self._timeline("search", query, lambda t: rule_matches(query.get("query", ""), t), min_results=10)
            return
        if len(parts) == 4 and parts[:2] == ["2", "users"] and parts[3] == "tweets":
            self._timeline("user_tweets", query, lambda t: t["author_id"] == parts[2], min_results=5)
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

    def _timeline(self, endpoint: str, query: dict[str, str], keep: Any, *, min_results: int) -> None:
        """Posts newest first with since_id, max_results and next_token/pagination_token."""
        window = self._prelude(endpoint, user_context=False)
        if window is None:
            return
        try:
            max_results = int(query.get("max_results", "10"))
        except ValueError:
            max_results = 0
        if not min_results <= max_results <= 100:
            self._send(400, {"errors": [{"parameters": {"max_results": [query.get("max_results")]}, "message": f"The `max_results` query parameter value is not between {min_results} and 100"}], "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"}, window)
            return
        since = int(query.get("since_id", "0") or 0)
        with self.server.lock:
            found = [t for i, t in self.server.tweets.items() if int(i) > since and i not in self.server.deleted and keep(t)]
        found.sort(key=lambda t: int(t["id"]), reverse=True)
        token = query.get("next_token") or query.get("pagination_token")
        if token:
            until = int(_untoken(token))
            found = [t for t in found if int(t["id"]) < until]
        page, rest = found[:max_results], found[max_results:]
        if not page:
            self._send(200, {"meta": {"result_count": 0}}, window)
            return
        tweet_fields = set(DEFAULT_TWEET_FIELDS) | set(filter(None, query.get("tweet.fields", "").split(",")))
        user_fields = set(DEFAULT_USER_FIELDS) | set(filter(None, query.get("user.fields", "").split(",")))
        body: dict[str, Any] = {"data": [{k: v for k, v in t.items() if k in tweet_fields} for t in page], "meta": {"result_count": len(page), "newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}}
        if rest:
            body["meta"]["next_token"] = _token(page[-1]["id"])
        if "author_id" in query.get("expansions", ""):
            authors = dict.fromkeys(t["author_id"] for t in page)
            body["includes"] = {"users": [{k: v for k, v in self.server.users[a].items() if k in user_fields} for a in authors if a in self.server.users]}
        self._send(200, body, window)

    def _stream(self) -> None:
        window = self._prelude("stream", user_context=False)
        if window is None:
            return
        server = self.server
        with server.lock:
            busy = server.stream_open
            server.stream_open = True
            server.stream_connects += 1
        if busy:
            self._send(429, {"title": "ConnectionException", "detail": "This stream is currently at the maximum allowed connection limit.", "connection_issue": "TooManyConnections", "type": "https://api.twitter.com/2/problems/streaming-connection"}, window)
            return
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            for name, value in window.headers().items():
                self.send_header(name, value)
            self.end_headers()
            self._stream_lines()
        except OSError:
            pass  # the client went away
        finally:
            with server.lock:
                server.stream_open = False

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _stream_lines(self) -> None:
        server = self.server
        next_keepalive = time.monotonic() + server.keepalive_seconds
        while not server.closing:
            with server.lock:
                if not server.stream_backlog:
                    server.stream_ready.wait(timeout=0.05)
                item = server.stream_backlog.popleft() if server.stream_backlog else None
            if item is None:
                if self._client_gone():
                    return
                if time.monotonic() >= next_keepalive:
                    self._chunk(b"\r\n")
                    next_keepalive = time.monotonic() + server.keepalive_seconds
                continue
            if item == "disconnect":
                return
            if item == "stall":
                until = time.monotonic() + server.stall_seconds
                while time.monotonic() < until and not server.closing:
                    if self._client_gone():
                        return
                    time.sleep(0.02)
                continue
            if item == "operational":
                error = {"errors": [{"title": "operational-disconnect", "disconnect_type": "UpstreamOperationalDisconnect", "detail": "This stream has been disconnected upstream for operational reasons.", "type": "https://api.twitter.com/2/problems/operational-disconnect"}]}
                self._chunk(json.dumps(error).encode() + b"\r\n")
                return
            if item == "keepalive":
                self._chunk(b"\r\n")
                continue
            self._chunk(json.dumps(item, ensure_ascii=False).encode() + b"\r\n")
            next_keepalive = time.monotonic() + server.keepalive_seconds

    def _rules(self, query: dict[str, str]) -> None:
        window = self._prelude("rules", user_context=False)
        if window is None:
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            assert isinstance(body, dict) and ("add" in body) != ("delete" in body)
        except (ValueError, AssertionError):
            self._send(400, {"errors": [{"message": "Must specify either 'add' or 'delete'"}], "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"}, window)
            return
        dry_run = query.get("dry_run") == "true"
        server = self.server
        if "delete" in body:
            ids = [str(i) for i in (body["delete"] or {}).get("ids", [])]
            with server.lock:
                known = [i for i in ids if i in server.rules]
                if not dry_run:
                    for i in known:
                        del server.rules[i]
            result: dict[str, Any] = {"meta": {"sent": _now(), "summary": {"deleted": len(known), "not_deleted": len(ids) - len(known)}}}
            missing = [i for i in ids if i not in known]
            if missing:
                result["errors"] = [{"id": i, "title": "Not Found Error", "type": "https://api.twitter.com/2/problems/resource-not-found", "detail": f"Could not find rule with id: [{i}]"} for i in missing]
            self._send(200, result, window)
            return
        rules = [r for r in body["add"] if isinstance(r, dict) and isinstance(r.get("value"), str)]
        errors: list[dict[str, Any]] = []
        with server.lock:
            values = {r["value"]: r["id"] for r in server.rules.values()}
            if len(server.rules) + len(rules) > server.max_rules:
                self._send(403, {"title": "RulesCapExceeded", "detail": f"Rule cap exceeded: you can have at most {server.max_rules} rules", "type": "https://api.twitter.com/2/problems/rule-cap"}, window)
                return
            for rule in rules:
                value = rule["value"]
                if value in values:
                    errors.append({"value": value, "id": values[value], "title": "DuplicateRule", "type": "https://api.twitter.com/2/problems/duplicate-rules"})
                elif len(value) > server.rule_max_length:
                    errors.append({"value": value, "details": [f"Rule text exceeds {server.rule_max_length} characters"], "title": "UnprocessableEntity", "type": "https://api.twitter.com/2/problems/invalid-rules"})
                elif check_rule(value):
                    errors.append({"value": value, "details": [check_rule(value)], "title": "UnprocessableEntity", "type": "https://api.twitter.com/2/problems/invalid-rules"})
            invalid = sum(1 for e in errors if e["title"] != "DuplicateRule")
            created: list[dict[str, str]] = []
            # An invalid rule refuses the whole batch; duplicates only themselves.
            if not dry_run and not invalid:
                bad = {e["value"] for e in errors}
                for rule in rules:
                    if rule["value"] in bad:
                        continue
                    new = {"id": str(next(server._ids)), "value": rule["value"], "tag": str(rule.get("tag", ""))}
                    server.rules[new["id"]] = new
                    created.append(new)
        valid = len(rules) - len(errors)
        result = {"meta": {"sent": _now(), "summary": {"created": len(created), "not_created": len(rules) - len(created), "valid": valid, "invalid": len(errors)}}}
        if created:
            result["data"] = [{"value": r["value"], "tag": r["tag"], "id": r["id"]} for r in created]
        if errors:
            result["errors"] = errors
        self._send(400 if invalid and not dry_run else 200, result, window)

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
        if path == "/2/tweets/search/stream/rules":
            self._rules({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})
            return
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
        if self.lose_response():  # accepted, but the answer never reaches the caller
            return
        self._send(201, {"data": {"id": tweet["id"], "text": tweet["text"], "edit_history_tweet_ids": [tweet["id"]]}}, window)
