"""A small typed httpx client for the XRPC endpoints of a Bluesky PDS that this connector uses.

Documentation (November 2026):
- Sessions: https://docs.bsky.app/docs/api/com-atproto-server-create-session and
  https://docs.bsky.app/docs/api/com-atproto-server-refresh-session — `createSession
  {identifier, password}` (an app password) → `{did, handle, accessJwt, refreshJwt, …}`;
  `refreshSession` is called with the *refresh* token as bearer and returns a new pair. Errors
  `ExpiredToken` / `InvalidToken` (400), `AuthenticationRequired` (401) for a wrong password,
  `AccountTakedown`. createSession is limited to 30 per 5 minutes and 300 a day per account.
- Rate limits: https://docs.bsky.app/docs/advanced-guides/rate-limits — headers
  `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (Unix seconds), `RateLimit-Policy`;
  429 `{"error": "RateLimitExceeded"}` when used up. Writes cost points (a create 3) out of
  5,000 an hour and 35,000 a day.
- XRPC errors: https://atproto.com/specs/xrpc#error-responses — `{"error": Name, "message": …}`.
- Notifications: https://docs.bsky.app/docs/api/app-bsky-notification-list-notifications —
  newest first, `cursor`, `limit` ≤ 100; each `{uri, cid, author, reason, reasonSubject?,
  record, isRead, indexedAt}`; reasons like, repost, follow, mention, reply, quote, …
- Posts and profiles: https://docs.bsky.app/docs/api/app-bsky-feed-get-posts (≤ 25 uris) and
  https://docs.bsky.app/docs/api/app-bsky-actor-get-profiles (≤ 25 actors, `followersCount`).
- Writing: https://docs.bsky.app/docs/api/com-atproto-repo-create-record (`rkey` optional: a
  post's key is a TID, https://atproto.com/specs/tid) and `com.atproto.repo.getRecord`.
- Replies: https://docs.bsky.app/docs/advanced-guides/posts#replies — `reply {root, parent}`,
  each a strong ref `{uri, cid}`.
- Direct messages: https://docs.bsky.app/docs/api/chat-bsky-convo-get-log,
  …/chat-bsky-convo-get-convo-for-members, …/chat-bsky-convo-send-message and
  …/chat-bsky-convo-get-messages, called on the PDS with the header
  `atproto-proxy: did:web:api.bsky.chat#bsky_chat` (the app password must allow DMs). `getLog`
  returns the account's chat events after a `cursor` (a rev): `#logCreateMessage {rev, convoId,
  message: {id, rev, text, sender: {did}, sentAt}}`, `#logAddReaction`, `#logBeginConvo`, ….

httpx and pydantic rather than the `atproto` SDK: the SDK hides the rate-limit headers we wait
on, refreshes sessions in its own way (we must keep the tokens in the account row, shared by
several workers, and respect createSession's limit), and brings cryptography, libipld and
websockets for the firehose we read through Jetstream instead; we call seven endpoints.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import time
from typing import Any

import httpx
from django.db import transaction
from pydantic import BaseModel, ConfigDict, Field

from madoguchi.connectors import health
from madoguchi.connectors.http import ApiClient
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.ratelimit import RateLimit

logger = logging.getLogger(__name__)

SERVICE = "https://bsky.social"
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
REFRESH_MARGIN = 300.0  # refresh an access token this many seconds before it expires
LOGIN_SPACING = 60.0  # at most one createSession a minute per account (limit: 30 per 5 minutes)
POST = "app.bsky.feed.post"
CHAT_PROXY = "did:web:api.bsky.chat#bsky_chat"  # chat.bsky.* calls go through the PDS to this service


class XRPCError(Exception):
    """The server answered with an XRPC error (or could not be reached: status 0)."""

    def __init__(self, status: int, error: str, message: str = "", rate: RateLimit | None = None):
        text = f"{error}: {message}" if message else error
        super().__init__(f"Bluesky {status} {text}" if status else f"Bluesky unreachable: {text}")
        self.status = status
        self.error = error
        self.message = message
        self.rate = rate or RateLimit.unknown()


class AuthRefused(XRPCError):
    """The app password (or a revoked session) was refused: a person must reconnect the account."""


# --- response models ---------------------------------------------------------------------------


class Profile(BaseModel):
    """app.bsky.actor.defs#profileView(Basic|Detailed): the fields we keep."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    did: str
    handle: str = ""
    display_name: str = Field(default="", alias="displayName")
    avatar: str = ""
    followers_count: int | None = Field(default=None, alias="followersCount")
    posts_count: int | None = Field(default=None, alias="postsCount")


