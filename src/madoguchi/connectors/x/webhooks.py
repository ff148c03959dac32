"""X Account Activity webhooks: the CRC handshake, the signature, and v1.1-shaped events.

Documentation (November 2026):
- https://docs.x.com/x-api/enterprise-gnip-2.0/fundamentals/account-activity — CRC: a GET with
  `crc_token` must answer `{"response_token": "sha256=" + base64(HMAC-SHA256(consumer secret,
  crc_token))}`; every POST carries `x-twitter-webhooks-signature: sha256=` + base64 of
  HMAC-SHA256(consumer secret, raw body). Payloads are v1.1-shaped: `for_user_id`,
  `tweet_create_events` (v1.1 tweets with `user`), `direct_message_events`
  (`message_create.sender_id`, `message_create.message_data.text`) with `users` by id.
- Items get the same external ids as the polled v2 ones (tweet id, `dm:` + event id), and a DM's
  thread is the v2 `dm_conversation_id` (the two user ids, smaller first), so a webhook and a
  poll of the same item store it once, in the same conversation.
- Other activity (same page): `tweet_create_events` of an edited post carry `edit_history
  {initial_tweet_id, edit_tweet_ids}`; `tweet_delete_events [{status: {id, user_id},
  timestamp_ms}]`; `favorite_events [{id, created_at, timestamp_ms, favorited_status, user}]`;
  `follow_events [{type: follow|unfollow, created_timestamp, source, target}]`;
  `direct_message_mark_read_events [{created_timestamp, sender_id (the reader), target,
  last_read_event_id}]`; `direct_message_indicate_typing_events` (ignored: nothing to keep).
  They become InboundEvents (edit, delete, reaction "like", follow/unfollow, read) for
  do_ingest_event; what our own account did (our likes, follows, reads) is not kept.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from madoguchi.connectors import health
from madoguchi.connectors.base import InboundEvent, InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.x.client import DMEvent, PublicMetrics, Reference, Tweet, User
from madoguchi.connectors.x.inbound import (
    author_of,
    dm_item,
    edit_event,
    edit_target,
    ingest_built,
    tweet_item,
)
from madoguchi.ingest import actions as ingest


def _digest(secret: str, data: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def crc_response(consumer_secret: str, crc_token: str) -> dict[str, str]:
    return {"response_token": _digest(consumer_secret, crc_token.encode())}


def check_signature(consumer_secret: str, body: bytes, signature: str) -> bool:
    if not consumer_secret or not signature:
        return False
    return hmac.compare_digest(_digest(consumer_secret, body).encode(), signature.strip().encode())


def _user(data: dict[str, Any]) -> User:
    return User(
        id=str(data.get("id_str") or data.get("id") or "unknown"),
        username=str(data.get("screen_name", "")),
        name=str(data.get("name", "")),
        profile_image_url=str(data.get("profile_image_url_https") or data.get("profile_image_url") or ""),
        verified=bool(data.get("verified", False)),
        public_metrics=PublicMetrics(followers_count=data.get("followers_count")),
    )


def _v1_time(value: str) -> str:
    """v1.1's "Wed Oct 10 20:19:24 +0000 2018" as ISO 8601."""
    if not value:
        return ""
    return dt.datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y").isoformat()


def _v1_tweet(data: dict[str, Any]) -> Tweet:
    text = (data.get("extended_tweet") or {}).get("full_text") or data.get("full_text") or data.get("text") or ""
    parent = str(data.get("in_reply_to_status_id_str") or "")
    history = (data.get("edit_history") or {}).get("edit_tweet_ids") or []
    return Tweet(
        id=str(data.get("id_str") or data["id"]),
        text=text,
        author_id=str((data.get("user") or {}).get("id_str", "")),
        created_at=_v1_time(str(data.get("created_at", ""))),
        lang=str(data.get("lang") or ""),
        referenced_tweets=[Reference(type="replied_to", id=parent)] if parent else [],
        edit_history_tweet_ids=[str(i) for i in history],
    )


def v1_tweet_item(data: dict[str, Any]) -> InboundItem:
    return tweet_item(_v1_tweet(data), _user(data.get("user") or {}))


def v1_tweet_or_edit(account: ChannelAccount, data: dict[str, Any]) -> InboundItem | InboundEvent:
    """A post, or an edit of a post we hold (the edit history names the earlier versions)."""
    tweet = _v1_tweet(data)
    target = edit_target(account, tweet)
    if target:
        return edit_event(tweet, _user(data.get("user") or {}), target)
    return tweet_item(tweet, _user(data.get("user") or {}))


def _millis(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(value) / 1000, tz=dt.UTC)
    except (TypeError, ValueError):
        return None


