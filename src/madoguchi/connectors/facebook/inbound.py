"""Facebook Page webhooks in: page feed (comments, replies, visitor posts, edits, removals,
reactions) and Messenger (messages, reactions, reads, edits), kept durably then ingested.

Documentation (November 2026):
- Page webhooks: https://developers.facebook.com/docs/pages-api/webhooks-for-pages and the `feed`
  field reference https://developers.facebook.com/docs/graph-api/webhooks/reference/page/#feed —
  `{"object": "page", "entry": [{"id": PAGE_ID, "time", "changes": [{"field": "feed", "value":
  {"item": "comment|status|post|photo|video|share|reaction|like", "verb": "add|edited|remove|hide|unhide",
  "post_id", "comment_id", "parent_id", "from": {"id", "name"}, "message", "created_time",
  "reaction_type"}}]}]}` (`created_time` in Unix seconds).
- Messenger events: see graph.py.

Threading: a post's comments form one conversation per commenter (thread `<post id>:<author id>`),
so two customers under the same post are two pieces of work; a reply threads to its parent only
when the parent is in that same conversation (for example the customer answering our reply).
Messenger conversations thread by the person (`dm:<PSID>`). The page's own comments and
Messenger echoes are our replies coming back and are skipped.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from madoguchi.connectors.base import EventKind, InboundAuthor, InboundEvent, InboundItem
from madoguchi.connectors.facebook import graph
from madoguchi.connectors.facebook.client import FacebookClient
from madoguchi.connectors.facebook.graph import GraphError, Messaging
from madoguchi.connectors.models import ChannelAccount
from madoguchi.ingest import actions as ingest

logger = logging.getLogger(__name__)

POST_ITEMS = {"status", "post", "photo", "video", "share"}


def do_accept_delivery(account: ChannelAccount, body: bytes) -> int:
    """Keep a verified delivery durably (a queued task) and return how many entries it holds."""
    from madoguchi.connectors.facebook import tasks

    return graph.accept_delivery(account, body, "page", tasks.process_delivery.enqueue)


def _seconds(value: Any) -> dt.datetime | None:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("+0000", "+00:00"))
        except ValueError:
            return None
    return graph.when(value)


def _from(value: dict[str, Any]) -> InboundAuthor:
    person = value.get("from") or {}
    return InboundAuthor(external_id=str(person.get("id") or "facebook-unknown"), display_name=str(person.get("name", ""))[:255])


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def feed_change(account: ChannelAccount, entry: dict[str, Any], value: dict[str, Any]) -> Messaging:
    """One `feed` change as an item, an event, or nothing (the page's own activity)."""
    page_id = str(entry.get("id", ""))
    item, verb = str(value.get("item", "")), str(value.get("verb", ""))
    author = _from(value)
    if author.external_id == page_id:
        return Messaging()  # our own posts, replies and reactions
    post_id = str(value.get("post_id", ""))
    changed_at = graph.when(entry.get("time")) or _seconds(value.get("created_time"))
    if item in {"reaction", "like"}:
        target = str(value.get("comment_id") or post_id)
        kind: EventKind = "unreaction" if verb == "remove" else "reaction"
        return Messaging(
            event=InboundEvent(
                external_id=f"reaction:{target}:{author.external_id}:{verb}:{_fingerprint(entry.get('time'), value.get('reaction_type'))}",
                kind=kind,
                author=author,
                target_external_id=target,
                emoji=str(value.get("reaction_type") or "like")[:64],
                created_at=changed_at,
                raw=value,
            )
        )
    if item == "comment":
        object_id = str(value.get("comment_id", ""))
    elif item in POST_ITEMS:
        object_id = post_id
    else:
        return Messaging()  # ratings, events, mentions of the page on other pages: not customer items
    if not object_id:
        raise ValueError(f"feed {item} change without an id")
    if verb == "edited":
        message = str(value.get("message", ""))
        return Messaging(
            event=InboundEvent(
                external_id=f"edit:{object_id}:{_fingerprint(entry.get('time'), message)}",
                kind="edit",
                author=author,
                target_external_id=object_id,
                text=message,
                created_at=changed_at,
                raw=value,
            )
        )
    if verb == "remove":
        return Messaging(event=InboundEvent(external_id=f"remove:{object_id}", kind="delete", author=author, target_external_id=object_id, created_at=changed_at, raw=value))
    if verb != "add":
        return Messaging()  # hide/unhide are moderation by the page itself
    if graph.already_stored(account, object_id):
        return Messaging(duplicate=True)
    thread = f"{post_id or object_id}:{author.external_id}"
    parent = str(value.get("parent_id", ""))
    reply_to: list[str] = []
    if item == "comment":
        if parent and parent != post_id and graph.thread_parent(account, parent, thread):
            reply_to.append(parent)
        if post_id:
            reply_to.append(post_id)
        # Facebook threads comments one level deep: a reply to a reply goes under the top comment.
        reply_target = parent if parent and parent != post_id else object_id
    else:
        reply_target = object_id
    text = str(value.get("message", ""))
    media = [str(value[k]) for k in ("photo", "video", "link") if value.get(k)]
    if media:
        text = "\n".join([text, *(f"[{item if item in {'photo', 'video'} else 'link'}] {m}" for m in media)]).strip()
    return Messaging(
        item=InboundItem(
            external_id=object_id,
            author=author,
            text=text or f"[{item}]",
            created_at=_seconds(value.get("created_time")) or changed_at,
            reply_to=reply_to,
            thread_id=thread,
            public=True,
            url=f"https://www.facebook.com/{object_id}",
            raw={**value, "reply_target": reply_target, "page_id": page_id},
        )
    )


def _author_from_profile(client: FacebookClient | None, cache: dict[str, InboundAuthor], account: ChannelAccount) -> Callable[[str], InboundAuthor]:
    def author(psid: str) -> InboundAuthor:
        if psid in cache:
            return cache[psid]
        found = InboundAuthor(external_id=psid or "facebook-unknown")
        if client is not None and psid:
            try:
                profile = client.profile(psid)
                name = str(profile.get("name") or " ".join(p for p in (profile.get("first_name"), profile.get("last_name")) if p))
                found = InboundAuthor(external_id=psid, display_name=name[:255], avatar_url=str(profile.get("profile_pic", ""))[:1000])
            except GraphError as exc:
                # The person may not allow profile access; the message still counts.
                logger.info("Messenger profile of %s unavailable: %s", psid, exc)
                if exc.code in graph.TOKEN_CODES:  # say so now, not at the next reply
                    graph.failure(account, exc)
        cache[psid] = found
        return found

    return author


def process_delivery(account: ChannelAccount, body: str, *, client: FacebookClient | None = None) -> dict[str, int]:
    """Ingest every change and message of a verified delivery; what fails is quarantined."""
    try:
        entries = graph.parse_delivery(body, "page")
    except ValueError as exc:
        ingest.do_quarantine(account, f"Facebook webhook body: {exc}", body)
        return {"quarantined": 1}
    page_id = str((account.config or {}).get("page_id", ""))
    own_client = client is None
    client = client or FacebookClient(account)
    try:
        author = _author_from_profile(client, {}, account)
        work: list[tuple[dict[str, Any], Callable[[], Messaging]]] = []
        for entry in entries:
            if page_id and str(entry.get("id", "")) != page_id:
                ingest.do_quarantine(account, f"Facebook webhook entry for page {entry.get('id')!r}, not this account's page", json.dumps(entry))
                continue
            for change in entry.get("changes") or []:
                if isinstance(change, dict) and change.get("field") == "feed" and isinstance(change.get("value"), dict):
                    work.append((change, functools.partial(feed_change, account, entry, change["value"])))
            for event in entry.get("messaging") or []:
                if isinstance(event, dict):
                    own = page_id or str(entry.get("id", ""))
                    work.append((event, functools.partial(graph.messaging_event, account, event, author, client, own_id=own)))
        return graph.ingest_all(account, work)
    finally:
        if own_client:
            client.close()
