"""A local fake Mastodon server for tests and the demo, on 127.0.0.1 in a thread.

It reproduces what the connector relies on, as documented (see client.py): notifications newest
first with `types[]`, `min_id`/`max_id`/`since_id`, `limit` and the `Link` header; statuses
created with `Idempotency-Key` (a repeat returns the status already made, never a second one),
the 500-character limit counting each URL as 23, 404 when replying to a deleted status; the
instance's `configuration.statuses`; status search and tag timelines with `min_id`;
server-sent event streams (`/api/v1/streaming/user`, `/api/v1/streaming/hashtag?tag=`) with
`:thump` heartbeats that tests can cut (`drop_streams`); `X-RateLimit-*` headers on every answer
(reset as an ISO 8601 time) with 429 when the window is used up; 401 `{"error": "The access token
is invalid"}` for a bad token.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import json
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from madoguchi.connectors.fakes import JsonHandler, LoopbackServer

MAX_CHARACTERS = 500
URL_LENGTH = 23
URL = re.compile(r"https?://\S+", re.IGNORECASE)
MENTION = re.compile(r"@(\w+)@[\w.-]+\w", re.UNICODE)


def counted_length(text: str) -> int:
    """Mastodon's count: every URL as 23 characters, a remote mention as its local part."""
    text = MENTION.sub(lambda m: "@" + m.group(1), text)
    return len(URL.sub("x" * URL_LENGTH, text))


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Window:
    """The account's 5-minute window of 300 calls."""

    limit: int = 300
    remaining: int = 300
    reset: float = field(default_factory=lambda: time.time() + 300)

    def headers(self) -> dict[str, str]:
        reset = dt.datetime.fromtimestamp(self.reset, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(0, self.remaining)), "X-RateLimit-Reset": reset}