def v1_other_events(payload: dict[str, Any], own_id: str) -> list[tuple[dict[str, Any], Any]]:
    """Deletions, likes, follows and read marks of a delivery, as (raw, build event) pairs."""
    users = payload.get("users") or {}
    entries: list[tuple[dict[str, Any], Any]] = []
    for raw in payload.get("tweet_delete_events") or []:
        status = raw.get("status") or {}
        if str(status.get("user_id", "")) == own_id:
            continue  # our own post was deleted; the outbox knows its own messages

        def delete(raw: dict[str, Any] = raw, status: dict[str, Any] = status) -> InboundEvent:
            return InboundEvent(
                external_id=f"delete:{status['id']}",
                kind="delete",
                author=author_of(_user({"id_str": str(status.get("user_id") or "unknown")})),
                target_external_id=str(status["id"]),
                created_at=_millis(raw.get("timestamp_ms")),
                raw=raw,
            )

        entries.append((raw, delete))
    for raw in payload.get("favorite_events") or []:
        user = raw.get("user") or {}
        if str(user.get("id_str", "")) == own_id:
            continue  # our own likes

        def like(raw: dict[str, Any] = raw, user: dict[str, Any] = user) -> InboundEvent:
            liked = raw.get("favorited_status") or {}
            return InboundEvent(
                external_id=f"like:{raw['id']}",
                kind="reaction",
                emoji="like",
                author=author_of(_user(user)),
                target_external_id=str(liked.get("id_str") or liked.get("id") or ""),
                created_at=_millis(raw.get("timestamp_ms")),
                raw=raw,
            )

        entries.append((raw, like))
    for raw in payload.get("follow_events") or []:
        source = raw.get("source") or {}
        if str(source.get("id_str", "")) == own_id or raw.get("type") not in {"follow", "unfollow"}:
            continue  # whom our account follows is not a customer event

        def follow(raw: dict[str, Any] = raw, source: dict[str, Any] = source) -> InboundEvent:
            kind = str(raw["type"])
            return InboundEvent(
                external_id=f"{kind}:{source.get('id_str')}:{raw.get('created_timestamp')}",
                kind=kind,  # type: ignore[arg-type]
                author=author_of(_user(source)),
                created_at=_millis(raw.get("created_timestamp")),
                raw=raw,
            )

        entries.append((raw, follow))
    for raw in payload.get("direct_message_mark_read_events") or []:
        reader = str(raw.get("sender_id", ""))
        if reader == own_id:
            continue  # an agent read the customer's message on X itself

        def read(raw: dict[str, Any] = raw, reader: str = reader) -> InboundEvent:
            last = str(raw["last_read_event_id"])
            return InboundEvent(
                external_id=f"read:{reader}:{last}",
                kind="read",
                author=author_of(_user(users[reader]) if reader in users else _user({"id_str": reader})),
                target_external_id=f"dm:{last}",
                created_at=_millis(raw.get("created_timestamp")),
                raw=raw,
            )

        entries.append((raw, read))
    return entries


def v1_dm_item(event: dict[str, Any], users: dict[str, Any]) -> InboundItem:
    create = event.get("message_create") or {}
    sender = str(create.get("sender_id", ""))
    recipient = str((create.get("target") or {}).get("recipient_id", ""))
    pair = sorted([p for p in (sender, recipient) if p], key=int)
    millis = int(event.get("created_timestamp") or 0)
    dm = DMEvent(
        id=str(event["id"]),
        text=str((create.get("message_data") or {}).get("text", "")),
        sender_id=sender,
        dm_conversation_id="-".join(pair),
        created_at=dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC).isoformat() if millis else "",
    )
    return dm_item(dm, _user(users[sender]) if sender in users else None)


def do_receive_activity(account: ChannelAccount, body: bytes) -> dict[str, int]:
    """Ingest the mentions, DMs and other activity of one verified delivery; anything unreadable
    is quarantined."""
    counts = {"created": 0, "duplicate": 0, "quarantined": 0, "event": 0}
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        ingest.do_quarantine(account, f"X activity body is not valid JSON: {exc}", body)
        counts["quarantined"] += 1
        return counts
    own_id = str((account.config or {}).get("user_id", ""))
    users = payload.get("users") or {}
    entries: list[tuple[dict[str, Any], Any]] = []
    for tweet in payload.get("tweet_create_events") or []:
        if str((tweet.get("user") or {}).get("id_str", "")) != own_id:  # not our own posts
            entries.append((tweet, lambda t=tweet: v1_tweet_or_edit(account, t)))
    for event in payload.get("direct_message_events") or []:
        sender = str((event.get("message_create") or {}).get("sender_id", ""))
        if event.get("type") == "message_create" and sender != own_id:
            entries.append((event, lambda e=event: v1_dm_item(e, users)))
    entries += v1_other_events(payload, own_id)
    for raw, build in entries:
        try:
            outcome = ingest_built(account, build())
        except (ValueError, KeyError, TypeError) as exc:
            ingest.do_quarantine(account, f"X activity event: {type(exc).__name__}: {exc}"[:5000], json.dumps(raw))
            outcome = "quarantined"
        counts[outcome] = counts.get(outcome, 0) + 1
    health.do_record_channel_ok(account, received=True, reconnect=False)
    return counts
