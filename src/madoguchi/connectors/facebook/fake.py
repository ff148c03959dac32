"""A local fake of Meta's Graph API and webhook sender, for tests and the demo (127.0.0.1, a thread).

It reproduces what the Facebook and Instagram connectors rely on, as documented (see graph.py,
facebook/client.py, instagram/client.py): signed webhook deliveries (`X-Hub-Signature-256`, hex
HMAC-SHA256 over the escaped-unicode bytes Meta sends) for the page feed, Messenger and Instagram;
comment replies (`POST /{comment-id}/comments`, Instagram `POST /{ig-comment-id}/replies`),
mention replies, the Send API with the 24-hour window, private replies (`recipient: {"comment_id"}`
or `{"post_id"}`: one per comment, 7 days, answered with the person's Messenger id), profiles,
comment lists, attachment URLs;
and Graph error bodies `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}` for
an expired token (190/463), a rate limit (32 or 80001 with `X-Business-Use-Case-Usage`), a deleted
comment (100/33), a closed window (10/2018278), and a refused private reply (10900 already
replied, 10903 too old). Deliveries can be sent twice or out of order.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from madoguchi.connectors.facebook.graph import sign
from madoguchi.connectors.fakes import JsonHandler, LoopbackServer

WINDOW_SECONDS = 24 * 3600
VERSION = re.compile(r"^/v\d+\.\d+/")


def error_body(message: str, code: int, *, type_: str = "OAuthException", subcode: int | None = None, transient: bool = False) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": type_, "code": code, "fbtrace_id": "A" + secrets.token_urlsafe(15)}
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient:
        error["is_transient"] = True
    return {"error": error}


def expired_token_body() -> dict[str, Any]:
    day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%A, %d-%b-%y %H:%M:%S UTC")
    now = dt.datetime.now(dt.UTC).strftime("%A, %d-%b-%y %H:%M:%S UTC")
    return error_body(f"Error validating access token: Session has expired on {day}. The current time is {now}.", 190, subcode=463)


@dataclass
class Failure:
    path: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    after_accepting: bool = False  # do the work, then answer with the error (a lost response)


class FakeGraph(LoopbackServer):
    """Meta as one Facebook Page (and its linked Instagram professional account) sees it."""

    def __init__(self, page_id: str = "104598765432101", page_name: str = "Acme サポート", ig_user_id: str = "17841400000000001", ig_username: str = "acme_support"):
        super().__init__(_Handler)
        self.app_secret = "fake-app-secret"
        self.verify_token = "fake-verify-token"
        self.access_token = "fake-page-token"
        self.token_valid = True
        self.app_installed = True  # the page's subscribed_apps lists our app
        self.page_id, self.page_name = page_id, page_name
        self.ig_user_id, self.ig_username = ig_user_id, ig_username
        self.users: dict[str, dict[str, Any]] = {}
        self.businesses: dict[str, dict[str, Any]] = {}  # Instagram username → professional account
        self.posts: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, dict[str, Any]] = {}  # Facebook and Instagram comments by id
        self.deleted: set[str] = set()
        self.last_user_message: dict[str, float] = {}  # PSID/IGSID → when they last wrote
        self.media: dict[str, tuple[bytes, str]] = {}
        self.replies: list[dict[str, Any]] = []  # comment replies the page made
        self.messages: list[dict[str, Any]] = []  # messages the page sent
        self.commented_at: dict[str, float] = {}  # comment or visitor post id → when it was written
        self.private_replied: dict[str, str] = {}  # comment or post id → the private reply's mid
        self.psids: dict[str, str] = {}  # a commenter's id → their page-scoped id in Messenger
        self.requests: list[tuple[str, str]] = []
        self.extra_headers: dict[str, str] = {}  # sent on every Graph response (usage headers)
        self.failures: deque[Failure] = deque()
        self.lock = threading.Lock()
        self._ids = itertools.count(int(time.time()) * 1000)

    # --- lifecycle (start, stop, url: LoopbackServer) -------------------------------------------

    def account_settings(self, kind: str = "facebook") -> tuple[dict[str, Any], dict[str, str]]:
        """(config, secrets) of a ChannelAccount that talks to this fake."""
        config: dict[str, Any] = {"api_base": self.url, "page_id": self.page_id}
        if kind == "instagram":
            config["ig_user_id"] = self.ig_user_id
        return config, {"app_secret": self.app_secret, "verify_token": self.verify_token, "page_access_token": self.access_token}

    # --- the platform's state ----------------------------------------------------------------

    def next_id(self) -> str:
        return str(next(self._ids))

    def add_user(self, user_id: str, name: str, *, username: str = "", followers: int | None = None, picture: bool = True, business: bool = False) -> dict[str, Any]:
        """A person; `business`: an Instagram professional account that business discovery finds."""
        first, _, last = name.partition(" ")
        user: dict[str, Any] = {"id": user_id, "name": name, "first_name": first, "last_name": last}
        if business:
            self.businesses[username] = user
        if username:
            user["username"] = username
        if followers is not None:
            user["follower_count"] = followers
        if picture:
            user["profile_pic"] = f"{self.url}/media/avatar-{user_id}.jpg"
            self.media[f"avatar-{user_id}.jpg"] = (b"\xff\xd8\xff\xe0fake-jpeg", "image/jpeg")
        self.users[user_id] = user
        return user

    def add_media(self, name: str, content: bytes, content_type: str = "image/jpeg") -> str:
        """A file on the fake CDN; returns its URL (as attachments carry it)."""
        self.media[name] = (content, content_type)
        return f"{self.url}/media/{name}"

    def page_post(self, message: str) -> dict[str, Any]:
        post: dict[str, Any] = {"id": f"{self.page_id}_{self.next_id()}", "message": message, "from": {"id": self.page_id, "name": self.page_name}, "created_time": int(time.time())}
        self.posts[post["id"]] = post
        return post

    def psid_for(self, user_id: str) -> str:
        """The id a commenter has in the page's Messenger (Facebook: not their comment's `from.id`;
        Instagram: the same Instagram-scoped id)."""
        with self.lock:
            if user_id not in self.psids:
                self.psids[user_id] = self.next_id()
                self.users[self.psids[user_id]] = {**self.users.get(user_id, {}), "id": self.psids[user_id]}
            return self.psids[user_id]

    def age(self, object_id: str, days: float) -> None:
        """Make a comment or visitor post `days` older (for the 7-day limit of private replies)."""
        with self.lock:
            self.commented_at[object_id] = self.commented_at.get(object_id, time.time()) - days * 86400

    def expire_token(self) -> None:
        self.token_valid = False

    def delete_comment(self, comment_id: str) -> None:
        with self.lock:
            self.deleted.add(comment_id)

    def fail(self, path: str, status: int, body: dict[str, Any], *, times: int = 1, headers: dict[str, str] | None = None, after_accepting: bool = False) -> None:
        """The next `times` requests whose path (after the version) starts with `path` get this."""
        for _ in range(times):
            self.failures.append(Failure(path.lstrip("/"), status, body, headers or {}, after_accepting))

    def rate_limit(self, path: str, *, minutes: int = 3, code: int = 80001) -> None:
        """The next request on `path` hits the page's business use case rate limit."""
        usage = {self.page_id: [{"type": "pages", "call_count": 100, "total_cputime": 40, "total_time": 60, "estimated_time_to_regain_access": minutes}]}
        self.fail(path, 400, error_body("There have been too many calls to this Page account. Wait a bit and try again.", code), headers={"X-Business-Use-Case-Usage": json.dumps(usage)})

    # --- Facebook webhook events -------------------------------------------------------------

    def _from(self, user_id: str) -> dict[str, str]:
        return {"id": user_id, "name": self.users.get(user_id, {}).get("name", "")}

    def comment(self, user_id: str, post_id: str, message: str, *, parent_id: str = "", photo: str = "") -> dict[str, Any]:
        """Someone comments on a post (or replies to a comment): the `feed` change value."""
        comment_id = f"{post_id.split('_')[-1]}_{self.next_id()}"
        value: dict[str, Any] = {"from": self._from(user_id), "post": {"status_type": "added_photos", "is_published": True, "updated_time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"), "permalink_url": f"https://www.facebook.com/{post_id}", "promotion_status": "inactive", "id": post_id}, "message": message, "post_id": post_id, "comment_id": comment_id, "created_time": int(time.time()), "item": "comment", "parent_id": parent_id or post_id, "verb": "add"}
        if photo:
            value["photo"] = photo
        with self.lock:
            self.comments[comment_id] = {"id": comment_id, "message": message, "from": self._from(user_id), "created_time": value["created_time"], "parent": parent_id or post_id}
            self.commented_at[comment_id] = time.time()
        return value

    def visitor_post(self, user_id: str, message: str) -> dict[str, Any]:
        post_id = f"{self.page_id}_{self.next_id()}"
        value = {"from": self._from(user_id), "message": message, "post_id": post_id, "created_time": int(time.time()), "item": "status", "published": 1, "verb": "add"}
        self.posts[post_id] = {"id": post_id, "message": message, "from": self._from(user_id)}
        self.commented_at[post_id] = time.time()
        return value

    def edited(self, value: dict[str, Any], message: str) -> dict[str, Any]:
        return {**value, "message": message, "verb": "edited"}

    def removed(self, value: dict[str, Any]) -> dict[str, Any]:
        gone = {k: v for k, v in value.items() if k not in {"message", "photo", "post"}}
        return {**gone, "verb": "remove"}

    def reaction(self, user_id: str, value: dict[str, Any], reaction_type: str = "love", *, verb: str = "add") -> dict[str, Any]:
        out = {"from": self._from(user_id), "post_id": value["post_id"], "created_time": int(time.time()), "item": "reaction", "parent_id": value["post_id"], "reaction_type": reaction_type, "verb": verb}
        if value.get("comment_id"):
            out["comment_id"] = value["comment_id"]
        return out

    def feed(self, *values: dict[str, Any], at: int | None = None) -> dict[str, Any]:
        """A `page` webhook entry with these feed changes."""
        return {"id": self.page_id, "time": at or int(time.time()), "changes": [{"field": "feed", "value": v} for v in values]}

    def _messaging(self, sender: str, recipient: str, **extra: Any) -> dict[str, Any]:
        return {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": int(time.time() * 1000), **extra}

    def message(self, psid: str, text: str = "", *, attachments: list[dict[str, Any]] | None = None, reply_to: str = "", instagram: bool = False) -> dict[str, Any]:
        """A person writes to the page (or the Instagram account): a `messaging` event."""
        mid = ("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOj" if instagram else "m_") + secrets.token_urlsafe(24)
        message: dict[str, Any] = {"mid": mid}
        if text:
            message["text"] = text
        if attachments:
            message["attachments"] = attachments
        if reply_to:
            message["reply_to"] = {"mid": reply_to}
        with self.lock:
            self.last_user_message[psid] = time.time()
        return self._messaging(psid, self.ig_user_id if instagram else self.page_id, message=message)

    def message_reaction(self, psid: str, mid: str, reaction: str = "love", emoji: str = "\u2764\ufe0f", *, action: str = "react", instagram: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"mid": mid, "action": action}
        if action == "react":
            body.update(reaction=reaction, emoji=emoji)
        return self._messaging(psid, self.ig_user_id if instagram else self.page_id, reaction=body)

    def message_read(self, psid: str, *, watermark: int | None = None, mid: str = "") -> dict[str, Any]:
        if mid:  # Instagram marks one message
            return self._messaging(psid, self.ig_user_id, read={"mid": mid})
        return self._messaging(psid, self.page_id, read={"watermark": watermark or int(time.time() * 1000)})

    def message_edit(self, psid: str, mid: str, text: str, num_edit: int = 1) -> dict[str, Any]:
        return self._messaging(psid, self.page_id, message_edit={"mid": mid, "text": text, "num_edit": num_edit})

    def messaging(self, *events: dict[str, Any], instagram: bool = False) -> dict[str, Any]:
        return {"id": self.ig_user_id if instagram else self.page_id, "time": int(time.time() * 1000), "messaging": list(events)}

    # --- Instagram webhook events --------------------------------------------------------------

    def ig_media(self, caption: str = "", product_type: str = "FEED", *, owner: str = "") -> dict[str, Any]:
        """A post on Instagram (the account's own, or `owner`'s username for someone else's)."""
        media = {"id": self.next_id(), "caption": caption, "media_product_type": product_type, "permalink": f"https://www.instagram.com/p/{secrets.token_urlsafe(8)}/", "username": owner or self.ig_username, "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")}
        self.posts[media["id"]] = media
        return media

    def ig_comment(self, user_id: str, media: dict[str, Any], text: str, *, parent_id: str = "") -> dict[str, Any]:
        comment_id = self.next_id()
        user = self.users.get(user_id, {})
        value: dict[str, Any] = {"from": {"id": user_id, "username": user.get("username", "")}, "media": {"id": media["id"], "media_product_type": media["media_product_type"]}, "id": comment_id, "text": text}
        if parent_id:
            value["parent_id"] = parent_id
        with self.lock:
            self.comments[comment_id] = {"id": comment_id, "text": text, "username": user.get("username", ""), "from": value["from"], "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"), "media": {"id": media["id"], "permalink": media["permalink"]}, "parent": parent_id or media["id"]}
            self.commented_at[comment_id] = time.time()
        return value

    def ig_mention(self, user_id: str, media: dict[str, Any], text: str) -> dict[str, Any]:
        """Someone @mentions the account in a comment on someone else's media."""
        comment = self.ig_comment(user_id, media, text)
        return {"comment_id": comment["id"], "media_id": media["id"]}

    def ig_caption_mention(self, owner_username: str, caption: str) -> dict[str, Any]:
        """Someone @mentions the account in the caption of their own post."""
        media = self.ig_media(caption, owner=owner_username)
        return {"media_id": media["id"]}

    def ig_changes(self, field_name: str, *values: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.ig_user_id, "time": int(time.time()), "changes": [{"field": field_name, "value": v} for v in values]}

    # --- deliveries ------------------------------------------------------------------------------

    def delivery(self, *entries: dict[str, Any], object_: str = "page") -> tuple[bytes, str]:
        """A webhook body as Meta sends it (escaped unicode and slashes) and its signature header."""
        body = json.dumps({"object": object_, "entry": list(entries)}, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()
        return body, sign(self.app_secret, body)

    def deliver(self, webhook_url: str, *entries: dict[str, Any], object_: str | None = None, times: int = 1) -> httpx.Response:
        """POST a signed delivery to a running madoguchi (`times` > 1: Meta's duplicate deliveries)."""
        body, signature = self.delivery(*entries) if object_ is None else self.delivery(*entries, object_=object_)
        response = None
        for _ in range(times):
            response = httpx.post(webhook_url, content=body, headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature}, timeout=10)
        assert response is not None
        return response


