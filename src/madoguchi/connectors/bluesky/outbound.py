"""Bluesky replies out: posts created with `com.atproto.repo.createRecord`, threaded with
`reply {root, parent}` strong refs.

Documentation (November 2026), see client.py for the endpoints:
- Replies: https://docs.bsky.app/docs/advanced-guides/posts#replies — `parent` is the post
  answered; `root` is the parent's own `reply.root`, or the parent itself when it is top-level.
  Both need the post's current `cid`, so the parent is looked up with `app.bsky.feed.getPosts`
  (a deleted parent is a clear failure, not a retry).
- Length: the `app.bsky.feed.post` lexicon allows 300 graphemes (`maxGraphemes`) and 3,000
  bytes of text; we count extended grapheme clusters (UAX #29) with the `regex` module.
- Rich text: https://docs.bsky.app/docs/advanced-guides/post-richtext — links and mentions are
  facets over UTF-8 byte ranges (`app.bsky.richtext.facet#link {uri}`, `#mention {did}`).
- Idempotency: a post's record key is a TID; we derive it from the outbox row (client.tid_for),
  so a retry after a timeout reuses the key. The PDS refuses a second create at an existing key
  (an error, historically a 500); any failure is therefore checked with `getRecord` on that key,
  and a record already there is the success of the earlier attempt.
- Direct messages (when the conversation is private) go through `chat.bsky.convo.sendMessage`
  in the customer's convo (`getConvoForMembers` when we have none yet); see client.py.
- Rate limits: writes cost 3 points of 5,000 an hour; a used-up window (`RateLimit-Remaining: 0`
  or a 429) is remembered in `config["rate_limits"]` and the outbox waits for `RateLimit-Reset`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any, ClassVar

import regex  # type: ignore[import-untyped]

from madoguchi.connectors import health, ratelimit
from madoguchi.connectors.base import (
    OutboundMessage,
    PermanentError,
    SendResult,
    TemporaryError,
    register,
)
from madoguchi.connectors.bluesky.client import (
    POST,
    AuthRefused,
    BlueskyClient,
    PostView,
    RateLimit,
    XRPCError,
    parse_datetime,
    split_uri,
    tid_for,
)
from madoguchi.connectors.models import ChannelAccount
from madoguchi.text.normalize import detect_language

if TYPE_CHECKING:
    from madoguchi.inbox.models import Conversation

MAX_GRAPHEMES = 300
MAX_BYTES = 3000
MAX_DM_GRAPHEMES = 1000  # chat.bsky.convo.defs#messageInput text
GRAPHEME = regex.compile(r"\X")  # extended grapheme clusters (UAX #29)
LINK = re.compile(r"https?://[^\s<>\"'）」】]+", re.IGNORECASE)
MENTION = re.compile(r"(?<![\w@])@([a-zA-Z0-9][a-zA-Z0-9.-]*\.[a-zA-Z][a-zA-Z0-9-]*)")
TRAILING = ".,;:!?)]}"


def grapheme_length(text: str) -> int:
    """The length Bluesky counts against its 300 limit (user-perceived characters)."""
    return len(GRAPHEME.findall(text))


def _span(text: str, start: int, end: int) -> dict[str, int]:
    return {"byteStart": len(text[:start].encode()), "byteEnd": len(text[:end].encode())}


def facets_for(text: str, resolve: Any = None) -> list[dict[str, Any]]:
    """Link facets for URLs in our text, and mention facets for @handles that `resolve` turns into
    a DID (unresolvable handles stay plain text)."""
    facets: list[dict[str, Any]] = []
    for match in LINK.finditer(text):
        url = match.group(0).rstrip(TRAILING)
        facets.append({"index": _span(text, match.start(), match.start() + len(url)), "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}]})
    if resolve is not None:
        for match in list(MENTION.finditer(text))[:5]:
            handle = match.group(1).rstrip(TRAILING)
            did = resolve(handle)
            if did:
                facets.append({"index": _span(text, match.start(), match.start() + 1 + len(handle)), "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}]})
    return sorted(facets, key=lambda f: f["index"]["byteStart"])


def reply_refs(parent: PostView) -> dict[str, Any]:
    """`reply {root, parent}` for an answer to `parent`."""
    parent_ref = {"uri": parent.uri, "cid": parent.cid}
    root = (parent.record.get("reply") or {}).get("root") or {}
    if isinstance(root, dict) and root.get("uri") and root.get("cid"):
        return {"root": {"uri": str(root["uri"]), "cid": str(root["cid"])}, "parent": parent_ref}
    return {"root": parent_ref, "parent": parent_ref}


_remember_rate = ratelimit.remember
_known_wait = ratelimit.known_wait


def _failure(account: ChannelAccount, exc: XRPCError, endpoint: str) -> Exception:
    if isinstance(exc, AuthRefused):
        reason = f"Bluesky refused the account's credentials ({exc.error}): {exc.message}"
        health.do_record_channel_error(account, reason, disconnected=True)
        return PermanentError(reason)
    health.do_record_channel_error(account, str(exc))
    if exc.status == 429:
        # A create costs 3 points: the window may refuse it with a few points left.
        used_up = RateLimit(exc.rate.limit, 0, exc.rate.reset)
        _remember_rate(account, endpoint, used_up)
        return TemporaryError(str(exc), retry_after=used_up.wait_seconds() or 60.0)
    if exc.status == 0 or exc.status >= 500:
        return TemporaryError(str(exc))
    if "scope" in exc.message.lower():
        return PermanentError("Bluesky: the app password does not allow direct messages; create one with access to direct messages")
    if exc.error in {"NotFound", "RecordNotFound"}:
        return PermanentError("Bluesky refused the reply: the post being answered was deleted")
    if exc.error == "BlockedByActor" or "block" in exc.message.lower():
        return PermanentError("Bluesky refused the reply: the author blocked this account")
    return PermanentError(str(exc))


def _created_at(key: str) -> dt.datetime | None:
    from madoguchi.inbox.models import Outbox

    return Outbox.objects.filter(idempotency_key=key).values_list("created_at", flat=True).first()


class BlueskyAdapter:
    def composer_hints(self, conversation: Conversation) -> dict[str, Any]:
        """Bluesky's 300 is counted in graphemes (an emoji with modifiers is one)."""
        return {"counting": "graphemes"}

    kind: ClassVar[str] = "bluesky"

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        text = message.text.strip()
        if not text:
            raise PermanentError("Bluesky: only text replies are supported; this message has no text")
        count = grapheme_length(text)
        if message.public and (count > MAX_GRAPHEMES or len(text.encode()) > MAX_BYTES):
            raise PermanentError(f"Bluesky posts hold at most {MAX_GRAPHEMES} characters; this one has {count}")
        if not message.public and count > MAX_DM_GRAPHEMES:
            raise PermanentError(f"Bluesky direct messages hold at most {MAX_DM_GRAPHEMES} characters; this one has {count}")
        endpoint = "posts" if message.public else "chat"
        wait = _known_wait(account, endpoint)
        if wait:
            raise TemporaryError(f"Bluesky rate limit for {endpoint} used up; waiting {round(wait)} s", retry_after=wait)
        created = _created_at(message.idempotency_key)
        with BlueskyClient(account) as client:
            try:
                if message.public:
                    external_id, rate = self._post(client, text, message.in_reply_to, tid_for(message.idempotency_key, created))
                else:
                    external_id, rate = self._dm(client, text, message, created)
            except XRPCError as exc:
                raise _failure(account, exc, endpoint) from exc
        _remember_rate(account, endpoint, rate)
        health.do_record_channel_ok(account, sent=True)
        return SendResult(external_id)

    def _dm(self, client: BlueskyClient, text: str, message: OutboundMessage, created: dt.datetime | None) -> tuple[str, RateLimit]:
        """A direct message in the customer's conversation. The chat API takes no idempotency key,
        so the conversation's latest messages are checked first: the same text from us since the
        outbox row was written means an earlier attempt went through."""
        convo = message.thread_id.removeprefix("dm:") if message.thread_id.startswith("dm:") else ""
        if not convo:
            if not message.recipient.startswith("did:"):
                raise PermanentError("Bluesky: no recipient for this direct message")
            convo = client.convo_for(message.recipient)
        since = (created or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=5)
        for sent in client.chat_messages(convo):
            sent_at = parse_datetime(str(sent.get("sentAt") or ""))
            if (sent.get("sender") or {}).get("did") == client.did and sent.get("text") == text and sent_at and sent_at >= since:
                return f"dm:{sent['id']}", RateLimit.unknown()
        body, rate = client.send_chat(convo, text)
        return f"dm:{body['id']}", rate

    def _post(self, client: BlueskyClient, text: str, in_reply_to: str, rkey: str) -> tuple[str, RateLimit]:
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        language = detect_language(text)
        if language:
            record["langs"] = [language]
        if in_reply_to:
            _, collection, _ = split_uri(in_reply_to)
            if collection != POST:
                raise PermanentError(f"Bluesky: cannot reply to {in_reply_to!r}: not a post")
            parents = client.posts([in_reply_to])
            if not parents:
                raise PermanentError("Bluesky refused the reply: the post being answered was deleted or is not visible")
            record["reply"] = reply_refs(parents[0])

        def resolve(handle: str) -> str:
            try:
                return client.resolve_handle(handle)
            except XRPCError:
                return ""

        facets = facets_for(text, resolve)
        if facets:
            record["facets"] = facets
        try:
            body, rate = client.create_record(record, rkey=rkey)
        except XRPCError as exc:
            if isinstance(exc, AuthRefused) or exc.status == 429:
                raise
            # An earlier attempt may have posted it (a timeout, then this retry at the same key).
            existing = client.get_record(client.did, rkey)
            if existing is not None and existing.get("uri"):
                return str(existing["uri"]), exc.rate
            raise
        return str(body["uri"]), rate

    def max_length(self, account: ChannelAccount) -> int | None:
        return MAX_GRAPHEMES


adapter = register(BlueskyAdapter())
