"""Local fakes of a Bluesky PDS (with its AppView) and of Jetstream, on 127.0.0.1 in threads.

FakeBluesky reproduces the XRPC endpoints the connector uses, as documented (see client.py):
createSession (app password, 30 logins per 5 minutes) and refreshSession (rotating tokens),
the chat service behind the `atproto-proxy` header (getLog, getConvoForMembers, getMessages,
sendMessage),
JWT access tokens with an `exp` that can be made to expire (`ExpiredToken`), listNotifications
newest first with an opaque cursor, getPosts, getProfiles, resolveHandle, createRecord with an
optional TID rkey (a second create at the same key fails with a 500, as the reference PDS did)
and getRecord; `RateLimit-*` headers on every answer and 429 `RateLimitExceeded` when a window is
used up; error bodies `{"error", "message"}`; injectable failures.

FakeJetstream serves `/subscribe?wantedCollections=…&cursor=…` over a real WebSocket
(`websockets`): it replays stored events from the cursor (or tails live ones without a cursor),
sends events added while connected, can load events from a JSON Lines file, and can drop the
connection after some events.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed

from madoguchi.connectors.bluesky.client import B32_SORTABLE, POST, split_uri, tid
from madoguchi.connectors.bluesky.outbound import grapheme_length
from madoguchi.connectors.fakes import JsonHandler, LoopbackServer

LOGINS_PER_WINDOW = 30
LOGIN_WINDOW = 300


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def fake_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT-shaped token: the client only reads `exp`."""
    return f"{_b64({'typ': 'at+jwt', 'alg': 'ES256K'})}.{_b64(claims)}.c2lnbmF0dXJl"


def fake_cid(data: Any) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).digest()
    return "bafyrei" + base64.b32encode(digest).decode().lower().rstrip("=")[:52]


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_tid(value: str) -> bool:
    return len(value) == 13 and all(c in B32_SORTABLE for c in value) and value[0] in B32_SORTABLE[:16]


@dataclass
class Window:
    """One rate-limit window (points per period)."""

    limit: int
    remaining: int
    period: int = 3600
    reset: int = field(default_factory=lambda: int(time.time()) + 3600)

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": f"{self.limit};w={self.period}",
        }


