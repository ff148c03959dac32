"""X mentions in, by polling the mentions timeline with a cursor kept in the account's config.

The cursor (`config["mentions"]`) makes a restart resume without gaps or duplicates:
- `since_id`: every mention up to this id is stored; the next poll asks only for newer ones.
- While a poll walks several pages (newest first), `next_token` and `pending_newest` are saved
  after each page is stored, so a crash mid-way resumes at the next page, and `since_id` moves to
  `pending_newest` only once the last page is stored. A page fetched twice changes nothing:
  ingest is idempotent on the tweet id.
- `wait_until`: when `x-rate-limit-remaining` reaches 0 (or on a 429) we wait for
  `x-rate-limit-reset` instead of calling again.
Direct messages (`config["dms"]`, when `config["poll_dms"]` is on) use the same cursor; their
endpoint has no since_id, so a poll pages back from the newest until it reaches the cursor.
Only the latest 800 mentions are reachable (see client.py for the documentation), so accounts
are polled every `config["poll_seconds"]` (default 60 s; 300 requests per 15 min per user).

Edits: an edited post comes back as a new post id whose `edit_history_tweet_ids` lists every
version, oldest first (https://docs.x.com/x-api/fundamentals/edit-posts). When we already hold an
earlier version (a message, or a post captured from the filtered stream), the new one is recorded
as an edit event on it (the original text is kept for audit); otherwise it is ingested as a post
of its own.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import html
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from madoguchi.connectors import health
from madoguchi.connectors.base import InboundAuthor, InboundEvent, InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.polling import run_client, waits_out
from madoguchi.connectors.ratelimit import RateLimit
from madoguchi.connectors.x.client import DMEvent, Tweet, User, XAPIError, XClient
from madoguchi.ingest import actions as ingest

logger = logging.getLogger(__name__)

POLL_SECONDS = 60
LEASE_SECONDS = 300
MAX_PAGES_PER_POLL = 8  # 800 reachable mentions at 100 a page
# lang values that say "no language" (undetermined, media only, hashtags only…)
NO_LANGUAGE = {"und", "zxx", "qme", "qht", "qam", "qct", "qst"}


def tweet_item(tweet: Tweet, author: User | None, *, route: str = "conversation") -> InboundItem:
    """A post from the v2 API as a normalized, public item."""
    author = author or User(id=tweet.author_id or "unknown")
    replied_to = [ref.id for ref in tweet.referenced_tweets if ref.type == "replied_to"]
    created_at = dt.datetime.fromisoformat(tweet.created_at.replace("Z", "+00:00")) if tweet.created_at else None
    language = "" if tweet.lang in NO_LANGUAGE else tweet.lang[:16]
    return InboundItem(
        external_id=tweet.id,
        author=InboundAuthor(
            external_id=author.id,
            handle=author.username[:255],
            display_name=author.name[:255],
            avatar_url=author.profile_image_url[:1000],
            followers=author.public_metrics.followers_count,
            language=language,
        ),
        # v2 returns text with &amp; &lt; &gt; escaped.
        text=html.unescape(tweet.text),
        created_at=created_at,
        reply_to=replied_to,
        thread_id=tweet.conversation_id,
        public=True,
        url=f"https://x.com/{author.username or 'i/web'}/status/{tweet.id}",
        language=language,
        route=route,  # type: ignore[arg-type]
        raw={"tweet": tweet.model_dump(mode="json"), "author": author.model_dump(mode="json"), "verified": author.verified},
    )


def author_of(user: User) -> InboundAuthor:
    return InboundAuthor(
        external_id=user.id,
        handle=user.username[:255],
        display_name=user.name[:255],
        avatar_url=user.profile_image_url[:1000],
        followers=user.public_metrics.followers_count,
    )


def listen_route(tweet: Tweet, own_id: str, own_username: str = "") -> str:
    """A keyword post is for the stream, unless it speaks to the brand: a mention of its account or
    a reply to it opens a conversation like a polled mention would."""
    if own_id and tweet.in_reply_to_user_id == own_id:
        return "conversation"
    for mention in tweet.entities.mentions:
        if (own_id and mention.id == own_id) or (own_username and mention.username.lower() == own_username.lower()):
            return "conversation"
    return "stream"


def edit_target(account: ChannelAccount, tweet: Tweet) -> str:
    """The external id of the version of this post we already hold (as a message, or as a post
    captured from the stream), if this post is an edit of it."""
    from madoguchi.inbox.models import Message
    from madoguchi.ingest.models import Post

    earlier = [i for i in tweet.edit_history_tweet_ids if i != tweet.id]
    if not earlier:
        return ""
    held = set(Message.objects.filter(channel_account=account, external_id__in=earlier).values_list("external_id", flat=True))
    if not held:
        held = set(Post.objects.filter(channel_account=account, external_id__in=earlier).values_list("external_id", flat=True))
    return next((i for i in earlier if i in held), "")


def edit_event(tweet: Tweet, author: User | None, target: str) -> InboundEvent:
    author = author or User(id=tweet.author_id or "unknown")
    created_at = dt.datetime.fromisoformat(tweet.created_at.replace("Z", "+00:00")) if tweet.created_at else None
    return InboundEvent(
        external_id=f"edit:{tweet.id}",
        kind="edit",
        author=author_of(author),
        target_external_id=target,
        text=html.unescape(tweet.text),
        created_at=created_at,
        raw={"tweet": tweet.model_dump(mode="json")},
    )


def tweet_or_edit(account: ChannelAccount, tweet: Tweet, author: User | None, *, route: str = "conversation") -> InboundItem | InboundEvent:
    """A post as an item, or as an edit event on the earlier version we already hold."""
    target = edit_target(account, tweet)
    if target:
        return edit_event(tweet, author, target)
    return tweet_item(tweet, author, route=route)


def ingest_built(account: ChannelAccount, built: InboundItem | InboundEvent) -> str:
    """Hand an item to do_ingest or an event to do_ingest_event; returns created/duplicate/dropped/event."""
    if isinstance(built, InboundEvent):
        ingest.do_ingest_event(account, built)
        return "event"
    result = ingest.do_ingest(account, built)
    if result.dropped:
        return "dropped"
    if result.quarantine is not None:
        return "quarantined"
    return "created" if result.created else "duplicate"


def dm_item(event: DMEvent, sender: User | None) -> InboundItem:
    """A direct message event as a normalized, private item threaded by its DM conversation."""
    sender = sender or User(id=event.sender_id or "unknown")
    created_at = dt.datetime.fromisoformat(event.created_at.replace("Z", "+00:00")) if event.created_at else None
    return InboundItem(
        external_id=f"dm:{event.id}",
        author=InboundAuthor(
            external_id=sender.id,
            handle=sender.username[:255],
            display_name=sender.name[:255],
            avatar_url=sender.profile_image_url[:1000],
            followers=sender.public_metrics.followers_count,
        ),
        text=html.unescape(event.text),
        created_at=created_at,
        thread_id=f"dm:{event.dm_conversation_id}" if event.dm_conversation_id else "",
        public=False,
        raw={"dm_event": event.model_dump(mode="json"), "author": sender.model_dump(mode="json"), "verified": sender.verified},
    )


def _claim(account: ChannelAccount, key: str, now: float, *, force: bool) -> bool:
    """Take the poll lease if the timeline is due, so two workers never poll it at once."""
    return health.claim_lease(
        account, key, now=now, seconds=LEASE_SECONDS, due_fields=("next_poll_at", "wait_until"), force=force
    )


def _save(account: ChannelAccount, key: str, **changes: Any) -> None:
    health.save_state(account, key, **changes)


def _newer(a: str, b: str) -> str:
    """The larger of two ids (X ids are 64-bit integers that grow with time)."""
    if not a or not b:
        return a or b
    return a if int(a) >= int(b) else b


@dataclass
class Page:
    """One page of a timeline, newest first, as items ready to ingest."""

    items: Sequence[tuple[str, Callable[[], InboundItem | InboundEvent], str]]  # (id, build, raw JSON)
    newest_id: str
    next_token: str
    reached_cursor: bool  # the page went back to ids we already have
    rate: RateLimit


def _mentions_page(account: ChannelAccount, client: XClient, user_id: str, since_id: str, token: str) -> Page:
    page, rate = client.mentions(user_id, since_id=since_id, pagination_token=token)
    users = {u.id: u for u in page.includes.users}
    items = [
        (t.id, functools.partial(tweet_or_edit, account, t, users.get(t.author_id)), t.model_dump_json())
        for t in page.data
        if t.author_id != user_id  # our own replies come back in the timeline when they mention us
    ]
    return Page(items, page.meta.newest_id, page.meta.next_token, False, rate)


def _search_page(account: ChannelAccount, query: str, client: XClient, user_id: str, since_id: str, token: str) -> Page:
    page, rate = client.search_recent(query, since_id=since_id, next_token=token)
    users = {u.id: u for u in page.includes.users}
    own_username = str((account.config or {}).get("username") or account.handle or "")
    items = [
        (t.id, functools.partial(tweet_or_edit, account, t, users.get(t.author_id), route=listen_route(t, user_id, own_username)), t.model_dump_json())
        for t in page.data
        if t.author_id != user_id
    ]
    return Page(items, page.meta.newest_id, page.meta.next_token, False, rate)


def _dm_page(account: ChannelAccount, client: XClient, user_id: str, since_id: str, token: str) -> Page:
    # dm_events has no since_id: page back from the newest until we reach the cursor.
    page, rate = client.dm_events(pagination_token=token)
    fresh = [e for e in page.data if not since_id or int(e.id) > int(since_id)]
    users = {u.id: u for u in page.includes.users}
    items = [
        (e.id, functools.partial(dm_item, e, users.get(e.sender_id)), e.model_dump_json())
        for e in fresh
        if e.event_type == "MessageCreate" and e.sender_id != user_id  # not the DMs we sent
    ]
    newest = max((e.id for e in page.data), key=int, default="")
    return Page(items, newest, page.meta.next_token, len(fresh) < len(page.data), rate)


def do_poll_mentions(account: ChannelAccount, *, client: XClient | None = None, force: bool = False) -> dict[str, Any]:
    """Fetch and ingest new mentions of the account's user; returns what happened."""
    return _poll(account, "mentions", functools.partial(_mentions_page, account), client=client, force=force)