class Notification(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    uri: str
    cid: str = ""
    author: Profile
    reason: str
    reason_subject: str = Field(default="", alias="reasonSubject")
    record: dict[str, Any] = Field(default_factory=dict)
    is_read: bool = Field(default=False, alias="isRead")
    indexed_at: str = Field(default="", alias="indexedAt")


class NotificationPage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    notifications: list[Notification] = Field(default_factory=list)
    cursor: str = ""


class PostView(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    uri: str
    cid: str
    author: Profile
    record: dict[str, Any] = Field(default_factory=dict)
    indexed_at: str = Field(default="", alias="indexedAt")
    like_count: int = Field(default=0, alias="likeCount")
    repost_count: int = Field(default=0, alias="repostCount")
    reply_count: int = Field(default=0, alias="replyCount")


class Session(BaseModel):
    model_config = ConfigDict(extra="ignore")

    did: str
    handle: str = ""
    accessJwt: str  # noqa: N815 (the lexicon's names, stored as they come)
    refreshJwt: str  # noqa: N815


# --- helpers -----------------------------------------------------------------------------------


def jwt_expiry(token: str) -> float | None:
    """The `exp` of a JWT (Unix seconds), read without verifying: only to refresh in time."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def parse_datetime(value: str) -> dt.datetime | None:
    """An atproto datetime (RFC 3339, 'Z' or an offset) as an aware datetime; None if unreadable."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def split_uri(uri: str) -> tuple[str, str, str]:
    """at://did/collection/rkey → (did, collection, rkey); empty parts when it is not one."""
    if not uri.startswith("at://"):
        return "", "", ""
    parts = uri[5:].split("/") + ["", ""]
    return parts[0], parts[1], parts[2]


B32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"


def tid(micros: int, clock_id: int) -> str:
    """A TID (https://atproto.com/specs/tid): 53 bits of microseconds, 10 bits of clock id, as 13
    base32-sortable characters."""
    value = ((micros & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(B32_SORTABLE[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def tid_for(key: str, created: dt.datetime | None) -> str:
    """The record key of the reply an outbox row posts: the same row always gets the same TID
    (its creation time, clock id from a hash of its idempotency key), so a retry after a timeout
    can never post twice. Without a creation time the microseconds come from the hash too,
    somewhere in 2023 (in the past, as a TID must not be in the future)."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    if created is not None:
        micros = int(created.timestamp() * 1_000_000)
    else:
        micros = 1_672_531_200_000_000 + digest % (365 * 86400 * 1_000_000)
    return tid(micros, digest >> 54)


# --- the client --------------------------------------------------------------------------------


def _error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "Error", response.text[:200]
    if isinstance(body, dict):
        return str(body.get("error") or response.reason_phrase or "Error"), str(body.get("message") or "")[:500]
    return response.reason_phrase or "Error", ""


def _save_session(account: ChannelAccount, session: dict[str, Any] | None, *, login_at: float | None = None) -> None:
    """Keep the session (or forget it) in the account's secrets, under a row lock."""
    with transaction.atomic():
        row = ChannelAccount.objects.select_for_update().only("id", "secrets").get(pk=account.pk)
        secrets = dict(row.secrets or {})
        if session is None:
            secrets.pop("session", None)
        else:
            secrets["session"] = session
        if login_at is not None:
            secrets["last_login_at"] = login_at
        ChannelAccount.objects.filter(pk=account.pk).update(secrets=secrets)
    account.secrets = secrets


class BlueskyClient(ApiClient):
    """Calls a PDS (or the local fake) as the account: logs in once, refreshes before expiry."""

    def __init__(self, account: ChannelAccount, *, transport: httpx.BaseTransport | None = None):
        self.account = account
        self.service = str((account.config or {}).get("service") or SERVICE).rstrip("/")
        self._http = httpx.Client(timeout=TIMEOUT, transport=transport)

    # --- session ---------------------------------------------------------------------------

    @property
    def session(self) -> dict[str, Any]:
        return dict((self.account.secrets or {}).get("session") or {})

    @property
    def did(self) -> str:
        return str(self.session.get("did") or (self.account.config or {}).get("did") or "")

    def _raw(self, method: str, nsid: str, token: str = "", **kwargs: Any) -> tuple[dict[str, Any], RateLimit]:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._http.request(method, f"{self.service}/xrpc/{nsid}", headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise XRPCError(0, type(exc).__name__, str(exc)) from exc
        rate = RateLimit.from_headers(response.headers, "ratelimit-")
        if response.status_code >= 400:
            error, message = _error(response)
            raise XRPCError(response.status_code, error, message, rate)
        try:
            body = response.json() if response.content else {}
        except ValueError as exc:
            raise XRPCError(502, "InvalidResponse", "response is not JSON", rate) from exc
        return body, rate

    def login(self) -> dict[str, Any]:
        """createSession with the app password; spaced so we never hit its 30-per-5-minutes limit."""
        secrets = self.account.secrets or {}
        identifier, password = str(secrets.get("identifier") or self.account.handle or ""), str(secrets.get("password") or "")
        if not identifier or not password:
            raise AuthRefused(401, "AuthenticationRequired", "the account has no identifier and app password")
        last = float(secrets.get("last_login_at") or 0)
        wait = last + LOGIN_SPACING - time.time()
        if wait > 0:
            raise XRPCError(429, "LoginSpacing", f"logged in {round(LOGIN_SPACING - wait)} s ago; next login in {round(wait)} s", RateLimit(None, 0, time.time() + wait))
        _save_session(self.account, self.session or None, login_at=time.time())
        try:
            body, _ = self._raw("POST", "com.atproto.server.createSession", json={"identifier": identifier, "password": password})
        except XRPCError as exc:
            if exc.status == 401 or exc.error in {"AuthenticationRequired", "AccountTakedown", "InvalidToken"}:
                raise AuthRefused(exc.status, exc.error, exc.message or "the app password was refused", exc.rate) from exc
            raise
        session = Session.model_validate(body).model_dump()
        _save_session(self.account, session)
        # The credentials work: that alone makes the account connected again (see health).
        health.do_record_channel_ok(self.account, checked=True)
        return session

    def refresh(self) -> dict[str, Any]:
        """refreshSession with the refresh token; a refused refresh token falls back to a login."""
        refresh_jwt = str(self.session.get("refreshJwt") or "")
        if not refresh_jwt:
            return self.login()
        try:
            body, _ = self._raw("POST", "com.atproto.server.refreshSession", refresh_jwt)
        except XRPCError as exc:
            if exc.error in {"ExpiredToken", "InvalidToken", "AuthenticationRequired"} or exc.status == 401:
                _save_session(self.account, None)
                return self.login()
            if exc.error == "AccountTakedown":
                raise AuthRefused(exc.status, exc.error, exc.message, exc.rate) from exc
            raise
        session = Session.model_validate(body).model_dump()
        _save_session(self.account, session)
        # The credentials work: that alone makes the account connected again (see health).
        health.do_record_channel_ok(self.account, checked=True)
        return session

    def access_token(self) -> str:
        """A usable access token: the stored one, refreshed when it expires within five minutes."""
        session = self.session
        if not session.get("accessJwt"):
            return str(self.login()["accessJwt"])
        expires = jwt_expiry(str(session["accessJwt"]))
        if expires is not None and expires - time.time() < REFRESH_MARGIN:
            session = self.refresh()
        return str(session["accessJwt"])

    def call(self, method: str, nsid: str, **kwargs: Any) -> tuple[dict[str, Any], RateLimit]:
        """An authenticated call; an ExpiredToken answer refreshes the session and tries once more."""
        try:
            return self._raw(method, nsid, self.access_token(), **kwargs)
        except XRPCError as exc:
            # "Bad token scope": the app password lacks a privilege (DMs); a refresh cannot help.
            if exc.error not in {"ExpiredToken", "InvalidToken"} or "scope" in exc.message.lower():
                raise
        self.refresh()
        try:
            return self._raw(method, nsid, str(self.session["accessJwt"]), **kwargs)
        except XRPCError as exc:
            if exc.error in {"ExpiredToken", "InvalidToken"}:
                raise AuthRefused(exc.status, exc.error, exc.message, exc.rate) from exc
            raise

    # --- endpoints -------------------------------------------------------------------------

    def notifications(self, *, cursor: str = "", limit: int = 50) -> tuple[NotificationPage, RateLimit]:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        body, rate = self.call("GET", "app.bsky.notification.listNotifications", params=params)
        return NotificationPage.model_validate(body), rate

    def posts(self, uris: list[str]) -> list[PostView]:
        found: list[PostView] = []
        for start in range(0, len(uris), 25):
            body, _ = self.call("GET", "app.bsky.feed.getPosts", params={"uris": uris[start : start + 25]})
            found += [PostView.model_validate(p) for p in body.get("posts", [])]
        return found

    def profiles(self, actors: list[str]) -> list[Profile]:
        found: list[Profile] = []
        for start in range(0, len(actors), 25):
            body, _ = self.call("GET", "app.bsky.actor.getProfiles", params={"actors": actors[start : start + 25]})
            found += [Profile.model_validate(p) for p in body.get("profiles", [])]
        return found

    def resolve_handle(self, handle: str) -> str:
        body, _ = self.call("GET", "com.atproto.identity.resolveHandle", params={"handle": handle})
        return str(body.get("did") or "")

    def create_record(self, record: dict[str, Any], *, rkey: str = "", collection: str = POST) -> tuple[dict[str, Any], RateLimit]:
        payload: dict[str, Any] = {"repo": self.did, "collection": collection, "record": record}
        if rkey:
            payload["rkey"] = rkey
        return self.call("POST", "com.atproto.repo.createRecord", json=payload)

    def get_record(self, did: str, rkey: str, *, collection: str = POST) -> dict[str, Any] | None:
        """A record from a repo, or None when there is none."""
        try:
            body, _ = self.call("GET", "com.atproto.repo.getRecord", params={"repo": did, "collection": collection, "rkey": rkey})
        except XRPCError as exc:
            if exc.error == "RecordNotFound" or exc.status == 404:
                return None
            raise
        return body

    # --- direct messages (the chat service, proxied by the PDS) ---------------------------------

    def chat(self, method: str, nsid: str, **kwargs: Any) -> tuple[dict[str, Any], RateLimit]:
        return self.call(method, nsid, headers={"atproto-proxy": CHAT_PROXY}, **kwargs)

    def chat_log(self, cursor: str = "") -> tuple[list[dict[str, Any]], str]:
        """Chat events after `cursor`, oldest first, and the cursor to ask from next."""
        body, _ = self.chat("GET", "chat.bsky.convo.getLog", params={"cursor": cursor} if cursor else {})
        logs = [log for log in body.get("logs", []) if isinstance(log, dict)]
        return logs, str(body.get("cursor") or cursor)

    def convo_for(self, did: str) -> str:
        body, _ = self.chat("GET", "chat.bsky.convo.getConvoForMembers", params={"members": [did]})
        return str((body.get("convo") or {}).get("id") or "")

    def chat_messages(self, convo_id: str, *, limit: int = 30) -> list[dict[str, Any]]:
        body, _ = self.chat("GET", "chat.bsky.convo.getMessages", params={"convoId": convo_id, "limit": limit})
        return [m for m in body.get("messages", []) if isinstance(m, dict)]

    def send_chat(self, convo_id: str, text: str) -> tuple[dict[str, Any], RateLimit]:
        return self.chat("POST", "chat.bsky.convo.sendMessage", json={"convoId": convo_id, "message": {"text": text}})
