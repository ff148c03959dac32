"""Mastodon replies out: `POST /api/v1/statuses` threaded with `in_reply_to_id`, with the visibility
of the status answered (a DM is answered `direct`), the recipient mentioned, and the outbox's
idempotency key as `Idempotency-Key`, so a retry after a timeout never posts twice.

Documentation (November 2026), see client.py for the endpoints:
- https://docs.joinmastodon.org/methods/statuses/#create — `Idempotency-Key` ("prevent duplicate
  submissions of the same status"), `visibility`, `language`; a direct status reaches only the
  accounts it mentions, so the recipient's `@acct` must be in the text.
- Length: https://docs.joinmastodon.org/methods/instance/#v2 — `configuration.statuses.max_characters`
  (500 by default, kept in `config["max_characters"]`) and `characters_reserved_per_url` (23:
  every URL counts 23 whatever its length); a remote mention `@user@domain` counts as `@user`.
- Rate limits: 300 calls per 5 minutes per account; a used-up window is remembered in
  `config["rate_limit"]` and the outbox waits for `X-RateLimit-Reset` instead of calling.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from django.utils.translation import gettext as _

from madoguchi.connectors import health
from madoguchi.connectors.base import (
    OutboundMessage,
    PermanentError,
    SendResult,
    TemporaryError,
    register,
)
from madoguchi.connectors.mastodon import inbound
from madoguchi.connectors.mastodon.client import MastodonAPIError, MastodonClient
from madoguchi.connectors.models import ChannelAccount

if TYPE_CHECKING:
    from madoguchi.inbox.models import Conversation

DEFAULT_MAX_CHARACTERS = 500
DEFAULT_URL_LENGTH = 23
URL = re.compile(r"https?://\S+", re.IGNORECASE)
REMOTE_MENTION = re.compile(r"@(\w+)@[\w.-]+\w")
KEPT_VISIBILITY = {"public", "unlisted", "private"}


def status_length(text: str, *, url_length: int = DEFAULT_URL_LENGTH) -> int:
    """The length Mastodon counts against `max_characters`."""
    text = REMOTE_MENTION.sub(lambda m: "@" + m.group(1), text)
    return len(URL.sub("x" * url_length, text))


def max_characters(account: ChannelAccount) -> int:
    value = (account.config or {}).get("max_characters")
    return value if isinstance(value, int) and value > 0 else DEFAULT_MAX_CHARACTERS


def _url_length(account: ChannelAccount) -> int:
    value = (account.config or {}).get("characters_reserved_per_url")
    return value if isinstance(value, int) and value >= 0 else DEFAULT_URL_LENGTH


def _answered(account: ChannelAccount, status_id: str, client: MastodonClient) -> tuple[str, str, str]:
    """(visibility, acct, language) of the status being answered: from the stored message, else asked."""
    from madoguchi.inbox.models import Message

    message = Message.objects.filter(channel_account=account, external_id=status_id).only("raw").first()
    raw = (message.raw or {}) if message is not None else {}
    if raw.get("visibility") and raw.get("acct"):
        language = str((raw.get("status") or {}).get("language") or "")
        return str(raw["visibility"]), str(raw["acct"]), language
    status = client.status(status_id)
    return status.visibility, status.account.acct, status.language or ""


def _failure(account: ChannelAccount, exc: MastodonAPIError, *, replying: bool) -> Exception:
    if exc.status == 401:
        reason = f"Mastodon refused the account's access token (401): {exc.detail}"
        health.do_record_channel_error(account, reason, disconnected=True)
        return PermanentError(reason)
    if exc.status == 429:
        inbound.failed(account, exc, "posting")
        return TemporaryError(str(exc), retry_after=exc.rate.wait_seconds() or 60.0)
    health.do_record_channel_error(account, str(exc))
    if exc.status == 0 or exc.status >= 500:
        return TemporaryError(str(exc))
    if exc.status == 404 and replying:
        return PermanentError("Mastodon refused the reply: the post being answered was deleted or is not visible to the account")
    if exc.status == 422 and "character limit" in exc.detail.lower():
        return PermanentError(f"Mastodon refused the reply: it is longer than the server allows ({exc.detail})")
    return PermanentError(f"Mastodon refused the reply: {exc.detail} ({exc.status})")


class MastodonAdapter:
    def composer_hints(self, conversation: Conversation) -> dict[str, Any]:
        """Who will see the reply (its visibility follows the status answered); links count 23."""
        return {"notice": composer_notice_for(conversation), "counting": "links23"}

    kind: ClassVar[str] = "mastodon"

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        text = message.text.strip()
        if not text:
            raise PermanentError("Mastodon: only text replies are supported; this message has no text")
        wait = inbound.known_wait(account)
        if wait:
            raise TemporaryError(f"Mastodon rate limit used up; waiting {round(wait)} s", retry_after=wait)
        try:
            client = MastodonClient(account)
        except MastodonAPIError as exc:
            raise PermanentError(str(exc)) from exc
        with client:
            try:
                visibility, acct, language = "public", "", ""
                if message.in_reply_to:
                    visibility, acct, language = _answered(account, message.in_reply_to, client)
                if not message.public:
                    visibility = "direct"
                elif visibility not in KEPT_VISIBILITY:
                    visibility = "unlisted"  # never widen a private exchange to the public timeline
                if not acct and message.recipient:
                    acct = _acct_of(account, message.recipient)
                if acct and f"@{acct}".lower() not in text.lower():
                    text = f"@{acct} {text}"
                if visibility == "direct" and not acct:
                    raise PermanentError("Mastodon: a direct message needs the recipient's @account, which is unknown")
                limit, length = max_characters(account), status_length(text, url_length=_url_length(account))
                if length > limit:
                    raise PermanentError(
                        f"Mastodon posts on this server hold at most {limit} characters (each link counts {_url_length(account)}); this one counts {length}"
                    )
                status, rate = client.post_status(
                    text,
                    idempotency_key=message.idempotency_key,
                    in_reply_to_id=message.in_reply_to,
                    visibility=visibility,
                    language=language,
                )
            except MastodonAPIError as exc:
                raise _failure(account, exc, replying=bool(message.in_reply_to)) from exc
        inbound.remember_rate(account, rate)
        health.do_record_channel_ok(account, sent=True)
        return SendResult(status.id)

    def max_length(self, account: ChannelAccount) -> int | None:
        return max_characters(account)


def _visibility_sentence(visibility: str, acct: str) -> str:
    sentences = {
        "public": _("Mastodon: this reply to %(acct)s will be public."),
        "unlisted": _("Mastodon: this reply to %(acct)s will be quiet public (kept off the public timelines)."),
        "private": _("Mastodon: this reply to %(acct)s will be seen by the account's followers and the people mentioned."),
        "direct": _("Mastodon: this reply to %(acct)s will be a direct message, seen only by the people mentioned."),
    }
    return sentences.get(visibility, sentences["public"]) % {"acct": acct}


def composer_notice_for(conversation: Conversation) -> str:
    """What the composer tells the agent: who sees the reply, and how links are counted."""
    from madoguchi.inbox.models import Message

    last = (
        Message.objects.filter(conversation=conversation, direction="in")  # the one do_reply answers
        .only("raw", "public", "identity__handle")
        .select_related("identity")
        .order_by("-created_at", "-id")
        .first()
    )
    if last is None:
        return ""
    raw = last.raw or {}
    visibility = str(raw.get("visibility") or "public")
    if not last.public:
        visibility = "direct"
    elif visibility not in KEPT_VISIBILITY:
        visibility = "unlisted"
    account = conversation.channel_account
    links = _("Each link counts as %(url_length)s characters.") % {"url_length": _url_length(account)}
    account_raw: dict[str, Any] = raw["account"] if isinstance(raw.get("account"), dict) else {}
    acct = raw.get("acct") or account_raw.get("acct") or (last.identity.handle if last.identity else "")
    return " ".join([_visibility_sentence(visibility, "@" + str(acct).lstrip("@") if acct else _("the customer")), links])


def _acct_of(account: ChannelAccount, external_id: str) -> str:
    from madoguchi.contacts.models import Identity

    identity = Identity.objects.filter(workspace_id=account.workspace_id, kind="mastodon", external_id=external_id).only("handle").first()
    return identity.handle if identity is not None else ""


adapter = register(MastodonAdapter())
