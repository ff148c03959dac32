"""LINE webhooks in: verify the signature, keep the delivery, turn each event into an item.

Documentation (November 2026):
- Signature: https://developers.line.biz/en/docs/messaging-api/verify-webhook-signature/
  (`x-line-signature` = base64 of HMAC-SHA256 over the raw body, keyed with the channel secret)
- Events: https://developers.line.biz/en/reference/messaging-api/#webhook-event-objects
  (`webhookEventId` is a ULID that stays the same on redelivery; `deliveryContext.isRedelivery`)
- Receiving, the verification request with an empty `events` list, redelivery:
  https://developers.line.biz/en/docs/messaging-api/receiving-messages/
- The LINE Platform keeps no history for bots: an event we do not store is gone, so every event
  kind is kept: messages, postbacks, joins… in the customer's conversation with the raw event;
  follow, unfollow (block) and unsend as events (InboundEvent → do_ingest_event) on the customer
  and on the unsent message, so they never open a conversation of their own. LINE documents no
  reaction events for bots (https://developers.line.biz/en/reference/messaging-api/#webhook-event-objects).
- Deliveries are stored (a queued task row) before the 200; a delivery whose task failed or
  whose worker died is queued again by `tasks.requeue_deliveries`, and ingest being idempotent
  makes running a delivery twice harmless. A database error stops the delivery (to be retried);
  an event we cannot read is quarantined and the others go on.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from madoguchi.connectors import health
from madoguchi.connectors.base import InboundAttachment, InboundAuthor, InboundEvent, InboundItem
from madoguchi.connectors.line.client import LineAPIError, LineClient, Profile
from madoguchi.connectors.models import ChannelAccount
from madoguchi.ingest import actions as ingest

logger = logging.getLogger(__name__)

# Message types whose bytes live on the content endpoint (unless contentProvider is external).
CONTENT_TYPES = {"image", "video", "audio", "file"}
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "video/mp4": ".mp4", "audio/x-m4a": ".m4a", "audio/mp4": ".m4a"}

EVENT_TEXT = {
    "postback": "[postback]",
}
# Event types kept as InboundEvents rather than conversation items.
EVENT_KINDS = {"follow": "follow", "unfollow": "unfollow", "unsend": "delete"}


class Source(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    userId: str = ""  # noqa: N815 (the platform's field names)
    groupId: str = ""  # noqa: N815
    roomId: str = ""  # noqa: N815


class Event(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    mode: str = "active"
    timestamp: int
    webhookEventId: str = ""  # noqa: N815
    deliveryContext: dict[str, Any] = Field(default_factory=dict)  # noqa: N815
    source: Source | None = None
    replyToken: str = ""  # noqa: N815
    message: dict[str, Any] | None = None


class Delivery(BaseModel):
    model_config = ConfigDict(extra="allow")

    destination: str = ""
    events: list[dict[str, Any]]


def check_signature(channel_secret: str, body: bytes, signature: str) -> bool:
    """True if `signature` is the platform's signature of exactly these bytes."""
    if not channel_secret or not signature:
        return False
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest), signature.strip().encode())


def parse_delivery(body: bytes | str) -> Delivery:
    """The webhook envelope; raises ValueError on anything that is not one."""
    try:
        return Delivery.model_validate_json(body)
    except ValidationError as exc:
        raise ValueError(str(exc)) from exc


def do_accept_delivery(account: ChannelAccount, body: bytes) -> int:
    """Keep a verified delivery durably (a queued task row) and return how many events it holds.

    A body that was signed by LINE but is not a valid envelope is quarantined, not refused:
    refusing would only make LINE redeliver the same bytes.
    """
    from madoguchi.connectors.line import tasks

    try:
        delivery = parse_delivery(body)
    except ValueError as exc:
        ingest.do_quarantine(account, f"LINE webhook body is not a valid delivery: {exc}"[:5000], body)
        return 0
    if not delivery.events:
        # The console's "Verify" button sends an empty list: the endpoint answers, nothing to store.
        health.do_record_channel_ok(account, received=True, reconnect=False)
        return 0
    tasks.process_delivery.enqueue(account.pk, body.decode("utf-8", errors="replace"))
    return len(delivery.events)


def _identity(account: ChannelAccount, client: LineClient | None, source: Source | None) -> InboundAuthor:
    if source is None:
        return InboundAuthor(external_id="line-unknown")
    user_id = source.userId or source.groupId or source.roomId or "line-unknown"
    profile: Profile | None = None
    if client is not None and source.userId:
        try:
            profile = client.profile(source.userId, group_id=source.groupId, room_id=source.roomId)
        except LineAPIError as exc:
            # 404: the user has not added the bot as a friend (or blocked it); the message still counts.
            logger.info("LINE profile of %s unavailable: %s", source.userId, exc)
            if exc.status == 401:  # the token expired: say so now, not at the next reply
                health.do_record_channel_error(
                    account, f"LINE refused the channel access token (401): {exc.message}", disconnected=True
                )
    if profile is None:
        return InboundAuthor(external_id=user_id)
    return InboundAuthor(
        external_id=user_id,
        display_name=profile.displayName[:255],
        avatar_url=profile.pictureUrl[:1000],
        language=profile.language[:16],
    )


