"""Mastodon in: notifications (mentions, DMs, favourites, boosts, follows, edits) by polling with a
cursor, the same through the streaming API, and hashtag/keyword posts for listening.

What becomes what:
- a `mention` whose status is `visibility: direct` is a private message (a DM), threaded per
  person (`thread_id = dm:<account id>`) and by `in_reply_to_id`; any other mention is a public
  item threaded by `in_reply_to_id` (a top-level mention starts its own thread);
- `favourite` and `reblog` of the brand's posts are reaction events (⭐, 🔁) on those posts;
- `follow` is a follow event on the person; `update` (and the stream's `status.update` for a
  status we hold) is an edit event carrying the new text; the stream's `delete` of a status we
  hold is a delete event. Events for statuses we never stored (home timeline noise) are ignored.
- statuses from hashtag streams, tag timelines and keyword searches are `route="stream"` items
  for listening.

The cursor (`config["notifications"]["min_id"]`) makes a restart resume without gaps or
duplicates: each poll asks for the notifications *immediately newer* than it (`min_id`), stores
them oldest first and only then moves the cursor to the page's `Link: rel="prev"` id, page after
page. A crash between storing and moving refetches a page, which ingest ignores (it is idempotent
on the status id and the event id). The stream never moves the cursor: after every (re)connect
the connector polls from it, so what was said while disconnected is caught up, and what the
stream also delivered is a duplicate, ignored.

Rate limits (300 calls per 5 minutes per account, shared by every endpoint): polling stops while
`X-RateLimit-Remaining` is at or below `RESERVE_FOR_SENDING`, so replies keep some room, and
waits until `X-RateLimit-Reset`.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import json
import logging
import time
from contextlib import AbstractContextManager
from html.parser import HTMLParser
from typing import Any

from pydantic import ValidationError

from madoguchi.connectors import health
from madoguchi.connectors.base import InboundAuthor, InboundEvent, InboundItem
from madoguchi.connectors.mastodon.client import (
    Account,
    MastodonAPIError,
    MastodonClient,
    Notification,
    RateLimit,
    Status,
)
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.polling import run_client
from madoguchi.inbox.actions import sanitize_html
from madoguchi.inbox.models import Message
from madoguchi.ingest import actions as ingest

logger = logging.getLogger(__name__)

POLL_SECONDS = 60
SEARCH_POLL_SECONDS = 300
LEASE_SECONDS = 300
PAGE_LIMIT = 40
MAX_PAGES_PER_POLL = 10
RESERVE_FOR_SENDING = 10  # calls of the 300 per 5 minutes kept for replies
INSTANCE_CHECK_SECONDS = 86_400
REACTION_EMOJI = {"favourite": "⭐", "reblog": "🔁"}


# --- HTML → text --------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    """Mastodon's status HTML as plain text: paragraphs and line breaks kept, the hidden parts of
    shortened links (`span.invisible`) restored by using the link's href."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._link_stack: list[bool] = []  # True: a plain link whose href replaces its text
        self._skip = 0  # inside <script> or <style>: never text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts and "".join(self.parts).strip():
            self.parts.append("\n\n")
        elif tag == "a":
            classes = (values.get("class") or "").split()
            plain = "mention" not in classes and "hashtag" not in classes and bool(values.get("href"))
            self._link_stack.append(plain)
            if plain:
                self.parts.append(values.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link_stack:
            self._link_stack.pop()
        elif tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if self._skip or any(self._link_stack):
            return  # script, or a link whose href was written instead
        self.parts.append(data)


def html_to_text(content: str) -> str:
    if not content:
        return ""
    parser = _TextExtractor()
    parser.feed(content)
    parser.close()
    return html_lib.unescape("".join(parser.parts)).strip()


# --- entities → items and events -------------------------------------------------------------


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def author_of(account: Account, language: str = "") -> InboundAuthor:
    return InboundAuthor(
        external_id=account.id,
        handle=(account.acct or account.username)[:255],
        display_name=account.display_name[:255],
        avatar_url=account.avatar[:1000],
        followers=account.followers_count if account.followers_count is None or account.followers_count >= 0 else None,
        language=language[:16],
    )


def status_item(status: Status, raw: dict[str, Any] | None = None, *, route: str = "conversation") -> InboundItem:
    """A status as a normalized item: a direct one is private (a DM), any other public."""
    language = (status.language or "")[:16]
    body = html_to_text(status.content)
    text = f"{status.spoiler_text}\n\n{body}".strip() if status.spoiler_text else body
    direct = status.visibility == "direct"
    if direct:
        thread_id = f"dm:{status.account.id}"
    else:
        thread_id = "" if status.in_reply_to_id else status.id
    return InboundItem(
        external_id=status.id,
        author=author_of(status.account, language),
        text=text,
        html=sanitize_html(status.content),
        created_at=_time(status.created_at),
        reply_to=[status.in_reply_to_id] if status.in_reply_to_id else [],
        thread_id=thread_id,
        public=not direct,
        url=(status.url or status.uri or "")[:1000],
        route=route,  # type: ignore[arg-type]
        language=language,
        raw={
            "status": raw if raw is not None else status.model_dump(mode="json"),
            "visibility": status.visibility,
            "acct": status.account.acct,
            "bot": status.account.bot,
            # engagement, under the names listening's triage reads
            "likes": status.favourites_count,
            "reposts": status.reblogs_count,
            "replies": status.replies_count,
        },
    )


def edit_event(status: Status, raw: dict[str, Any] | None = None) -> InboundEvent:
    """An edited status: the new text and HTML; the id carries `edited_at`, so each edit is kept once."""
    return InboundEvent(
        external_id=f"edit:{status.id}:{status.edited_at or status.created_at}",
        kind="edit",
        author=author_of(status.account, status.language or ""),
        target_external_id=status.id,
        text=html_to_text(status.content),
        html=sanitize_html(status.content),
        created_at=_time(status.edited_at) or _time(status.created_at),
        raw={"status": raw if raw is not None else status.model_dump(mode="json")},
    )


def notification_to(notification: Notification, raw: dict[str, Any], *, own_id: str = "") -> InboundItem | InboundEvent | None:
    """What a notification means for the inbox; None for what we do not keep (our own posts,
    types we did not ask for)."""
    status, kind = notification.status, notification.type
    status_raw = raw.get("status") if isinstance(raw.get("status"), dict) else None
    if kind == "mention" and status is not None:
        if own_id and status.account.id == own_id:
            return None
        return status_item(status, status_raw)
    if kind in REACTION_EMOJI and status is not None:
        return InboundEvent(
            external_id=f"notification:{notification.id}",
            kind="reaction",
            author=author_of(notification.account),
            target_external_id=status.id,
            emoji=REACTION_EMOJI[kind],
            created_at=_time(notification.created_at),
            raw={"notification_id": notification.id, "type": kind},
        )
    if kind == "follow":
        return InboundEvent(
            external_id=f"notification:{notification.id}",
            kind="follow",
            author=author_of(notification.account),
            created_at=_time(notification.created_at),
            raw={"notification_id": notification.id, "type": kind},
        )
    if kind == "update" and status is not None:
        return edit_event(status, status_raw)
    return None


def _known(account: ChannelAccount, status_id: str) -> Message | None:
    return (
        Message.objects.filter(channel_account=account, external_id=status_id)
        .select_related("identity")
        .first()
    )


def delete_event(account: ChannelAccount, status_id: str) -> InboundEvent | None:
    """The stream's `delete` carries only an id: kept when the status is one of our messages."""
    message = _known(account, status_id)
    if message is None or message.identity is None or message.direction != "in":
        return None
    identity = message.identity
    return InboundEvent(
        external_id=f"delete:{status_id}",
        kind="delete",
        author=InboundAuthor(external_id=identity.external_id, handle=identity.handle, display_name=identity.display_name),
        target_external_id=status_id,
        raw={"status_id": status_id},
    )


def handle(account: ChannelAccount, thing: InboundItem | InboundEvent | None, raw: Any) -> str:
    """Ingest an item or event; returns "created", "duplicate", "event", "ignored" or "quarantined"."""
    if thing is None:
        return "ignored"
    try:
        if isinstance(thing, InboundEvent):
            ingest.do_ingest_event(account, thing)
            return "event"
        result = ingest.do_ingest(account, thing)
    except ValueError as exc:  # an item we cannot read must not block the cursor
        ingest.do_quarantine(account, f"Mastodon {thing.external_id}: {exc}"[:5000], _dump(raw))
        return "quarantined"
    if result.dropped:
        return "ignored"
    return "created" if result.created else "duplicate"


def handle_notification(account: ChannelAccount, raw: Any) -> str:
    """One notification entity (from a page or the stream) into the inbox."""
    try:
        notification = Notification.model_validate(raw)
        thing = notification_to(notification, raw, own_id=str((account.config or {}).get("account_id", "")))
    except (ValidationError, ValueError) as exc:
        ingest.do_quarantine(account, f"Mastodon notification: {exc}"[:5000], _dump(raw))
        return "quarantined"
    return handle(account, thing, raw)


def handle_status(account: ChannelAccount, raw: Any, *, route: str = "stream") -> str:
    """A status from a hashtag stream, a tag timeline or a search: a listening item."""
    try:
        status = Status.model_validate(raw)
    except ValidationError as exc:
        ingest.do_quarantine(account, f"Mastodon status: {exc}"[:5000], _dump(raw))
        return "quarantined"
    if status.reblog is not None:
        return "ignored"  # a boost repeats a status we see (or will see) by itself
    own = str((account.config or {}).get("account_id", ""))
    if own and status.account.id == own:
        return "ignored"
    return handle(account, status_item(status, raw, route=route), raw)


def _dump(raw: Any) -> str:
    try:
        return json.dumps(raw, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(raw)


# --- state kept in the account's config ------------------------------------------------------


def state(account: ChannelAccount, key: str) -> dict[str, Any]:
    return dict((account.config or {}).get(key) or {})


def save(account: ChannelAccount, key: str, **changes: Any) -> None:
    health.save_state(account, key, **changes)


def claim(account: ChannelAccount, key: str, now: float, *, force: bool, lease: float = LEASE_SECONDS) -> bool:
    """Take a lease if the work is due, so two workers never poll (or stream) one account at once.
    `force` skips the poll interval, never the account-wide rate-limit wait."""
    return health.claim_lease(
        account, key, now=now, seconds=lease, due_fields=("next_poll_at",), account_wait=_rate_wait, force=force
    )


def _rate_wait(config: dict[str, Any]) -> float:
    return float((config.get("rate_limit") or {}).get("wait_until", 0) or 0)


def remember_rate(account: ChannelAccount, rate: RateLimit, *, keep: int = RESERVE_FOR_SENDING) -> float:
    """Keep the account-wide window when it runs low; returns how long polling should wait."""
    wait = rate.wait_seconds(keep=keep)
    known = (account.config or {}).get("rate_limit")
    if rate.remaining is not None and rate.remaining <= keep and rate.reset is not None:
        value = {"remaining": rate.remaining, "reset": rate.reset, "wait_until": time.time() + wait if wait else 0}
        health.update_config(account, lambda config: config.__setitem__("rate_limit", value))
    elif known and rate.remaining is not None:
        health.update_config(account, lambda config: config.pop("rate_limit", None))
    return wait


def known_wait(account: ChannelAccount, *, keep: int = 0) -> float:
    """Seconds until the remembered window resets, if it is used up (down to `keep` calls)."""
    known = (account.config or {}).get("rate_limit")
    if not known:
        return 0.0
    return RateLimit(None, int(known.get("remaining") or 0), known.get("reset")).wait_seconds(keep=keep)


def failed(account: ChannelAccount, exc: MastodonAPIError, what: str) -> str:
    """Record a failed call: a refused token disconnects, a 429 waits for the reset, else degraded."""
    if exc.status == 401:
        health.do_record_channel_error(account, f"Mastodon refused the access token (401): {exc.detail}", disconnected=True)
        return "disconnected"
    if exc.status == 429:
        wait = exc.rate.wait_seconds() or 60.0
        reset = exc.rate.reset or time.time() + wait
        health.update_config(account, lambda config: config.__setitem__("rate_limit", {"remaining": 0, "reset": reset, "wait_until": time.time() + wait}))
        health.do_record_channel_error(account, f"Mastodon rate limit reached ({what}); waiting {round(wait)} s")
        return "rate limited"
    health.do_record_channel_error(account, f"{what}: {exc}")
    return str(exc)


def _newest(ids: list[str]) -> str:
    def key(value: str) -> tuple[int, int, str]:
        return (0, int(value), "") if value.isdigit() else (1, 0, value)

    return max(ids, key=key, default="")


def ensure_identity(account: ChannelAccount, client: MastodonClient) -> str:
    """The brand's own account id (to skip our own statuses), asked once and kept in config."""
    own = str((account.config or {}).get("account_id", ""))
    if own:
        return own
    me = client.verify_credentials()

    def keep(config: dict[str, Any]) -> None:
        config["account_id"] = me.id
        config.setdefault("acct", me.acct)

    health.update_config(account, keep)
    return me.id


def ensure_instance(account: ChannelAccount, client: MastodonClient, *, now: float | None = None) -> None:
    """Cache the server's post length limit (`configuration.statuses.max_characters`) daily."""
    now = now or time.time()
    if now - float((account.config or {}).get("instance_checked_at", 0)) < INSTANCE_CHECK_SECONDS:
        return
    try:
        statuses = (client.instance().get("configuration") or {}).get("statuses") or {}
    except MastodonAPIError as exc:
        if exc.status in (401, 429):
            raise
        statuses = {}  # older servers have no /api/v2/instance: keep the default

    streaming = str((client.last_instance.get("configuration") or {}).get("urls", {}).get("streaming") or "")

    def keep(config: dict[str, Any]) -> None:
        config["instance_checked_at"] = now
        if streaming.startswith(("wss://", "ws://")):  # the streaming host, for server-sent events
            config["streaming_url"] = "http" + streaming[2:]
        if isinstance(statuses.get("max_characters"), int) and statuses["max_characters"] > 0:
            config["max_characters"] = statuses["max_characters"]
        if isinstance(statuses.get("characters_reserved_per_url"), int):
            config["characters_reserved_per_url"] = statuses["characters_reserved_per_url"]

    health.update_config(account, keep)


# --- polling ---------------------------------------------------------------------------------


def _polling(account: ChannelAccount, key: str, client: MastodonClient | None, every: float) -> AbstractContextManager[MastodonClient]:
    """The client of one poll run of `key`; afterwards the lease is released and the next run set."""
    return run_client(client, lambda: MastodonClient(account), lambda: save(account, key, lease_until=None, next_poll_at=time.time() + every))


def do_poll_notifications(account: ChannelAccount, *, client: MastodonClient | None = None, force: bool = False) -> dict[str, Any]:
    """Fetch and ingest the notifications newer than the cursor; returns what happened."""
    if not (account.config or {}).get("api_base_url"):
        return {"skipped": "no api_base_url in config"}
    now = time.time()
    if not claim(account, "notifications", now, force=force):
        return {"skipped": "not due"}
    counts: dict[str, Any] = {"created": 0, "duplicate": 0, "event": 0, "pages": 0}
    with _polling(account, "notifications", client, float((account.config or {}).get("poll_seconds", POLL_SECONDS))) as client:
        try:
            ensure_identity(account, client)
            ensure_instance(account, client)
            for _ in range(MAX_PAGES_PER_POLL):
                cursor = str(state(account, "notifications").get("min_id", ""))
                page = client.notifications(min_id=cursor, limit=PAGE_LIMIT)
                counts["pages"] += 1
                for raw in reversed(page.entries):  # oldest first, so a thread builds in order
                    outcome = handle_notification(account, raw)
                    counts[outcome] = counts.get(outcome, 0) + 1
                newest = page.newer_min_id or _newest([str(e.get("id", "")) for e in page.entries if e.get("id")])
                if newest:
                    save(account, "notifications", min_id=newest)
                elif not cursor:
                    # Nothing yet: everything that comes from now on is newer than id 0.
                    save(account, "notifications", min_id="0")
                wait = remember_rate(account, page.rate)
                if wait:
                    counts["rate_limited_for"] = round(wait)
                    break
                # The very first poll takes the newest page only: history before connecting is not ours.
                if not cursor or len(page.entries) < PAGE_LIMIT:
                    break
        except MastodonAPIError as exc:
            counts["error"] = failed(account, exc, "polling notifications")
            return counts
        health.do_record_channel_ok(account, received=True)
    return counts


def listening_terms(account: ChannelAccount) -> tuple[list[str], list[str]]:
    """(hashtags, keywords) of the brand's active listening rules that apply to Mastodon."""
    from madoguchi.listening.matcher import RuleSpec
    from madoguchi.listening.models import ListeningRule
    from madoguchi.listening.platform import mastodon_hashtags

    limit = int((account.config or {}).get("max_listening_terms", 10))
    tags: dict[str, str] = {}
    words: dict[str, str] = {}
    rules = ListeningRule.objects.filter(workspace_id=account.workspace_id, brand_id=account.brand_id, is_active=True).order_by("pk")
    for rule in rules:
        if rule.channels and "mastodon" not in rule.channels:
            continue
        spec = RuleSpec(id=rule.pk, name=rule.name, any_of=tuple(rule.any_of), all_of=tuple(rule.all_of))
        for tag in mastodon_hashtags(spec):
            tags.setdefault(tag.lower(), tag)
        terms = [t.strip() for t in rule.any_of if t.strip() and not t.strip().startswith(("#", "@"))]
        if not terms and rule.all_of:
            terms = [" ".join(t.strip() for t in rule.all_of if t.strip())]
        for term in terms:
            words.setdefault(term.lower(), term)
    return list(tags.values())[:limit], list(words.values())[:limit]


def do_poll_listening(account: ChannelAccount, *, client: MastodonClient | None = None, force: bool = False, tags: bool = True) -> dict[str, Any]:
    """Catch up hashtag timelines (unless they are streamed: `tags=False`) and keyword searches
    from their cursors, as route="stream" items."""
    if not (account.config or {}).get("api_base_url"):
        return {"skipped": "no api_base_url in config"}
    hashtags, words = listening_terms(account)
    hashtags = hashtags if tags else []
    if not hashtags and not words:
        return {"skipped": "no listening terms"}
    if not claim(account, "listening", time.time(), force=force):
        return {"skipped": "not due"}
    counts: dict[str, Any] = {"created": 0, "duplicate": 0, "ignored": 0, "calls": 0}
    with _polling(account, "listening", client, float((account.config or {}).get("search_poll_seconds", SEARCH_POLL_SECONDS))) as client:
        try:
            ensure_identity(account, client)
            for kind, term in [("tag", t) for t in hashtags] + [("search", w) for w in words]:
                if known_wait(account, keep=RESERVE_FOR_SENDING):
                    counts["rate_limited"] = True
                    break
                counts["calls"] += 1
                wait = _catch_up_term(account, client, kind, term, counts)
                if wait:
                    counts["rate_limited_for"] = round(wait)
                    break
        except MastodonAPIError as exc:
            counts["error"] = failed(account, exc, "listening")
            return counts
        health.do_record_channel_ok(account, received=True)
    return counts


def _catch_up_term(account: ChannelAccount, client: MastodonClient, kind: str, term: str, counts: dict[str, Any]) -> float:
    key = f"{kind}:{term.lower()}"
    cursor = str((state(account, "listening").get("cursors") or {}).get(key, ""))
    if kind == "tag":
        raw, rate = client.tag_timeline(term, min_id=cursor)
    else:
        _, raw, rate = client.search_statuses(term, min_id=cursor)
    for entry in sorted(raw, key=lambda e: (len(str(e.get("id", ""))), str(e.get("id", "")))):
        outcome = handle_status(account, entry)
        counts[outcome] = counts.get(outcome, 0) + 1
    newest = _newest([i for i in [cursor] + [str(e.get("id", "")) for e in raw] if i])
    if not newest and not cursor:
        newest = "0"  # nothing yet: everything found from now on is newer
    if newest and newest != cursor:

        def move(config: dict[str, Any]) -> None:  # only this term's cursor, under the row lock
            config.setdefault("listening", {}).setdefault("cursors", {})[key] = newest

        health.update_config(account, move)
    return remember_rate(account, rate)
