"""X replies out: public replies threaded with `reply.in_reply_to_tweet_id`, private ones as DMs.

Documentation (November 2026), see client.py for the endpoints:
- Post length: https://docs.x.com/resources/fundamentals/counting-characters — 280 weighted
  characters: most Latin, Greek, Cyrillic and punctuation count 1, everything else (Japanese,
  Chinese, Korean, emoji) counts 2, and every URL counts 23 (t.co).
- 403 problems on create: "You are not allowed to create a Tweet with duplicate content." and
  "You attempted to reply to a Tweet that is deleted or not visible to you." never succeed on retry.
- Rate limits: a used-up window (`x-rate-limit-remaining: 0`) is remembered in
  `config["rate_limits"]`, and the outbox waits until `x-rate-limit-reset` instead of calling.
- X takes no idempotency key. A send whose outcome we do not know (the response timed out, the
  connection dropped, a 5xx, or the worker died mid-call) leaves its outbox key in
  `config["x_sending"]`; before trying that key again we look for the post among the account's
  latest posts (`GET /2/users/{id}/tweets`: a reply to the same post with the same text) or DMs
  (`GET /2/dm_events`), and report it sent instead of posting twice. X's 403 "duplicate content"
  gets the same look-up: when the earlier post is our same reply, it was sent; otherwise it is a
  real refusal.
"""

from __future__ import annotations

import html
import re
import time
import unicodedata
from typing import TYPE_CHECKING, Any, ClassVar

from madoguchi.connectors import health, ratelimit
from madoguchi.connectors.base import (
    OutboundMessage,
    PermanentError,
    SendResult,
    TemporaryError,
    register,
)
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.ratelimit import RateLimit
from madoguchi.connectors.x.client import XAPIError, XClient

if TYPE_CHECKING:
    from madoguchi.inbox.models import Conversation

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


_remember_rate = ratelimit.remember
_known_wait = ratelimit.known_wait


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


SENDING_KEEP_SECONDS = 2 * 86400


def _comparable(text: str) -> str:
    """Text as X gives it back: entities unescaped, links shortened (t.co), spaces trimmed."""
    return URL.sub("<url>", unicodedata.normalize("NFC", html.unescape(text))).strip()


def _mark_sending(account: ChannelAccount, key: str) -> None:
    now = time.time()

    def mark(config: dict[str, Any]) -> None:
        sending = {k: v for k, v in (config.get("x_sending") or {}).items() if now - float(v) < SENDING_KEEP_SECONDS}
        sending[key] = now
        config["x_sending"] = sending

    health.update_config(account, mark)


def _clear_sending(account: ChannelAccount, key: str) -> None:
    if key in ((account.config or {}).get("x_sending") or {}):
        health.update_config(account, lambda config: (config.get("x_sending") or {}).pop(key, None))


def find_sent(client: XClient, account: ChannelAccount, message: OutboundMessage, text: str) -> str:
    """The id of a post or DM of ours that already is this message, or ""."""
    user_id = str((account.config or {}).get("user_id", ""))
    if not user_id:
        return ""
    want = _comparable(text)
    if message.public:
        page, _ = client.user_tweets(user_id)
        for tweet in page.data:
            replied = {r.id for r in tweet.referenced_tweets if r.type == "replied_to"}
            if _comparable(tweet.text) == want and (not message.in_reply_to or message.in_reply_to in replied):
                return tweet.id
        return ""
    dms, _ = client.dm_events()
    for event in dms.data:
        if event.sender_id == user_id and message.recipient in event.dm_conversation_id.split("-") and _comparable(event.text) == want:
            return event.id
    return ""


class XAdapter:
    def composer_hints(self, conversation: Conversation) -> dict[str, Any]:
        """X counts CJK characters and emoji twice and every link as 23."""
        return {"counting": "x"}

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
        if endpoint == "dm" and not message.recipient:
            raise PermanentError("X: no recipient for this direct message")
        key = message.idempotency_key
        with XClient(account) as client:
            if key in ((account.config or {}).get("x_sending") or {}):
                # An earlier try may have reached X without us hearing back.
                try:
                    found = find_sent(client, account, message, text)
                except XAPIError as exc:
                    health.do_record_channel_error(account, str(exc))
                    raise TemporaryError(
                        f"X: could not check whether an earlier try was posted ({exc})",
                        retry_after=exc.rate.wait_seconds() or None,
                    ) from exc
                if found:
                    _clear_sending(account, key)
                    health.do_record_channel_ok(account, sent=True)
                    return SendResult(found)
            try:
                _mark_sending(account, key)
                if endpoint == "tweets":
                    external_id, rate = client.create_tweet(text, in_reply_to=message.in_reply_to)
                else:
                    external_id, rate = client.send_dm(message.recipient, text)
            except XAPIError as exc:
                if exc.status == 403 and "duplicate" in exc.detail.lower():
                    found = self._find_quietly(client, account, message, text)
                    if found:
                        _clear_sending(account, key)
                        health.do_record_channel_ok(account, sent=True)
                        return SendResult(found)
                if not (exc.timed_out or exc.status >= 500):
                    _clear_sending(account, key)  # X answered: nothing was posted
                raise _failure(account, exc, endpoint) from exc
        _clear_sending(account, key)
        _remember_rate(account, endpoint, rate)
        health.do_record_channel_ok(account, sent=True)
        return SendResult(external_id)

    @staticmethod
    def _find_quietly(client: XClient, account: ChannelAccount, message: OutboundMessage, text: str) -> str:
        try:
            return find_sent(client, account, message, text)
        except XAPIError:
            return ""  # the refusal stands; the look-up was only a chance to prove it was sent

    def max_length(self, account: ChannelAccount) -> int | None:
        # Weighted: a reply in Japanese holds 140 characters. send() checks the weighted count.
        return MAX_WEIGHTED


adapter = register(XAdapter())
