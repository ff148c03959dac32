"""Instagram webhooks in: comments on the account's media, @mentions in other people's comments
and captions, and direct messages (text, images, story replies and mentions, reactions, reads,
unsent messages), kept durably then ingested.

Documentation (November 2026):
- Webhooks: https://developers.facebook.com/docs/instagram-platform/webhooks and the examples
  https://developers.facebook.com/docs/instagram-platform/webhooks/examples —
  `{"object": "instagram", "entry": [{"id": IG_USER_ID, "time", "changes": [{"field": "comments",
  "value": {"id", "from": {"id", "username"}, "text", "media": {"id", "media_product_type"},
  "parent_id"}}]}]}` (no per-comment time: `entry.time` is used); `mentions` values are
  `{"comment_id", "media_id"}` (or only `media_id` for a caption) and the text is fetched;
  direct messages arrive as `messaging` events shaped like Messenger's (see facebook/graph.py).
- Handshake and signature: the same as Facebook (facebook/graph.py).

Threading: comments form one conversation per commenter and media (`<media id>:<author id>`);
mentions one per mentioning comment's author and media; DMs one per person (`dm:<IGSID>`).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.connectors.facebook import graph
from madoguchi.connectors.facebook.graph import GraphError, Messaging
from madoguchi.connectors.instagram.client import InstagramClient
from madoguchi.connectors.models import ChannelAccount
from madoguchi.ingest import actions as ingest

logger = logging.getLogger(__name__)


def do_accept_delivery(account: ChannelAccount, body: bytes) -> int:
    """Keep a verified delivery durably (a queued task) and return how many entries it holds."""
    from madoguchi.connectors.instagram import tasks

    return graph.accept_delivery(account, body, "instagram", tasks.process_delivery.enqueue)


class Authors:
    """Builds authors with the public signals Instagram gives, asking each person once a delivery."""

    def __init__(self, account: ChannelAccount, client: InstagramClient | None):
        self.account, self.client = account, client
        self.ig_user_id = str((account.config or {}).get("ig_user_id", ""))
        self.cache: dict[str, InboundAuthor] = {}

    def _refused(self, exc: GraphError) -> None:
        if exc.code in graph.TOKEN_CODES:  # say so now, not at the next reply
            graph.failure(self.account, exc)

    def commenter(self, user_id: str, username: str) -> InboundAuthor:
        """A commenter: handle from the webhook; followers through business discovery when they
        have a professional account (a personal account's followers are not public to the API)."""
        key = f"c:{user_id}"
        if key in self.cache:
            return self.cache[key]
        author = InboundAuthor(external_id=user_id or "instagram-unknown", handle=username[:255])
        if self.client is not None and username and self.ig_user_id:
            try:
                found = self.client.business_profile(self.ig_user_id, username)
                author = InboundAuthor(
                    external_id=author.external_id,
                    handle=username[:255],
                    display_name=str(found.get("name", ""))[:255],
                    avatar_url=str(found.get("profile_picture_url", ""))[:1000],
                    followers=found.get("followers_count") if isinstance(found.get("followers_count"), int) else None,
                )
            except GraphError as exc:
                logger.debug("no business discovery for %s: %s", username, exc)
                self._refused(exc)
        self.cache[key] = author
        return author

    def messager(self, igsid: str) -> InboundAuthor:
        """Someone who wrote a DM: the messaging user profile (name, username, picture, followers)."""
        if igsid in self.cache:
            return self.cache[igsid]
        author = InboundAuthor(external_id=igsid or "instagram-unknown")
        if self.client is not None and igsid:
            try:
                p = self.client.profile(igsid)
                followers = p.get("follower_count")
                author = InboundAuthor(
                    external_id=igsid,
                    handle=str(p.get("username", ""))[:255],
                    display_name=str(p.get("name", ""))[:255],
                    avatar_url=str(p.get("profile_pic", ""))[:1000],
                    followers=followers if isinstance(followers, int) and followers >= 0 else None,
                )
            except GraphError as exc:
                logger.info("Instagram profile of %s unavailable: %s", igsid, exc)
                self._refused(exc)
        self.cache[igsid] = author
        return author


def _thread_reply(account: ChannelAccount, parent: str, root: str, thread: str) -> list[str]:
    reply_to = [parent] if parent and graph.thread_parent(account, parent, thread) else []
    return [*reply_to, root] if root else reply_to


def comment_change(account: ChannelAccount, entry: dict[str, Any], value: dict[str, Any], authors: Authors) -> Messaging:
    """A comment on the account's media (or a reply under one)."""
    comment_id = str(value.get("id", ""))
    if not comment_id:
        raise ValueError("Instagram comment without an id")
    person = value.get("from") or {}
    user_id = str(person.get("id", ""))
    if user_id and user_id == authors.ig_user_id:
        return Messaging()  # our own replies
    if graph.already_stored(account, comment_id):
        return Messaging(duplicate=True)
    media = value.get("media") or {}
    media_id = str(media.get("id", ""))
    thread = f"{media_id}:{user_id}"
    parent = str(value.get("parent_id", ""))
    return Messaging(
        item=InboundItem(
            external_id=comment_id,
            author=authors.commenter(user_id, str(person.get("username", ""))),
            text=str(value.get("text", "")) or "[comment]",
            created_at=graph.when(entry.get("time")),
            reply_to=_thread_reply(account, parent, media_id, thread),
            thread_id=thread,
            public=True,
            raw={**value, "reply_target": parent or comment_id},
        )
    )


def mention_change(account: ChannelAccount, entry: dict[str, Any], value: dict[str, Any], authors: Authors, client: InstagramClient | None) -> Messaging:
    """An @mention of the account in someone's comment or caption: the text is fetched."""
    comment_id, media_id = str(value.get("comment_id", "")), str(value.get("media_id", ""))
    external_id = comment_id or f"media:{media_id}"
    if not media_id:
        raise ValueError("Instagram mention without a media id")
    if graph.already_stored(account, external_id):
        return Messaging(duplicate=True)
    details: dict[str, Any] = {}
    if client is not None and authors.ig_user_id:
        try:
            details = client.mentioned_comment(authors.ig_user_id, comment_id) if comment_id else client.mentioned_media(authors.ig_user_id, media_id)
        except GraphError as exc:
            if exc.code in graph.TOKEN_CODES:
                authors._refused(exc)
            logger.info("Instagram mention %s could not be fetched: %s", external_id, exc)
    username = str(details.get("username", ""))
    person = details.get("from") or {}
    user_id = str(person.get("id") or (f"ig-user:{username}" if username else "instagram-unknown"))
    text = str(details.get("text") or details.get("caption") or "")
    media = details.get("media") or {}
    return Messaging(
        item=InboundItem(
            external_id=external_id,
            author=authors.commenter(user_id, username),
            text=text or "[mention: the text could not be fetched]",
            created_at=graph.when(entry.get("time")),
            thread_id=f"mention:{media_id}:{user_id}",
            public=True,
            url=str(details.get("permalink") or media.get("permalink") or ""),
            raw={**value, "mention": True, "details": details},
        )
    )


def process_delivery(account: ChannelAccount, body: str, *, client: InstagramClient | None = None) -> dict[str, int]:
    """Ingest every change and message of a verified delivery; what fails is quarantined."""
    try:
        entries = graph.parse_delivery(body, "instagram")
    except ValueError as exc:
        ingest.do_quarantine(account, f"Instagram webhook body: {exc}", body)
        return {"quarantined": 1}
    own_client = client is None
    client = client or InstagramClient(account)
    try:
        authors = Authors(account, client)
        own = authors.ig_user_id
        work: list[tuple[dict[str, Any], Callable[[], Messaging]]] = []
        for entry in entries:
            if own and str(entry.get("id", "")) != own:
                ingest.do_quarantine(account, f"Instagram webhook entry for account {entry.get('id')!r}, not this one", json.dumps(entry))
                continue
            for change in entry.get("changes") or []:
                if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                    continue
                if change.get("field") in {"comments", "live_comments"}:
                    work.append((change, functools.partial(comment_change, account, entry, change["value"], authors)))
                elif change.get("field") == "mentions":
                    work.append((change, functools.partial(mention_change, account, entry, change["value"], authors, client)))
            for event in entry.get("messaging") or []:
                if isinstance(event, dict):
                    work.append((event, functools.partial(graph.messaging_event, account, event, authors.messager, client, own_id=own or str(entry.get("id", "")))))
        return graph.ingest_all(account, work)
    finally:
        if own_client:
            client.close()
