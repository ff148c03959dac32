"""LINE replies out: the free reply token while it is valid, otherwise a (billed) push.

Documentation (November 2026):
- Reply: https://developers.line.biz/en/reference/messaging-api/#send-reply-message — a reply
  token is single-use and "must be used within one minute after receiving the webhook; use after
  one minute isn't guaranteed". An expired or used token gets 400 `{"message": "Invalid reply token"}`.
- Push: https://developers.line.biz/en/reference/messaging-api/#send-push-message — counts towards
  the monthly message quota (billed); `X-Line-Retry-Key` makes a retry safe: a duplicate of an
  accepted request gets 409 with `x-line-accepted-request-id`
  (https://developers.line.biz/en/docs/messaging-api/retrying-api-request/).
- Status codes: https://developers.line.biz/en/reference/messaging-api/#status-codes (401 bad
  token, 403 not allowed, 429 rate or monthly limit, 5xx).
- Text messages hold at most 5,000 characters:
  https://developers.line.biz/en/reference/messaging-api/#text-message
- Retries never send twice. A push carries `X-Line-Retry-Key` = uuid5 of the outbox
  idempotency key, so a retry LINE already accepted gets 409, which is success. The reply
  endpoint takes no retry key, but its token is single-use and only ours: when a reply's outcome
  is unknown (the response timed out or the connection dropped after sending), the outbox key is
  kept in `config["line_replying"]`, and on the retry an "Invalid reply token" (or a token that
  has since expired) means our first request spent it, so the message counts as sent instead of
  being pushed a second time.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from django.utils import timezone

from madoguchi.connectors import health
from madoguchi.connectors.base import (
    OutboundMessage,
    PermanentError,
    SendResult,
    TemporaryError,
    register,
)
from madoguchi.connectors.line.client import LineAPIError, LineClient, SendResponse
from madoguchi.connectors.models import ChannelAccount

if TYPE_CHECKING:
    from madoguchi.inbox.models import Conversation

logger = logging.getLogger(__name__)

MAX_TEXT = 5000
# The documented window is one minute from the webhook; keep a margin for the queue and the network.
REPLY_TOKEN_SECONDS = 50
RETRY_KEY_NAMESPACE = uuid.UUID("6f1d3c52-7d0b-4c55-9a44-3c1f1b0c6a11")


def _token_is_fresh(raw: dict, now: dt.datetime) -> bool:
    token, timestamp = raw.get("replyToken"), raw.get("timestamp")
    if not token or not isinstance(timestamp, int | float) or raw.get("mode", "active") != "active":
        return False
    received = dt.datetime.fromtimestamp(timestamp / 1000, tz=dt.UTC)
    return now - received < dt.timedelta(seconds=REPLY_TOKEN_SECONDS)


def reply_mode(conversation: Conversation) -> Literal["reply", "push"] | None:
    """What an agent's reply on this LINE conversation would use now: "reply" (free), "push"
    (billed), or None when the conversation is not on LINE. For the composer to show."""
    from madoguchi.inbox.models import Direction, Message

    if conversation.channel_account.kind != "line":
        return None
    last = (
        Message.objects.filter(conversation=conversation)
        .exclude(direction=Direction.NOTE)
        .order_by("-id")
        .only("direction", "raw")
        .first()
    )
    if last is None or last.direction != Direction.INBOUND:
        return "push"  # the token of the last customer message is spent (or there is none)
    return "reply" if _token_is_fresh(last.raw or {}, timezone.now()) else "push"


def _reply_token(account: ChannelAccount, in_reply_to: str) -> str:
    from madoguchi.inbox.models import Message

    if not in_reply_to:
        return ""
    message = Message.objects.filter(channel_account=account, external_id=in_reply_to).only("raw").first()
    raw = (message.raw if message else None) or {}
    return str(raw["replyToken"]) if _token_is_fresh(raw, timezone.now()) else ""


def _failure(account: ChannelAccount, exc: LineAPIError) -> Exception:
    """The outbox's view of a LINE error: retry later, or fail the message with a clear reason."""
    if exc.status == 401:
        reason = f"LINE refused the channel access token (401): {exc.message}"
        health.do_record_channel_error(account, reason, disconnected=True)
        return PermanentError(reason)
    health.do_record_channel_error(account, str(exc))
    if exc.status == 429:
        # No Retry-After on LINE. The per-second limit passes quickly; the monthly quota does not.
        monthly = "monthly" in exc.message.lower()
        return TemporaryError(str(exc), retry_after=3600 if monthly else 30)
    if exc.status == 0 or exc.status >= 500:
        return TemporaryError(str(exc))
    return PermanentError(str(exc))


