"""X mentions in, by polling the mentions timeline with a cursor kept in the account's config.

The cursor (`config["mentions"]`) makes a restart resume without gaps or duplicates:
- `since_id`: every mention up to this id is stored; the next poll asks only for newer ones.
- While a poll walks several pages (newest first), `next_token` and `pending_newest` are saved
  after each page is stored, so a crash mid-way resumes at the next page, and `since_id` moves to
  `pending_newest` only once the last page is stored. A page fetched twice changes nothing:
  ingest is idempotent on the tweet id.
- `wait_until`: when `x-rate-limit-remaining` reaches 0 (or on a 429) we wait for
  `x-rate-limit-reset` instead of calling again.
Only the latest 800 mentions are reachable (see client.py for the documentation), so accounts
are polled every `config["poll_seconds"]` (default 60 s; 300 requests per 15 min per user).
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import time
from typing import Any

from madoguchi.connectors import health
from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.x.client import Tweet, User, XAPIError, XClient
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


def _claim(account: ChannelAccount, now: float, *, force: bool) -> bool:
    """Take the poll lease if the account is due, so two workers never poll it at once."""
    claimed = False

    def take(config: dict[str, Any]) -> None:
        nonlocal claimed
        state = config.setdefault("mentions", {})
        due = max(float(state.get("next_poll_at", 0)), float(state.get("wait_until", 0)))
        if float(state.get("lease_until", 0)) > now or (not force and due > now):
            return
        state["lease_until"] = now + LEASE_SECONDS
        claimed = True

    health.update_config(account, take)
    return claimed


def _save(account: ChannelAccount, **changes: Any) -> None:
    def apply(config: dict[str, Any]) -> None:
        state = config.setdefault("mentions", {})
        for key, value in changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value

    health.update_config(account, apply)


def _newer(a: str, b: str) -> str:
    """The larger of two tweet ids (ids are 64-bit integers that grow with time)."""
    if not a or not b:
        return a or b
    return a if int(a) >= int(b) else b


def do_poll_mentions(account: ChannelAccount, *, client: XClient | None = None, force: bool = False) -> dict[str, Any]:
    """Fetch and ingest new mentions of the account's user; returns what happened."""
    user_id = str((account.config or {}).get("user_id", ""))
    if not user_id:
        return {"skipped": "no user_id in config"}
    now = time.time()
    if not _claim(account, now, force=force):
        return {"skipped": "not due"}
    counts: dict[str, Any] = {"created": 0, "duplicate": 0, "pages": 0}
    own_client = client is None
    client = client or XClient(account)
    poll_seconds = float((account.config or {}).get("poll_seconds", POLL_SECONDS))
    try:
        for _ in range(MAX_PAGES_PER_POLL):
            state = dict((account.config or {}).get("mentions", {}))
            since_id, next_token = str(state.get("since_id", "")), str(state.get("next_token", ""))
            try:
                page, rate = client.mentions(user_id, since_id=since_id, pagination_token=next_token)
            except XAPIError as exc:
                counts["error"] = _poll_failed(account, exc)
                return counts
            counts["pages"] += 1
            users = {u.id: u for u in page.includes.users}
            for tweet in reversed(page.data):  # oldest first, so a thread builds in order
                if tweet.author_id == user_id:
                    continue  # our own replies come back in the timeline when they mention us
                try:
                    result = ingest.do_ingest(account, tweet_item(tweet, users.get(tweet.author_id)))
                except ValueError as exc:  # a post we cannot read must not block the cursor
                    ingest.do_quarantine(account, f"X post {tweet.id}: {exc}"[:5000], tweet.model_dump_json())
                    counts["quarantined"] = counts.get("quarantined", 0) + 1
                    continue
                counts["created" if result.created else "duplicate"] += 1
            pending = _newer(str(state.get("pending_newest", "")), page.meta.newest_id)
            # The very first poll takes the newest page only: history before connecting is not ours.
            more = bool(page.meta.next_token) and bool(since_id or next_token)
            if more:
                _save(account, next_token=page.meta.next_token, pending_newest=pending)
            else:
                _save(account, since_id=_newer(since_id, pending) or None, next_token=None, pending_newest=None)
            wait = rate.wait_seconds()
            if wait:
                _save(account, wait_until=time.time() + wait)
                counts["rate_limited_for"] = round(wait)
                break
            if not more:
                break
        health.do_record_channel_ok(account, received=True)
    finally:
        _save(account, lease_until=None, next_poll_at=time.time() + poll_seconds)
        if own_client:
            client.close()
    return counts


def _poll_failed(account: ChannelAccount, exc: XAPIError) -> str:
    """Record a failed poll: wait out a rate limit, disconnect on a refused token, else retry later."""
    if exc.status == 401:
        health.do_record_channel_error(account, f"X refused the token (401): {exc.detail}", disconnected=True)
        return "disconnected"
    if exc.status == 429:
        wait = exc.rate.wait_seconds() or 60.0
        _save(account, wait_until=time.time() + wait)
        health.do_record_channel_error(account, f"X rate limit reached; waiting {round(wait)} s")
        return "rate limited"
    health.do_record_channel_error(account, str(exc))
    return str(exc)