def _fetch_content(client: LineClient | None, message: dict[str, Any]) -> tuple[list[InboundAttachment], str]:
    """The attachment of a media message, or a note saying why it is not there."""
    message_id = str(message.get("id", ""))
    provider = message.get("contentProvider") or {}
    if provider.get("type") == "external":
        # The sender's own server holds it; we do not fetch arbitrary URLs, we keep the link.
        return [], str(provider.get("originalContentUrl", ""))
    if client is None:
        return [], "content not fetched"
    try:
        content, content_type = client.content(message_id, settings.ATTACHMENT_MAX_BYTES)
    except LineAPIError as exc:
        return [], f"content not fetched: {exc}"
    name = str(message.get("fileName") or f"line-{message_id}{EXTENSIONS.get(content_type, '')}")
    return [InboundAttachment(filename=name[:255], content_type=content_type, content=content)], ""


def event_external_id(event: Event) -> str:
    return f"event:{event.webhookEventId or event.timestamp}"


def inbound_event(account: ChannelAccount, event: Event, raw: dict[str, Any], client: LineClient | None) -> InboundEvent:
    """A follow, unfollow (the user blocked the account) or unsend as an event."""
    kind = EVENT_KINDS[event.type]
    # Blocked accounts cannot read the profile; an unsend needs no profile either.
    author = _identity(account, client if event.type == "follow" else None, event.source)
    target = str((raw.get("unsend") or {}).get("messageId", "")) if event.type == "unsend" else ""
    return InboundEvent(
        external_id=event_external_id(event),
        kind=kind,  # type: ignore[arg-type]
        author=author,
        target_external_id=target,
        created_at=dt.datetime.fromtimestamp(event.timestamp / 1000, tz=dt.UTC),
        raw=raw,
    )


def event_item(account: ChannelAccount, event: Event, raw: dict[str, Any], client: LineClient | None) -> InboundItem:
    """One webhook event as a normalized item (profile and media fetched through `client`)."""
    source = event.source
    author = _identity(account, client, source)
    created_at = dt.datetime.fromtimestamp(event.timestamp / 1000, tz=dt.UTC)
    # Group and room chats are one conversation each; a 1:1 chat threads by the contact.
    thread_id = (source.groupId or source.roomId) if source else ""
    common: dict[str, Any] = {"author": author, "created_at": created_at, "thread_id": thread_id, "raw": raw}
    if event.type != "message" or event.message is None:
        # postback, join, leave, beacon…: kept in the customer's conversation (not as stream
        # posts, which listening may drop), so agents see them.
        text = EVENT_TEXT.get(event.type, f"[{event.type}]")
        if event.type == "postback":
            text = f"{text} {raw.get('postback', {}).get('data', '')}"[:1000]
        return InboundItem(external_id=event_external_id(event), text=text, **common)
    message = event.message
    kind = str(message.get("type", ""))
    attachments: list[InboundAttachment] = []
    if kind == "text":
        text = str(message.get("text", ""))
    elif kind == "sticker":
        keywords = [str(k) for k in (message.get("keywords") or [])[:5]]
        text = "[sticker]" + (f" {', '.join(keywords)}" if keywords else "")
        text += f" ({message.get('packageId', '')}/{message.get('stickerId', '')})"
    elif kind in CONTENT_TYPES:
        attachments, note = _fetch_content(client, message)
        text = f"[{kind}]" + (f" {note}" if note else "")
    elif kind == "location":
        text = "[location] " + " ".join(
            str(message.get(k, "")) for k in ("title", "address") if message.get(k)
        ) + f" ({message.get('latitude')}, {message.get('longitude')})"
    else:
        text = f"[{kind or 'message'}]"
    return InboundItem(
        external_id=str(message.get("id") or f"event:{event.webhookEventId}"),
        text=text,
        attachments=attachments,
        **common,
    )


def process_delivery(account: ChannelAccount, body: str, *, client: LineClient | None = None) -> dict[str, int]:
    """Ingest every event of a verified delivery; an event that cannot be ingested is quarantined."""
    delivery = parse_delivery(body)
    counts = {"created": 0, "duplicate": 0, "quarantined": 0, "events": 0}
    own_client = client is None
    client = client or LineClient(account)
    try:
        for raw in delivery.events:
            try:
                event = Event.model_validate(raw)
                if event.type in EVENT_KINDS:
                    ingest.do_ingest_event(account, inbound_event(account, event, raw, client))
                    counts["events"] += 1
                    continue
                if _already_stored(account, event):
                    counts["duplicate"] += 1
                    continue
                result = ingest.do_ingest(account, event_item(account, event, raw, client))
            except DatabaseError:
                raise  # the database failed, not the event: the whole delivery is retried
            except Exception as exc:  # one bad event must not lose the others
                logger.exception("LINE event could not be ingested")
                ingest.do_quarantine(account, f"LINE event: {type(exc).__name__}: {exc}"[:5000], json.dumps(raw))
                counts["quarantined"] += 1
                continue
            if result.quarantine is not None:
                counts["quarantined"] += 1
            else:
                counts["created" if result.created else "duplicate"] += 1
    finally:
        if own_client:
            client.close()
    health.do_record_channel_ok(account, received=True, reconnect=False)
    return counts


def _already_stored(account: ChannelAccount, event: Event) -> bool:
    """A redelivered event (same message id or webhookEventId) is skipped before any fetch."""
    from madoguchi.inbox.models import Message
    from madoguchi.ingest.models import Post

    if event.type == "message" and event.message:
        external_id = str(event.message.get("id", ""))
    else:
        external_id = event_external_id(event)
    return (
        Message.objects.filter(channel_account=account, external_id=external_id).exists()
        or Post.objects.filter(channel_account=account, external_id=external_id).exists()
    )