class FakeBluesky(LoopbackServer):
    """Bluesky as one brand account sees it: its session, the people around it, their posts."""

    def __init__(self, brand_did: str = "did:plc:acmesupport7x2kq4nwzvb5", brand_handle: str = "acme-support.bsky.social"):
        super().__init__(_Handler)
        self.brand_did, self.brand_handle = brand_did, brand_handle
        self.password = "abcd-efgh-ijkl-mnop"  # an app password
        self.access_ttl = 7200
        self.users: dict[str, dict[str, Any]] = {}
        self.posts: dict[str, dict[str, Any]] = {}  # uri -> {uri, cid, author, record, indexedAt}
        self.notifications: list[dict[str, Any]] = []  # oldest first
        self.created: list[dict[str, Any]] = []  # what createRecord received
        self.requests: list[tuple[str, str]] = []
        self.logins: list[float] = []
        self.refreshes = 0
        self.access_tokens: dict[str, float] = {}  # token -> exp
        self.refresh_tokens: set[str] = set()
        self.failures: deque[tuple[str, int, str, str]] = deque()
        self.windows = {"write": Window(5000, 5000), "read": Window(3000, 3000, 300), "chat": Window(3000, 3000, 300)}
        self.convos: dict[str, dict[str, Any]] = {}  # id -> {id, rev, members, messages}
        self.chat_logs: list[dict[str, Any]] = []  # the brand's chat log, oldest first
        self.chat_proxies: list[str] = []  # the atproto-proxy header of every chat call
        self.dm_allowed = True  # False: an app password made without access to direct messages
        self.lock = threading.Lock()
        self._clock = itertools.count(int(time.time() * 1_000_000))
        self._seq = itertools.count(1)
        self.add_user(brand_did, brand_handle, "Acme サポート", followers=52000)

    def account_settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(config, secrets) of a ChannelAccount that talks to this fake."""
        return {"service": self.url, "did": self.brand_did}, {"identifier": self.brand_handle, "password": self.password}

    # --- the platform's state ----------------------------------------------------------------

    def add_user(self, did: str, handle: str, name: str, *, followers: int = 10) -> dict[str, Any]:
        user = {
            "did": did,
            "handle": handle,
            "displayName": name,
            "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did}/bafkreiavatar@jpeg",
            "followersCount": followers,
            "followsCount": 12,
            "postsCount": 34,
            "indexedAt": "2024-02-01T00:00:00.000Z",
            "createdAt": "2023-11-01T00:00:00.000Z",
            "labels": [],
        }
        self.users[did] = user
        return user

    def basic(self, did: str) -> dict[str, Any]:
        user = self.users[did]
        return {k: user[k] for k in ("did", "handle", "displayName", "avatar", "labels", "createdAt")}

    def _next_rkey(self) -> str:
        return tid(next(self._clock), 7)

    def post(
        self,
        did: str,
        text: str,
        *,
        reply_to: str = "",
        mention: str = "",
        quote: str = "",
        langs: tuple[str, ...] = ("ja",),
        rkey: str = "",
    ) -> dict[str, Any]:
        """Someone posts (a reply to `reply_to`, mentioning `mention`'s DID by facet, quoting
        `quote`); notifications reach the brand as the AppView makes them. Returns the Jetstream
        event of the post."""
        record: dict[str, Any] = {"$type": POST, "text": text, "createdAt": now_iso(), "langs": list(langs)}
        parent = self.posts.get(reply_to)
        if reply_to:
            if parent is None:
                raise KeyError(reply_to)
            root = (parent["record"].get("reply") or {}).get("root") or {"uri": parent["uri"], "cid": parent["cid"]}
            record["reply"] = {"root": root, "parent": {"uri": parent["uri"], "cid": parent["cid"]}}
        if mention:
            handle = self.users[mention]["handle"]
            start = text.find("@" + handle)
            if start < 0:
                raise ValueError("the text must contain the mentioned @handle")
            byte_start = len(text[:start].encode())
            record["facets"] = [{"$type": "app.bsky.richtext.facet", "index": {"byteStart": byte_start, "byteEnd": byte_start + len(handle.encode()) + 1}, "features": [{"$type": "app.bsky.richtext.facet#mention", "did": mention}]}]
        if quote:
            quoted = self.posts[quote]
            record["embed"] = {"$type": "app.bsky.embed.record", "record": {"uri": quoted["uri"], "cid": quoted["cid"]}}
        return self._store(did, record, rkey=rkey)

    def _store(self, did: str, record: dict[str, Any], *, rkey: str = "") -> dict[str, Any]:
        rkey = rkey or self._next_rkey()
        uri = f"at://{did}/{POST}/{rkey}"
        cid = fake_cid(record)
        with self.lock:
            view = {"uri": uri, "cid": cid, "author": did, "record": record, "indexedAt": now_iso()}
            self.posts[uri] = view
            reply = record.get("reply") or {}
            parent_did = split_uri(str((reply.get("parent") or {}).get("uri", "")))[0]
            quoted_did = split_uri(str(((record.get("embed") or {}).get("record") or {}).get("uri", "")))[0]
            mentioned = {f["did"] for facet in record.get("facets", []) for f in facet["features"] if f.get("did")}
            if did != self.brand_did:
                reason = "reply" if parent_did == self.brand_did else "quote" if quoted_did == self.brand_did else "mention" if self.brand_did in mentioned else ""
                if reason:
                    self._notify(did, reason, uri, cid, record, subject=str((reply.get("parent") or {}).get("uri", "")) if reason == "reply" else "")
        return self.jetstream_event(did, "create", rkey, record=record, cid=cid)

    def _notify(self, did: str, reason: str, uri: str, cid: str, record: dict[str, Any], *, subject: str = "") -> dict[str, Any]:
        note: dict[str, Any] = {
            "uri": uri,
            "cid": cid,
            "author": self.basic(did),
            "reason": reason,
            "record": record,
            "isRead": False,
            "indexedAt": now_iso(),
            "labels": [],
        }
        if subject:
            note["reasonSubject"] = subject
        self.notifications.append(note)
        return note

    def _react(self, did: str, collection: str, reason: str, subject: dict[str, Any] | str) -> dict[str, Any]:
        rkey = self._next_rkey()
        record = {"$type": collection, "subject": subject, "createdAt": now_iso()}
        uri = f"at://{did}/{collection}/{rkey}"
        with self.lock:
            target = subject["uri"] if isinstance(subject, dict) else ""
            if isinstance(subject, str) or split_uri(target)[0] == self.brand_did:
                self._notify(did, reason, uri, fake_cid(record), record, subject=target)
        return self.jetstream_event(did, "create", rkey, record=record, cid=fake_cid(record), collection=collection)

    def like(self, did: str, uri: str) -> dict[str, Any]:
        return self._react(did, "app.bsky.feed.like", "like", {"uri": uri, "cid": self.posts[uri]["cid"]})

    def repost(self, did: str, uri: str) -> dict[str, Any]:
        return self._react(did, "app.bsky.feed.repost", "repost", {"uri": uri, "cid": self.posts[uri]["cid"]})

    def follow(self, did: str) -> dict[str, Any]:
        return self._react(did, "app.bsky.graph.follow", "follow", self.brand_did)

    def delete(self, uri: str) -> dict[str, Any]:
        did, collection, rkey = split_uri(uri)
        with self.lock:
            self.posts.pop(uri, None)
        return self.jetstream_event(did, "delete", rkey, collection=collection)

    def jetstream_event(self, did: str, operation: str, rkey: str, *, record: dict[str, Any] | None = None, cid: str = "", collection: str = POST) -> dict[str, Any]:
        commit: dict[str, Any] = {"rev": self._next_rkey(), "operation": operation, "collection": collection, "rkey": rkey}
        if record is not None:
            commit["record"] = record
            commit["cid"] = cid
        return {"did": did, "time_us": next(self._clock), "kind": "commit", "commit": commit}

    # --- direct messages ---------------------------------------------------------------------

    def convo_with(self, did: str) -> dict[str, Any]:
        with self.lock:
            convo = next((c for c in self.convos.values() if c["members"] == sorted([did, self.brand_did])), None)
            if convo is None:
                convo_id = self._next_rkey()
                convo = {"id": convo_id, "rev": convo_id, "members": sorted([did, self.brand_did]), "messages": []}
                self.convos[convo_id] = convo
                self.chat_logs.append({"$type": "chat.bsky.convo.defs#logBeginConvo", "rev": convo_id, "convoId": convo_id})
        return convo

    def dm(self, sender: str, text: str, *, to: str = "") -> dict[str, Any]:
        """A direct message between someone and the brand (sender may be the brand, then `to`)."""
        convo = self.convo_with(to or sender)
        rev = self._next_rkey()
        message = {"$type": "chat.bsky.convo.defs#messageView", "id": f"msg{rev}", "rev": rev, "text": text, "sender": {"did": sender}, "sentAt": now_iso()}
        with self.lock:
            convo["messages"].append(message)
            convo["rev"] = rev
            self.chat_logs.append({"$type": "chat.bsky.convo.defs#logCreateMessage", "rev": rev, "convoId": convo["id"], "message": message})
        return message

    def react_dm(self, sender: str, message_id: str, value: str) -> None:
        convo = next(c for c in self.convos.values() if any(m["id"] == message_id for m in c["messages"]))
        message = next(m for m in convo["messages"] if m["id"] == message_id)
        rev = self._next_rkey()
        with self.lock:
            self.chat_logs.append({"$type": "chat.bsky.convo.defs#logAddReaction", "rev": rev, "convoId": convo["id"], "message": message, "reaction": {"value": value, "sender": {"did": sender}, "createdAt": now_iso()}})

    def expire_access_tokens(self) -> None:
        """Every issued access token is now past its `exp` (the server answers ExpiredToken)."""
        with self.lock:
            for token in self.access_tokens:
                self.access_tokens[token] = time.time() - 1

    def revoke_refresh_tokens(self) -> None:
        with self.lock:
            self.refresh_tokens.clear()

    def fail(self, nsid: str, status: int, error: str, message: str = "", *, times: int = 1) -> None:
        for _ in range(times):
            self.failures.append((nsid, status, error, message))

    def issue_session(self, *, access_exp: float | None = None) -> dict[str, Any]:
        now = time.time()
        exp = access_exp if access_exp is not None else now + self.access_ttl
        n = next(self._seq)
        access = fake_jwt({"scope": "com.atproto.appPass", "sub": self.brand_did, "iat": int(now), "exp": int(exp), "jti": f"a{n}"})
        refresh = fake_jwt({"scope": "com.atproto.refresh", "sub": self.brand_did, "iat": int(now), "exp": int(now + 90 * 86400), "jti": f"r{n}"})
        self.access_tokens[access] = exp
        self.refresh_tokens.add(refresh)
        return {
            "did": self.brand_did,
            "handle": self.brand_handle,
            "email": "support@acme.example",
            "emailConfirmed": True,
            "accessJwt": access,
            "refreshJwt": refresh,
            "active": True,
            "didDoc": {"@context": ["https://www.w3.org/ns/did/v1"], "id": self.brand_did, "alsoKnownAs": [f"at://{self.brand_handle}"]},
        }


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except ValueError:
        return -1


class _Handler(JsonHandler):
    server: FakeBluesky
    def _send(self, status: int, body: dict[str, Any], window: Window | None = None) -> None:
        self.send_json(status, body, window.headers() if window else None)

    def _error(self, status: int, error: str, message: str, window: Window | None = None) -> None:
        self._send(status, {"error": error, "message": message}, window)

    def _body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _prelude(self, nsid: str, kind: str, points: int = 1) -> Window | None:
        """Auth, injected failures and the rate limit; None if a response was already sent."""
        server = self.server
        server.requests.append((self.command, self.path))
        window = server.windows[kind]
        with server.lock:
            if window.reset <= time.time():
                window.remaining, window.reset = window.limit, int(time.time()) + window.period
            failure = next((f for f in server.failures if f[0] == nsid), None)
            if failure is not None:
                server.failures.remove(failure)
        if failure is not None:
            self._error(failure[1], failure[2], failure[3], window)
            return None
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if not token:
            self._error(401, "AuthenticationRequired", "Authentication Required", window)
            return None
        exp = server.access_tokens.get(token)
        if exp is None:
            self._error(400, "InvalidToken", "Token could not be verified", window)
            return None
        if exp <= time.time():
            self._error(400, "ExpiredToken", "Token has expired", window)
            return None
        with server.lock:
            if window.remaining < points:
                limited = True
            else:
                limited = False
                window.remaining -= points
        if limited:
            self._error(429, "RateLimitExceeded", "Rate Limit Exceeded", window)
            return None
        return window

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        nsid = url.path.removeprefix("/xrpc/")
        query = parse_qs(url.query)
        handlers = {
            "app.bsky.notification.listNotifications": self._notifications,
            "app.bsky.feed.getPosts": self._get_posts,
            "app.bsky.actor.getProfiles": self._get_profiles,
            "com.atproto.identity.resolveHandle": self._resolve_handle,
            "com.atproto.repo.getRecord": self._get_record,
            "chat.bsky.convo.getLog": self._chat_log,
            "chat.bsky.convo.getConvoForMembers": self._convo_for_members,
            "chat.bsky.convo.getMessages": self._chat_messages,
        }
        handler = handlers.get(nsid)
        if handler is None or (nsid.startswith("chat.") and not self._proxied()):
            self._error(501, "MethodNotImplemented", "Method Not Implemented")
            return
        window = self._prelude(nsid, "chat" if nsid.startswith("chat.") else "read")
        if window is not None and nsid.startswith("chat.") and not self.server.dm_allowed:
            self._error(400, "InvalidToken", "Bad token scope", window)
        elif window is not None:
            handler(query, window)

    def _notifications(self, query: dict[str, list[str]], window: Window) -> None:
        try:
            limit = int(query.get("limit", ["50"])[0])
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            self._error(400, "InvalidRequest", "Error: limit must be between 1 and 100", window)
            return
        with self.server.lock:
            notes = list(reversed(self.server.notifications))  # newest first
        start = 0
        if "cursor" in query:
            start = _uncursor(query["cursor"][0])
            if start < 0:
                self._error(400, "InvalidRequest", "Malformed cursor", window)
                return
        page = notes[start : start + limit]
        body: dict[str, Any] = {"notifications": page, "priority": False, "seenAt": "2024-01-01T00:00:00.000Z"}
        if start + limit < len(notes):
            body["cursor"] = _cursor(start + limit)
        self._send(200, body, window)

    def _post_view(self, post: dict[str, Any]) -> dict[str, Any]:
        return {
            "uri": post["uri"],
            "cid": post["cid"],
            "author": self.server.basic(post["author"]),
            "record": post["record"],
            "replyCount": 0,
            "repostCount": 0,
            "likeCount": 0,
            "quoteCount": 0,
            "indexedAt": post["indexedAt"],
            "labels": [],
        }

    def _get_posts(self, query: dict[str, list[str]], window: Window) -> None:
        uris = query.get("uris", [])
        if len(uris) > 25:
            self._error(400, "InvalidRequest", "Error: uris must not have more than 25 elements", window)
            return
        self._send(200, {"posts": [self._post_view(self.server.posts[u]) for u in uris if u in self.server.posts]}, window)

    def _get_profiles(self, query: dict[str, list[str]], window: Window) -> None:
        actors = query.get("actors", [])
        if len(actors) > 25:
            self._error(400, "InvalidRequest", "Error: actors must not have more than 25 elements", window)
            return
        by_handle = {u["handle"]: u for u in self.server.users.values()}
        found = [self.server.users.get(a) or by_handle.get(a) for a in actors]
        self._send(200, {"profiles": [p for p in found if p]}, window)

    def _resolve_handle(self, query: dict[str, list[str]], window: Window) -> None:
        handle = query.get("handle", [""])[0]
        user = next((u for u in self.server.users.values() if u["handle"] == handle), None)
        if user is None:
            self._error(400, "InvalidRequest", "Unable to resolve handle", window)
            return
        self._send(200, {"did": user["did"]}, window)

    def _get_record(self, query: dict[str, list[str]], window: Window) -> None:
        repo, collection, rkey = (query.get(k, [""])[0] for k in ("repo", "collection", "rkey"))
        post = self.server.posts.get(f"at://{repo}/{collection}/{rkey}")
        if post is None:
            self._error(400, "RecordNotFound", f"Could not locate record: at://{repo}/{collection}/{rkey}", window)
            return
        self._send(200, {"uri": post["uri"], "cid": post["cid"], "value": post["record"]}, window)

    def _proxied(self) -> bool:
        self.server.chat_proxies.append(self.headers.get("atproto-proxy", ""))
        return self.headers.get("atproto-proxy", "") == "did:web:api.bsky.chat#bsky_chat"

    def _chat_log(self, query: dict[str, list[str]], window: Window) -> None:
        cursor = query.get("cursor", [""])[0]
        with self.server.lock:
            logs = [log for log in self.server.chat_logs if log["rev"] > cursor][:100]
        self._send(200, {"logs": logs, "cursor": logs[-1]["rev"] if logs else cursor}, window)

    def _convo_view(self, convo: dict[str, Any]) -> dict[str, Any]:
        members = [{k: v for k, v in self.server.basic(d).items() if k != "createdAt"} for d in convo["members"]]
        last = convo["messages"][-1] if convo["messages"] else None
        return {"id": convo["id"], "rev": convo["rev"], "members": members, "lastMessage": last, "muted": False, "status": "accepted", "unreadCount": 0}

    def _convo_for_members(self, query: dict[str, list[str]], window: Window) -> None:
        others = [m for m in query.get("members", []) if m != self.server.brand_did]
        if len(others) != 1 or others[0] not in self.server.users:
            self._error(400, "InvalidRequest", "recipient not found", window)
            return
        self._send(200, {"convo": self._convo_view(self.server.convo_with(others[0]))}, window)

    def _chat_messages(self, query: dict[str, list[str]], window: Window) -> None:
        convo = self.server.convos.get(query.get("convoId", [""])[0])
        if convo is None:
            self._error(400, "InvalidRequest", "Convo not found", window)
            return
        limit = int(query.get("limit", ["50"])[0])
        self._send(200, {"messages": list(reversed(convo["messages"]))[:limit]}, window)  # newest first

    def do_POST(self) -> None:  # noqa: N802
        nsid = urlsplit(self.path).path.removeprefix("/xrpc/")
        if nsid == "com.atproto.server.createSession":
            self._create_session()
        elif nsid == "com.atproto.server.refreshSession":
            self._refresh_session()
        elif nsid == "chat.bsky.convo.sendMessage" and self._proxied():
            window = self._prelude(nsid, "chat")
            if window is not None:
                self._send_message(window)
        elif nsid == "com.atproto.repo.createRecord":
            window = self._prelude(nsid, "write", points=3)
            if window is not None:
                self._create_record(window)
        else:
            self._error(501, "MethodNotImplemented", "Method Not Implemented")

    def _create_session(self) -> None:
        server = self.server
        server.requests.append((self.command, self.path))
        body = self._body()
        now = time.time()
        with server.lock:
            recent = [t for t in server.logins if t > now - LOGIN_WINDOW]
            server.logins.append(now)
        if len(recent) >= LOGINS_PER_WINDOW:
            window = Window(LOGINS_PER_WINDOW, 0, LOGIN_WINDOW, int(recent[0] + LOGIN_WINDOW))
            self._error(429, "RateLimitExceeded", "Rate Limit Exceeded", window)
            return
        if body.get("identifier") not in (server.brand_handle, server.brand_did) or body.get("password") != server.password:
            self._error(401, "AuthenticationRequired", "Invalid identifier or password")
            return
        with server.lock:
            session = server.issue_session()
        self._send(200, session)

    def _refresh_session(self) -> None:
        server = self.server
        server.requests.append((self.command, self.path))
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with server.lock:
            if token not in server.refresh_tokens:
                valid = False
            else:
                valid = True
                server.refresh_tokens.discard(token)  # refresh tokens rotate
                server.refreshes += 1
                session = server.issue_session()
        if not valid:
            self._error(400, "ExpiredToken", "Token has been revoked")
            return
        self._send(200, {k: session[k] for k in ("did", "handle", "accessJwt", "refreshJwt", "active", "didDoc")})

    def _send_message(self, window: Window) -> None:
        server = self.server
        body = self._body()
        convo = server.convos.get(str(body.get("convoId") or ""))
        text = (body.get("message") or {}).get("text")
        if convo is None:
            self._error(400, "InvalidRequest", "Convo not found", window)
            return
        if not isinstance(text, str) or not text or grapheme_length(text) > 1000:
            self._error(400, "InvalidRequest", "Input/message/text must not be longer than 1000 graphemes", window)
            return
        other = next(m for m in convo["members"] if m != server.brand_did)
        self._send(200, server.dm(server.brand_did, text, to=other), window)

    def _create_record(self, window: Window) -> None:
        server = self.server
        body = self._body()
        record = body.get("record")
        if body.get("repo") not in (server.brand_did, server.brand_handle):
            self._error(401, "AuthRequiredError", "Authentication Required", window)
            return
        if body.get("collection") != POST or not isinstance(record, dict) or not isinstance(record.get("text"), str):
            self._error(400, "InvalidRequest", "Invalid app.bsky.feed.post record: Record must have the property \"text\"", window)
            return
        if grapheme_length(record["text"]) > 300 or len(record["text"].encode()) > 3000:
            self._error(400, "InvalidRequest", "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes", window)
            return
        rkey = str(body.get("rkey") or "")
        if rkey and not is_tid(rkey):
            self._error(400, "InvalidRequest", "Invalid record key", window)
            return
        uri = f"at://{server.brand_did}/{POST}/{rkey}"
        if rkey and uri in server.posts:
            self._error(500, "InternalServerError", "Internal Server Error", window)
            return
        server.created.append(body)
        event = server._store(server.brand_did, record, rkey=rkey)
        uri = f"at://{server.brand_did}/{POST}/{event['commit']['rkey']}"
        self._send(200, {"uri": uri, "cid": event["commit"]["cid"], "commit": {"cid": fake_cid(uri), "rev": event["commit"]["rev"]}, "validationStatus": "valid"}, window)


class FakeJetstream:
    """A Jetstream instance: `/subscribe` over a real WebSocket on 127.0.0.1."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self.events: list[dict[str, Any]] = []
        self.connections: list[str] = []  # the request path of every connection
        self.drop_after: int | None = None  # close the next connection after this many events
        self.cond = threading.Condition()
        self.stopped = False
        self._server = serve(self._handle, "127.0.0.1", 0, compression=None)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/subscribe"

    def start(self) -> FakeJetstream:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        self._server.shutdown()

    def add(self, *events: dict[str, Any]) -> None:
        with self.cond:
            self.events.extend(events)
            self.events.sort(key=lambda e: e["time_us"])
            self.cond.notify_all()

    def replay(self, path: Path | str) -> int:
        """Add the events of a JSON Lines file (one Jetstream event a line)."""
        events = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        self.add(*events)
        return len(events)

    def _handle(self, ws: Any) -> None:
        path = ws.request.path
        self.connections.append(path)
        query = parse_qs(urlsplit(path).query)
        wanted = set(query.get("wantedCollections", []))
        cursor = int(query.get("cursor", ["0"])[0] or 0)
        with self.cond:
            # With a cursor: playback from it; without: live tail from now.
            index = next((i for i, e in enumerate(self.events) if e["time_us"] >= cursor), len(self.events)) if cursor else len(self.events)
            drop_after, self.drop_after = self.drop_after, None
        sent = 0
        while True:
            with self.cond:
                while not self.stopped and index >= len(self.events):
                    self.cond.wait(0.1)
                if self.stopped:
                    return
                pending, index = self.events[index:], len(self.events)
            for event in pending:
                collection = (event.get("commit") or {}).get("collection")
                if wanted and event.get("kind") == "commit" and collection not in wanted:
                    continue
                try:
                    ws.send(json.dumps(event, ensure_ascii=False))
                except ConnectionClosed:
                    return  # the client went away
                sent += 1
                if drop_after is not None and sent >= drop_after:
                    ws.close(1011, "fake drop")
                    return