class _Handler(JsonHandler):
    server: FakeGraph

    def _send(self, status: int, body: dict[str, Any] | bytes, *, content_type: str = "application/json; charset=UTF-8", headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        usage = {"x-fb-trace-id": secrets.token_urlsafe(8), "X-App-Usage": json.dumps({"call_count": 1, "total_cputime": 1, "total_time": 1})}
        self.send_body(status, data, content_type, {**usage, **self.server.extra_headers, **(headers or {})})

    def _route(self) -> tuple[list[str], dict[str, str]] | None:
        """Auth and the path after the version; None if a response was already sent."""
        url = urlsplit(self.path)
        self.server.requests.append((self.command, url.path))
        if url.path.startswith("/media/"):
            found = self.server.media.get(url.path.removeprefix("/media/"))
            self._send(200, found[0], content_type=found[1]) if found else self._send(404, b"not found", content_type="text/plain")
            return None
        if not VERSION.match(url.path):
            self._send(400, error_body("Unknown path components", 2500))
            return None
        auth = self.headers.get("Authorization", "")
        if auth != f"Bearer {self.server.access_token}":
            self._send(400, error_body("Invalid OAuth access token - Cannot parse access token", 190))
            return None
        if not self.server.token_valid:
            self._send(400, expired_token_body())
            return None
        return VERSION.sub("", url.path).strip("/").split("/"), {k: v[0] for k, v in parse_qs(url.query).items()}

    def _failure(self, path: str) -> Failure | None:
        with self.server.lock:
            found = next((f for f in self.server.failures if path.startswith(f.path)), None)
            if found is not None:
                self.server.failures.remove(found)
        return found

    def _body(self) -> dict[str, Any]:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        if "json" in self.headers.get("Content-Type", ""):
            try:
                value = json.loads(raw or b"{}")
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        routed = self._route()
        if routed is None:
            return
        parts, query = routed
        path = "/".join(parts)
        failure = self._failure(path)
        if failure is not None:
            self._send(failure.status, failure.body, headers=failure.headers)
            return
        fields = [f for f in query.get("fields", "").split(",") if f]
        server = self.server
        if parts == ["me"]:
            self._send(200, {"id": server.page_id, "name": server.page_name})
        elif parts == [server.page_id, "subscribed_apps"]:
            apps = [{"category": "Business", "link": "https://madoguchi.example/", "name": "madoguchi", "id": "1517776481860111", "subscribed_fields": ["feed", "messages", "message_reactions", "message_reads", "message_edits"]}]
            self._send(200, {"data": apps if server.app_installed else []})
        elif len(parts) == 2 and parts[1] in {"comments", "replies"}:
            with server.lock:
                found = [c for c in server.comments.values() if c["parent"] == parts[0] and c["id"] not in server.deleted]
            found.reverse()
            self._send(200, {"data": found[: int(query.get("limit", "25"))], "paging": {"cursors": {"before": "QVFIUm", "after": "QVFIUn"}}})
        elif len(parts) == 1 and parts[0] == server.ig_user_id and "mentioned_comment" in query.get("fields", ""):
            match = re.search(r"comment_id\((\d+)\)", query["fields"])
            comment = server.comments.get(match.group(1) if match else "")
            if comment is None:
                self._send(400, error_body("Invalid parameter", 100, subcode=2207008))
            else:
                self._send(200, {"mentioned_comment": {k: comment[k] for k in ("id", "text", "timestamp", "username", "from", "media") if k in comment}, "id": server.ig_user_id})
        elif len(parts) == 1 and parts[0] == server.ig_user_id and "mentioned_media" in query.get("fields", ""):
            match = re.search(r"media_id\((\d+)\)", query["fields"])
            media = server.posts.get(match.group(1) if match else "")
            if media is None:
                self._send(400, error_body("Invalid parameter", 100, subcode=2207008))
            else:
                self._send(200, {"mentioned_media": {k: media[k] for k in ("id", "caption", "username", "timestamp", "permalink", "media_product_type") if k in media}, "id": server.ig_user_id})
        elif len(parts) == 1 and parts[0] == server.ig_user_id and "business_discovery" in query.get("fields", ""):
            match = re.search(r"business_discovery\.username\(([^)]+)\)", query["fields"])
            business = server.businesses.get(match.group(1) if match else "")
            if business is None:
                self._send(400, error_body("Invalid user id", 110, type_="IGApiException", subcode=2207013))
            else:
                profile = {"id": business["id"], "username": business.get("username", ""), "name": business["name"], "followers_count": business.get("follower_count", 0), "profile_picture_url": business.get("profile_pic", "")}
                self._send(200, {"business_discovery": profile, "id": server.ig_user_id})
        elif len(parts) == 1 and parts[0] in server.users:
            user = server.users[parts[0]]
            self._send(200, {k: v for k, v in user.items() if k == "id" or not fields or k in fields})
        else:
            self._send(400, error_body(f"Unsupported get request. Object with ID '{parts[0]}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", 100, type_="GraphMethodException", subcode=33))

    def do_POST(self) -> None:  # noqa: N802
        routed = self._route()
        if routed is None:
            return
        parts, _ = routed
        path = "/".join(parts)
        body = self._body()
        failure = self._failure(path)
        if failure is not None and not failure.after_accepting:
            self._send(failure.status, failure.body, headers=failure.headers)
            return
        status, answer = self._post(parts, body)
        if failure is not None:  # accepted, but the answer is lost on the way back
            self._send(failure.status, failure.body, headers=failure.headers)
            return
        self._send(status, answer)

    def _post(self, parts: list[str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        server = self.server
        if len(parts) == 2 and parts[1] in {"comments", "replies"}:
            target = parts[0]
            message = str(body.get("message", ""))
            exists = target in server.comments or target in server.posts
            if not exists or target in server.deleted:
                return 400, error_body(f"Unsupported post request. Object with ID '{target}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", 100, type_="GraphMethodException", subcode=33)
            if not message:
                return 400, error_body("(#100) The parameter message is required", 100)
            new_id = server.next_id() if parts[1] == "replies" else f"{target.split('_')[-1]}_{server.next_id()}"
            instagram = parts[1] == "replies"
            who = {"id": server.ig_user_id, "username": server.ig_username} if instagram else {"id": server.page_id, "name": server.page_name}
            with server.lock:
                server.comments[new_id] = {"id": new_id, "message": message, "text": message, "from": who, "parent": target}
                server.replies.append({"id": new_id, "to": target, "edge": parts[1], "message": message})
            return 200, {"id": new_id}
        if len(parts) == 2 and parts[1] == "mentions" and parts[0] == server.ig_user_id:
            comment_id, message = str(body.get("comment_id", "")), str(body.get("message", ""))
            if comment_id not in server.comments or comment_id in server.deleted:
                return 400, error_body("Invalid parameter", 100, subcode=33)
            new_id = server.next_id()
            with server.lock:
                server.comments[new_id] = {"id": new_id, "text": message, "from": {"id": server.ig_user_id}, "parent": comment_id}
                server.replies.append({"id": new_id, "to": comment_id, "edge": "mentions", "media_id": body.get("media_id"), "message": message})
            return 200, {"id": new_id}
        if len(parts) == 2 and parts[1] == "messages" and parts[0] in {server.page_id, server.ig_user_id, "me"}:
            if set(body.get("recipient") or {}) & {"comment_id", "post_id"}:
                return self._private_reply(parts[0], body)
            recipient = str((body.get("recipient") or {}).get("id", ""))
            text = str((body.get("message") or {}).get("text", ""))
            if body.get("messaging_type") not in {"RESPONSE", "UPDATE", "MESSAGE_TAG"}:
                return 400, error_body("(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}", 100)
            last = server.last_user_message.get(recipient)
            if last is None:
                return 400, error_body("(#100) No matching user found", 100, subcode=2018001)
            if time.time() - last > WINDOW_SECONDS and body.get("messaging_type") != "MESSAGE_TAG":
                return 400, error_body("(#10) This message is sent outside of allowed window. Learn more about the new policy here: https://developers.facebook.com/docs/messenger-platform/policy-overview", 10, subcode=2018278)
            if not text or len(text) > 2000:
                return 400, error_body("(#100) Length of param message[text] must be less than or equal to 2000", 100)
            mid = "m_" + secrets.token_urlsafe(24)
            with server.lock:
                server.messages.append({"to": recipient, "text": text, "mid": mid, "via": parts[0], "messaging_type": body.get("messaging_type")})
            return 200, {"recipient_id": recipient, "message_id": mid}
        return 400, error_body(f"Unsupported post request. Object with ID '{parts[0]}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", 100, type_="GraphMethodException", subcode=33)

    def _private_reply(self, via: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The Send API with `recipient: {comment_id}` (or `{post_id}`, a visitor post on Facebook):
        one message per comment, within 7 days of it, to its author's Messenger or Instagram inbox."""
        server = self.server
        recipient = body.get("recipient") or {}
        instagram = via == server.ig_user_id
        if instagram and "post_id" in recipient or len(recipient) != 1:
            return 400, error_body("(#100) Param recipient must be one of {id, comment_id, post_id, user_ref}", 100)
        target = str(recipient.get("comment_id") or recipient.get("post_id") or "")
        text = str((body.get("message") or {}).get("text", ""))
        if "messaging_type" in body and body["messaging_type"] not in {"RESPONSE", "UPDATE", "MESSAGE_TAG"}:
            return 400, error_body("(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}", 100)
        found = server.comments.get(target) if "comment_id" in recipient else server.posts.get(target)
        if found is None or target in server.deleted:
            return 400, error_body("(#100) Invalid comment_id or post_id", 100, subcode=33)
        if not text or len(text) > 2000:
            return 400, error_body("(#100) Length of param message[text] must be less than or equal to 2000", 100)
        author = str((found.get("from") or {}).get("id", ""))
        with server.lock:
            if target in server.private_replied:
                return 400, error_body("(#10900) Activity already replied to", 10900)
            if time.time() - server.commented_at.get(target, time.time()) > 7 * 86400 or author in {server.page_id, server.ig_user_id}:
                return 400, error_body("This user cant reply to this activity", 10903, subcode=1893049)
            mid = ("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOj" if instagram else "m_") + secrets.token_urlsafe(24)
            server.private_replied[target] = mid
        psid = author if instagram else server.psid_for(author)
        with server.lock:
            server.messages.append({"to": psid, "text": text, "mid": mid, "via": via, "private_reply_to": target, "messaging_type": body.get("messaging_type"), "request": body})
        return 200, {"recipient_id": psid, "message_id": mid}