def do_poll_dms(account: ChannelAccount, *, client: XClient | None = None, force: bool = False) -> dict[str, Any]:
    """Fetch and ingest new direct messages to the account (needs a user token with dm.read)."""
    return _poll(account, "dms", functools.partial(_dm_page, account), client=client, force=force)


def search_key(query: str) -> str:
    """The config key of one search query's cursor."""
    return "search:" + hashlib.sha1(query.encode()).hexdigest()[:16]


def do_poll_search(account: ChannelAccount, query: str, *, client: XClient | None = None, force: bool = False, poll_seconds: float | None = None) -> dict[str, Any]:
    """Fetch and ingest new posts matching one translated listening rule by recent search (for
    plans without the filtered stream); same cursor rules as mentions."""
    fetch = functools.partial(_search_page, account, query)
    return _poll(account, search_key(query), fetch, client=client, force=force, poll_seconds=poll_seconds)


def _poll(
    account: ChannelAccount,
    key: str,
    fetch: Callable[[XClient, str, str, str], Page],
    *,
    client: XClient | None,
    force: bool,
    poll_seconds: float | None = None,
) -> dict[str, Any]:
    user_id = str((account.config or {}).get("user_id", ""))
    if not user_id:
        return {"skipped": "no user_id in config"}
    if not _claim(account, key, time.time(), force=force):
        return {"skipped": "not due"}
    counts: dict[str, Any] = {"created": 0, "duplicate": 0, "pages": 0}
    every = poll_seconds or float((account.config or {}).get("poll_seconds", POLL_SECONDS))
    with run_client(
        client,
        lambda: XClient(account),
        lambda: _save(account, key, lease_until=None, next_poll_at=time.time() + every),
    ) as client:
        for _ in range(MAX_PAGES_PER_POLL):
            state = dict((account.config or {}).get(key, {}))
            since_id, next_token = str(state.get("since_id", "")), str(state.get("next_token", ""))
            try:
                page = fetch(client, user_id, since_id, next_token)
            except XAPIError as exc:
                counts["error"] = _poll_failed(account, key, exc)
                return counts
            counts["pages"] += 1
            for item_id, build, raw in reversed(page.items):  # oldest first, so a thread builds in order
                try:
                    outcome = ingest_built(account, build())
                except ValueError as exc:  # an item we cannot read must not block the cursor
                    ingest.do_quarantine(account, f"X {key} {item_id}: {exc}"[:5000], raw)
                    outcome = "quarantined"
                counts[outcome] = counts.get(outcome, 0) + 1
            pending = _newer(str(state.get("pending_newest", "")), page.newest_id)
            # The very first poll takes the newest page only: history before connecting is not ours.
            more = bool(page.next_token) and bool(since_id or next_token) and not page.reached_cursor
            if more:
                _save(account, key, next_token=page.next_token, pending_newest=pending)
            else:
                _save(account, key, since_id=_newer(since_id, pending) or None, next_token=None, pending_newest=None)
            if waits_out(page.rate, counts, functools.partial(_save, account, key)):
                break
            if not more:
                break
        health.do_record_channel_ok(account, received=True)
    return counts


def _poll_failed(account: ChannelAccount, key: str, exc: XAPIError) -> str:
    """Record a failed poll: wait out a rate limit, disconnect on a refused token, else retry later."""
    if exc.status == 401:
        health.do_record_channel_error(account, f"X refused the token (401): {exc.detail}", disconnected=True)
        return "disconnected"
    if exc.status == 429:
        wait = exc.rate.wait_seconds() or 60.0
        _save(account, key, wait_until=time.time() + wait)
        health.do_record_channel_error(account, f"X rate limit reached; waiting {round(wait)} s")
        return "rate limited"
    health.do_record_channel_error(account, str(exc))
    return str(exc)