def _external_id(response: SendResponse, fallback: str) -> str:
    return response.sentMessages[0].id if response.sentMessages else fallback


def _replying(account: ChannelAccount) -> dict[str, Any]:
    return dict((account.config or {}).get("line_replying") or {})


def _mark_replying(account: ChannelAccount, key: str) -> None:
    now = time.time()

    def mark(config: dict[str, Any]) -> None:
        # A reply token lives a minute: older marks can no longer matter.
        kept = {k: v for k, v in (config.get("line_replying") or {}).items() if now - float(v) < 86400}
        kept[key] = now
        config["line_replying"] = kept

    health.update_config(account, mark)


def _clear_replying(account: ChannelAccount, key: str) -> None:
    if key in _replying(account):
        health.update_config(account, lambda config: (config.get("line_replying") or {}).pop(key, None))


class LineAdapter:
    def composer_hints(self, conversation: Conversation) -> dict[str, Any]:
        """Whether the agent's reply will be a free reply or a billed push."""
        return {"line_mode": reply_mode(conversation)}

    kind: ClassVar[str] = "line"

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        text = message.text.strip()
        if not text:
            raise PermanentError("LINE: only text replies are supported; this message has no text")
        if len(text) > MAX_TEXT:
            raise PermanentError(f"LINE text messages hold at most {MAX_TEXT} characters")
        to = message.thread_id or message.recipient  # a group or room chat, else the user
        if not to:
            raise PermanentError("LINE: no recipient for this conversation")
        messages = [{"type": "text", "text": text}]
        key = message.idempotency_key
        with LineClient(account) as client:
            token = _reply_token(account, message.in_reply_to)
            unsure = key in _replying(account)  # an earlier reply may have gone out unheard
            if unsure and not token:
                _clear_replying(account, key)
                logger.info("LINE reply %s: the earlier try spent the token; counted as sent", key)
                health.do_record_channel_ok(account, sent=True)
                return SendResult(f"line-reply-{key}")
            if token:
                _mark_replying(account, key)
                try:
                    response = client.reply(token, messages)
                except LineAPIError as exc:
                    spent = exc.status == 400 and "reply token" in exc.message.lower()
                    if not exc.timed_out:
                        _clear_replying(account, key)
                    if spent and unsure:
                        health.do_record_channel_ok(account, sent=True)
                        return SendResult(f"line-reply-{key}")
                    if not spent:
                        raise _failure(account, exc) from exc
                    logger.info("LINE reply token no longer valid, pushing instead")
                else:
                    _clear_replying(account, key)
                    health.do_record_channel_ok(account, sent=True)
                    return SendResult(_external_id(response, f"line-reply-{key}"))
            retry_key = uuid.uuid5(RETRY_KEY_NAMESPACE, message.idempotency_key)
            try:
                response = client.push(to, messages, retry_key)
            except LineAPIError as exc:
                if exc.status == 409:
                    # A retry of a push LINE already accepted: it was delivered once, which is the goal.
                    accepted = exc.headers.get("x-line-accepted-request-id", str(retry_key))
                    health.do_record_channel_ok(account, sent=True)
                    return SendResult(f"line-push-{accepted}")
                raise _failure(account, exc) from exc
        health.do_record_channel_ok(account, sent=True)
        return SendResult(_external_id(response, f"line-push-{retry_key}"))

    def max_length(self, account: ChannelAccount) -> int | None:
        return MAX_TEXT


adapter = register(LineAdapter())