class FakeMastodon(LoopbackServer):
    """One Mastodon server as the brand's account sees it."""

    def __init__(self, *, domain: str = "mastodon.example", brand_username: str = "acme", port: int = 0):
        super().__init__(_Handler, port)
        self.domain = domain
        self.access_token = "fake-mastodon-token"
        self.accounts: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.notifications: list[dict[str, Any]] = []  # oldest first
        self.posted: list[dict[str, Any]] = []  # what the brand posted through the API
        self.idempotency: dict[str, str] = {}  # key → status id
        self.requests: list[tuple[str, str]] = []
        self.failures: deque[tuple[str, int, dict[str, Any]]] = deque()
        self.window = Window()
        self.max_characters = MAX_CHARACTERS
        self.lock = threading.RLock()
        self.stream_lock = threading.Lock()  # held while streams are cut, so none reconnects meanwhile
        self.listeners: list[tuple[str, queue.Queue[tuple[str, str] | None]]] = []
        self.stream_connections = 0
        self.streams_changed = threading.Condition()
        self.stopping = False
        self._status_ids = itertools.count(113_500_000_000_000_000, 65_536)
        self._notification_ids = itertools.count(1000)
        self.brand = self.add_account(brand_username, "Acme サポート", followers=5200)
        self.brand_id = self.brand["id"]

    def stop(self) -> None:
        self.stopping = True
        self.drop_streams()
        super().stop()

    def account_settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(config, secrets) of a ChannelAccount that talks to this fake."""
        return {"api_base_url": self.url}, {"access_token": self.access_token}

    # --- the platform's state ----------------------------------------------------------------

    def add_account(self, username: str, display_name: str, *, followers: int = 10, bot: bool = False, domain: str = "") -> dict[str, Any]:
        account_id = str(100_000 + len(self.accounts) + 1)
        acct = f"{username}@{domain}" if domain else username
        host = domain or self.domain
        account = {
            "id": account_id,
            "username": username,
            "acct": acct,
            "display_name": display_name,
            "locked": False,
            "bot": bot,
            "discoverable": True,
            "group": False,
            "created_at": "2024-04-01T00:00:00.000Z",
            "note": "",
            "url": f"https://{host}/@{username}",
            "avatar": f"https://files.{self.domain}/accounts/avatars/{account_id}/original/a.png",
            "avatar_static": f"https://files.{self.domain}/accounts/avatars/{account_id}/original/a.png",
            "header": "",
            "header_static": "",
            "followers_count": followers,
            "following_count": 3,
            "statuses_count": 1,
            "last_status_at": dt.date.today().isoformat(),
            "emojis": [],
            "fields": [],
        }
        self.accounts[account_id] = account
        return account

    def _content(self, text: str, mentions: list[dict[str, Any]], tags: list[str]) -> str:
        """Status HTML as Mastodon renders it: links shortened with invisible spans, h-card mentions, hashtag links."""
        pieces = URL.split(text)
        urls = URL.findall(text)
        out = []
        for i, piece in enumerate(pieces):
            escaped = html.escape(piece, quote=False)
            for m in mentions:
                escaped = escaped.replace(f"@{m['acct']}", f'<span class="h-card" translate="no"><a href="{m["url"]}" class="u-url mention">@<span>{m["username"]}</span></a></span>', 1)
            for tag in tags:
                escaped = re.sub(rf"#{re.escape(tag)}\b", f'<a href="https://{self.domain}/tags/{tag}" class="mention hashtag" rel="tag">#<span>{tag}</span></a>', escaped, count=1)
            out.append(escaped)
            if i < len(urls):
                u = html.escape(urls[i])
                out.append(f'<a href="{u}" target="_blank" rel="nofollow noopener noreferrer"><span class="invisible">{u[:8]}</span><span class="ellipsis">{u[8:38]}</span><span class="invisible">{u[38:]}</span></a>')
        joined = "".join(out)
        return "".join(f"<p>{p.replace(chr(10), '<br />')}</p>" for p in joined.split("\n\n"))

    def post(self, author_id: str, text: str, *, visibility: str = "public", in_reply_to: str = "", language: str | None = "ja", notify: bool = True) -> dict[str, Any]:
        """Someone posts; a status that names @brand is a mention (a notification on the user stream);
        one with #tags goes to those hashtag streams when public."""
        status_id = str(next(self._status_ids))
        author = self.accounts[author_id]
        mentions = [
            {"id": a["id"], "username": a["username"], "url": a["url"], "acct": a["acct"]}
            for a in self.accounts.values()
            if f"@{a['acct']}".lower() in text.lower() and a["id"] != author_id
        ]
        tags = re.findall(r"#(\w+)", text)
        parent = self.statuses.get(in_reply_to)
        status = {
            "id": status_id,
            "created_at": _now(),
            "in_reply_to_id": in_reply_to or None,
            "in_reply_to_account_id": parent["account"]["id"] if parent else None,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": visibility,
            "language": language,
            "uri": f"https://{self.domain}/users/{author['username']}/statuses/{status_id}",
            "url": f"https://{self.domain}/@{author['username']}/{status_id}",
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "edited_at": None,
            "content": self._content(text, mentions, tags),
            "reblog": None,
            "account": author,
            "media_attachments": [],
            "mentions": mentions,
            "tags": [{"name": t.lower(), "url": f"https://{self.domain}/tags/{t.lower()}"} for t in tags],
            "emojis": [],
            "card": None,
            "poll": None,
            "text": text,  # not in the API: what the search matches
        }
        with self.lock:
            self.statuses[status_id] = status
        public = self._public(status)
        if notify and author_id != self.brand_id and any(m["id"] == self.brand_id for m in mentions):
            self._notify("mention", author_id, public)
        if visibility == "public":
            for tag in {t.lower() for t in tags}:
                self.publish(f"hashtag:{tag}", "update", json.dumps(public, ensure_ascii=False))
        return public

    def _public(self, status: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in status.items() if k != "text"}

    def _notify(self, kind: str, from_id: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
        notification: dict[str, Any] = {"id": str(next(self._notification_ids)), "type": kind, "created_at": _now(), "account": self.accounts[from_id]}
        if status is not None:
            notification["status"] = status
        with self.lock:
            self.notifications.append(notification)
        self.publish("user", "notification", json.dumps(notification, ensure_ascii=False))
        return notification

    def favourite(self, from_id: str, status_id: str) -> dict[str, Any]:
        return self._notify("favourite", from_id, self._public(self.statuses[status_id]))

    def reblog(self, from_id: str, status_id: str) -> dict[str, Any]:
        return self._notify("reblog", from_id, self._public(self.statuses[status_id]))

    def follow(self, from_id: str) -> dict[str, Any]:
        return self._notify("follow", from_id)

    def edit(self, status_id: str, text: str, *, notify: bool = False) -> dict[str, Any]:
        """The author edits a status: `status.update` on the user stream of the accounts it
        mentions; an `update` notification too when `notify` (people who boosted it)."""
        with self.lock:
            status = self.statuses[status_id]
            status["text"] = text
            status["content"] = self._content(text, status["mentions"], re.findall(r"#(\w+)", text))
            status["edited_at"] = _now()
        public = self._public(status)
        self.publish("user", "status.update", json.dumps(public, ensure_ascii=False))
        if notify:
            self._notify("update", status["account"]["id"], public)
        return public

    def delete(self, status_id: str) -> None:
        with self.lock:
            self.deleted.add(status_id)
            self.statuses.pop(status_id, None)
            self.notifications = [n for n in self.notifications if (n.get("status") or {}).get("id") != status_id]
        self.publish("user", "delete", status_id)

    def fail(self, path: str, status: int, error: str, *, times: int = 1) -> None:
        for _ in range(times):
            self.failures.append((path, status, {"error": error}))

    # --- streaming ---------------------------------------------------------------------------

    def publish(self, stream: str, event: str, data: str) -> None:
        with self.lock:
            targets = [q for key, q in self.listeners if key == stream]
        for target in targets:
            target.put((event, data))

    def drop_streams(self, then: Callable[[], Any] | None = None) -> None:
        """Cut every open stream; `then` runs before any client can connect again."""
        with self.stream_lock:
            with self.lock:
                listeners, self.listeners = self.listeners, []
            if then is not None:  # before the clients can notice the drop
                then()
            for _, target in listeners:
                target.put(None)

    def wait_for_streams(self, count: int, timeout: float = 10.0) -> bool:
        """Block until `count` stream connections were opened in total."""
        with self.streams_changed:
            return self.streams_changed.wait_for(lambda: self.stream_connections >= count, timeout)

    def _register(self, key: str) -> queue.Queue[tuple[str, str] | None]:
        target: queue.Queue[tuple[str, str] | None] = queue.Queue()
        with self.stream_lock, self.lock:
            self.listeners.append((key, target))
        with self.streams_changed:
            self.stream_connections += 1
            self.streams_changed.notify_all()
        return target


def _ids_between(items: list[dict[str, Any]], query: dict[str, str], limit: int) -> list[dict[str, Any]]:
    """Mastodon's paging: newest first; `min_id` gives the `limit` items immediately newer."""
    def key(item: dict[str, Any]) -> int:
        return int(item["id"])

    if query.get("max_id"):
        items = [i for i in items if key(i) < int(query["max_id"])]
    if query.get("since_id"):
        items = [i for i in items if key(i) > int(query["since_id"])]
    items = sorted(items, key=key)
    if query.get("min_id"):
        return list(reversed([i for i in items if key(i) > int(query["min_id"])][:limit]))
    return list(reversed(items))[:limit]


class _Handler(JsonHandler):
    server: FakeMastodon
    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, body, {**self.server.window.headers(), **(headers or {})})

    def _prelude(self) -> bool:
        """Auth, the rate limit and injected failures; False if a response was already sent."""
        self.server.requests.append((self.command, self.path))
        if self.headers.get("Authorization", "") != f"Bearer {self.server.access_token}":
            self._send(401, {"error": "The access token is invalid"})
            return False
        window = self.server.window
        with self.server.lock:
            if window.reset <= time.time():
                window.remaining, window.reset = window.limit, time.time() + 300
            limited = window.remaining <= 0
            if not limited:
                window.remaining -= 1
            failure = next((f for f in self.server.failures if urlsplit(self.path).path.startswith(f[0])), None)
            if failure is not None:
                self.server.failures.remove(failure)
        if limited:
            self._send(429, {"error": "Too many requests"})
            return False
        if failure is not None:
            self._send(failure[1], failure[2])
            return False
        return True

    def _query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        if path.startswith("/api/v1/streaming/"):
            self._stream(path)
            return
        if not self._prelude():
            return
        query = {k: v[0] for k, v in self._query().items()}
        limit = max(1, min(int(query.get("limit", "40") or 40), 80))
        server = self.server
        if path == "/api/v1/accounts/verify_credentials":
            self._send(200, server.brand)
        elif path == "/api/v2/instance":
            self._send(200, {"domain": server.domain, "title": "Fake Mastodon", "version": "4.5.0", "configuration": {"urls": {"streaming": f"ws://127.0.0.1:{server.server_address[1]}"}, "statuses": {"max_characters": server.max_characters, "max_media_attachments": 4, "characters_reserved_per_url": URL_LENGTH}}})
        elif path == "/api/v1/notifications":
            types = set(self._query().get("types[]", []))
            with server.lock:
                items = [n for n in server.notifications if not types or n["type"] in types]
            page = _ids_between(items, query, limit)
            headers = {}
            if page:
                base = f"{server.url}/api/v1/notifications"
                headers["Link"] = f'<{base}?max_id={page[-1]["id"]}>; rel="next", <{base}?min_id={page[0]["id"]}>; rel="prev"'
            self._send(200, page, headers)
        elif path.startswith("/api/v1/statuses/"):
            status = server.statuses.get(path.rsplit("/", 1)[1])
            if status is None:
                self._send(404, {"error": "Record not found"})
            else:
                self._send(200, server._public(status))
        elif path == "/api/v2/search":
            words = query.get("q", "").lower()
            with server.lock:
                found = [s for s in server.statuses.values() if s["visibility"] == "public" and words and words in s["text"].lower()]
            page = _ids_between(found, query, min(limit, 40)) if query.get("type") in (None, "statuses") else []
            self._send(200, {"accounts": [], "statuses": [server._public(s) for s in page], "hashtags": []})
        elif path.startswith("/api/v1/timelines/tag/"):
            tag = unquote(path.rsplit("/", 1)[1]).lower()
            with server.lock:
                found = [s for s in server.statuses.values() if s["visibility"] == "public" and any(t["name"] == tag for t in s["tags"])]
            self._send(200, [server._public(s) for s in _ids_between(found, query, limit)])
        else:
            self._send(404, {"error": "Record not found"})

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path != "/api/v1/statuses":
            self._send(404, {"error": "Record not found"})
            return
        if not self._prelude():
            return
        server = self.server
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        except ValueError:
            self._send(400, {"error": "Invalid JSON"})
            return
        key = self.headers.get("Idempotency-Key", "")
        with server.lock:
            if key and key in server.idempotency:
                self._send(200, server._public(server.statuses[server.idempotency[key]]))
                return
        text = str(body.get("status") or "")
        if not text.strip():
            self._send(422, {"error": "Validation failed: Text can't be blank"})
            return
        if counted_length(text) > server.max_characters:
            self._send(422, {"error": f"Validation failed: Text character limit of {server.max_characters} exceeded"})
            return
        reply_to = str(body.get("in_reply_to_id") or "")
        if reply_to and reply_to not in server.statuses:
            self._send(404, {"error": "Record not found"})
            return
        visibility = str(body.get("visibility") or "public")
        if visibility not in ("public", "unlisted", "private", "direct"):
            self._send(422, {"error": "Validation failed: Visibility is not included in the list"})
            return
        status = server.post(server.brand_id, text, visibility=visibility, in_reply_to=reply_to, language=body.get("language") or None, notify=False)
        with server.lock:
            if key:
                server.idempotency[key] = status["id"]
            server.posted.append({"id": status["id"], "status": text, "in_reply_to_id": reply_to, "visibility": visibility, "language": body.get("language"), "idempotency_key": key})
        self._send(200, status)

    def _stream(self, path: str) -> None:
        server = self.server
        server.requests.append((self.command, self.path))
        if self.headers.get("Authorization", "") != f"Bearer {server.access_token}":
            self._send(401, {"error": "The access token is invalid"})
            return
        if path == "/api/v1/streaming/user" or path == "/api/v1/streaming/user/notification":
            key = "user"
        elif path == "/api/v1/streaming/hashtag":
            tag = (self._query().get("tag") or [""])[0].lower()
            if not tag:
                self._send(400, {"error": "Missing tag name parameter"})
                return
            key = f"hashtag:{tag}"
        else:
            self._send(404, {"error": "Unknown stream type"})
            return
        events = server._register(key)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        only_notifications = path.endswith("/notification")
        try:
            self.wfile.write(b":)\n")
            self.wfile.flush()
            while not server.stopping:
                try:
                    item = events.get(timeout=0.5)
                except queue.Empty:
                    self.wfile.write(b":thump\n")
                    self.wfile.flush()
                    continue
                if item is None:
                    break
                event, data = item
                if only_notifications and event != "notification":
                    continue
                self.wfile.write(f"event: {event}\ndata: {data}\n\n".encode())
                self.wfile.flush()
        except OSError:
            pass
        finally:
            with server.lock:
                server.listeners = [(k, q) for k, q in server.listeners if q is not events]


def main() -> None:  # pragma: no cover (a manual/demo entry point)
    """`python -m madoguchi.connectors.mastodon.fake [port]`: a fake server for the demo that a
    customer "uses": it prints the account settings, then posts a mention, a DM and a #acme post
    every minute until stopped."""
    import sys

    server = FakeMastodon(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    server.start()
    yui = server.add_account("yui", "佐藤 結衣", followers=1234, domain="mstdn.jp")["id"]
    ken = server.add_account("ken", "Ken", followers=5, domain="fosstodon.org")["id"]
    config, secrets = server.account_settings()
    print(json.dumps({"config": config, "secrets": secrets}), flush=True)
    try:
        for n in itertools.count(1):
            server.post(yui, f"@acme 注文番号 {n} がまだ届きません。確認してもらえますか？")
            server.post(ken, f"@acme order {n}: can I change the address?", visibility="direct", language="en")
            server.post(ken, f"Loving my new #acme kettle ({n})", language="en")
            time.sleep(60)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
