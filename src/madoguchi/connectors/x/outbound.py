"""X replies out: public replies threaded with `reply.in_reply_to_tweet_id`, private ones as DMs.

Documentation (November 2026), see client.py for the endpoints:
- Post length: https://docs.x.com/resources/fundamentals/counting-characters — 280 weighted
  characters: most Latin, Greek, Cyrillic and punctuation count 1, everything else (Japanese,
  Chinese, Korean, emoji) counts 2, and every URL counts 23 (t.co).
- 403 problems on create: "You are not allowed to create a Tweet with duplicate content." and
  "You attempted to reply to a Tweet that is deleted or not visible to you." never succeed on retry.
- Rate limits: a used-up window (`x-rate-limit-remaining: 0`) is remembered in
  `config["rate_limits"]`, and the outbox waits until `x-rate-limit-reset` instead of calling.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, ClassVar

from madoguchi.connectors import health
from madoguchi.connectors.base import (
    OutboundMessage,
    PermanentError,
    SendResult,
    TemporaryError,
    register,
)
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.x.client import RateLimit, XAPIError, XClient

MAX_WEIGHTED = 280
URL_LENGTH = 23
URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)
# twitter-text v3: code points in these ranges weigh 1, all others 2.
LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))


def weighted_length(text: str) -> int:
    """The length X counts against the 280 limit."""
    text = unicodedata.normalize("NFC", text)
    urls = URL.findall(text)
    rest = URL.sub("", text)
    weight = sum(1 if any(lo <= ord(ch) <= hi for lo, hi in LIGHT_RANGES) else 2 for ch in rest)
    return weight + URL_LENGTH * len(urls)


def _remember_rate(account: ChannelAccount, endpoint: str, rate: RateLimit) -> None:
    limits = (account.config or {}).get("rate_limits", {})
    if rate.wait_seconds() > 0:
        def keep(config: dict[str, Any]) -> None:
            config.setdefault("rate_limits", {})[endpoint] = {"remaining": rate.remaining, "reset": rate.reset}

        health.update_config(account, keep)
    elif endpoint in limits:
        health.update_config(account, lambda config: config.get("rate_limits", {}).pop(endpoint, None))


def _known_wait(account: ChannelAccount, endpoint: str) -> float:
    known = (account.config or {}).get("rate_limits", {}).get(endpoint)
    if not known:
        return 0.0
    return RateLimit(None, int(known.get("remaining") or 0), known.get("reset")).wait_seconds()


def _failure(account: ChannelAccount, exc: XAPIError, endpoint: str) -> Exception:
    if exc.status == 401:
        reason = f"X refused the account's token (401): {exc.detail}"
        health.do_record_channel_error(account, reason, disconnected=True)
        return PermanentError(reason)
    health.do_record_channel_error(account, str(exc))
    if exc.status == 429:
        _remember_rate(account, endpoint, RateLimit(exc.rate.limit, 0, exc.rate.reset))
        return TemporaryError(str(exc), retry_after=exc.rate.wait_seconds() or 60.0)
    if exc.status == 0 or exc.status >= 500:
        return TemporaryError(str(exc))
    detail = exc.detail.lower()
    if "duplicate" in detail:
        return PermanentError("X refused the reply: the same text was already posted (duplicate content)")
    if "deleted or not visible" in detail:
        return PermanentError("X refused the reply: the post being answered was deleted or is not visible")
    return PermanentError(str(exc))


class XAdapter:
    kind: ClassVar[str] = "x"

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        text = message.text.strip()
        if not text:
            raise PermanentError("X: only text replies are supported; this message has no text")
        endpoint = "tweets" if message.public else "dm"
        if endpoint == "tweets" and weighted_length(text) > MAX_WEIGHTED:
            raise PermanentError(
                f"X posts hold at most {MAX_WEIGHTED} characters (Japanese counts double); this one counts {weighted_length(text)}"
            )
        wait = _known_wait(account, endpoint)
        if wait:
            raise TemporaryError(f"X rate limit for {endpoint} used up; waiting {round(wait)} s", retry_after=wait)
        with XClient(account) as client:
            try:
                if endpoint == "tweets":
                    external_id, rate = client.create_tweet(text, in_reply_to=message.in_reply_to)
                else:
                    if not message.recipient:
                        raise PermanentError("X: no recipient for this direct message")
                    external_id, rate = client.send_dm(message.recipient, text)
            except XAPIError as exc:
                raise _failure(account, exc, endpoint) from exc
        _remember_rate(account, endpoint, rate)
        health.do_record_channel_ok(account, sent=True)
        return SendResult(external_id)

    def max_length(self, account: ChannelAccount) -> int | None:
        # Weighted: a reply in Japanese holds 140 characters. send() checks the weighted count.
        return MAX_WEIGHTED


adapter = register(XAdapter())
