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
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from madoguchi.connectors import health
from madoguchi.connectors.base import InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.x.client import DMEvent, PublicMetrics, Reference, Tweet, User
from madoguchi.connectors.x.inbound import dm_item, tweet_item
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


def v1_tweet_item(data: dict[str, Any]) -> InboundItem:
    text = (data.get("extended_tweet") or {}).get("full_text") or data.get("full_text") or data.get("text") or ""
    parent = str(data.get("in_reply_to_status_id_str") or "")
    tweet = Tweet(
        id=str(data.get("id_str") or data["id"]),
        text=text,
        author_id=str((data.get("user") or {}).get("id_str", "")),
        created_at=_v1_time(str(data.get("created_at", ""))),
        lang=str(data.get("lang") or ""),
        referenced_tweets=[Reference(type="replied_to", id=parent)] if parent else [],
    )
    return tweet_item(tweet, _user(data.get("user") or {}))


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
    """Ingest the mentions and DMs of one verified delivery; anything unreadable is quarantined."""
    counts = {"created": 0, "duplicate": 0, "quarantined": 0}
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
            entries.append((tweet, lambda t=tweet: v1_tweet_item(t)))
    for event in payload.get("direct_message_events") or []:
        sender = str((event.get("message_create") or {}).get("sender_id", ""))
        if event.get("type") == "message_create" and sender != own_id:
            entries.append((event, lambda e=event: v1_dm_item(e, users)))
    for raw, build in entries:
        try:
            result = ingest.do_ingest(account, build())
        except (ValueError, KeyError, TypeError) as exc:
            ingest.do_quarantine(account, f"X activity event: {type(exc).__name__}: {exc}"[:5000], json.dumps(raw))
            counts["quarantined"] += 1
            continue
        counts["created" if result.created else "duplicate"] += 1
    health.do_record_channel_ok(account, received=True, reconnect=False)
    return counts
