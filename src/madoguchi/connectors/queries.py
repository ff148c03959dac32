"""Reads of the connectors app that other apps may use (the inbox's composer)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from madoguchi.connectors.base import PermanentError, adapter_for

if TYPE_CHECKING:
    from madoguchi.inbox.models import Conversation


@dataclass(frozen=True)
class ComposerHints:
    """What the composer tells an agent before sending on this conversation's channel.

    The limit comes from the adapter's `max_length(account)`, unless its optional
    `composer_hints(conversation) -> dict` (the field names below) gives this conversation its
    own "max_length" (Instagram: a comment or a DM); everything else comes from that dict too, so
    each platform keeps its own rules in its own folder.
    """

    max_length: int | None = None
    # How the platform counts the limit: "chars" (code points), "x" (CJK and emoji count 2, a
    # link 23), "links23" (Mastodon: a link counts 23), "graphemes" (Bluesky: what a reader sees
    # as one character), "bytes" (UTF-8 bytes: Instagram direct messages).
    counting: str = "chars"
    # LINE: "reply" (free, with the customer's reply token) or "push" (billed per message).
    line_mode: str | None = None
    # A channel's own warning (phone: calls are not messages; Mastodon: who will see the reply).
    notice: str = ""
    # Facebook/Instagram direct messages: when the 24-hour window for a reply closes.
    window_closes_at: dt.datetime | None = None
    # Ways to send the reply the agent may choose between, as (value, label, why it is not
    # possible now or ""): "public" or "private" (Facebook/Instagram: a private reply to a comment).
    reply_modes: tuple[tuple[str, str, str], ...] = ()
    # A reply mode whose limit differs from the conversation's: mode → (max_length, counting).
    mode_limits: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def reply_mode_options(self) -> tuple[tuple[str, str, str, int | None, str], ...]:
        """The reply modes with the limit each one is counted against."""
        return tuple((value, label, why, *self.mode_limits.get(value, (self.max_length, self.counting))) for value, label, why in self.reply_modes)

    @property
    def weighted(self) -> bool:
        return self.counting == "x"

    @property
    def window_closed(self) -> bool:
        from django.utils import timezone

        return self.window_closes_at is not None and self.window_closes_at <= timezone.now()


def composer_hints(conversation: Conversation) -> ComposerHints:
    """The channel's length limit and its platform's notes for the agent before sending."""
    account = conversation.channel_account
    try:
        adapter = adapter_for(account)
    except PermanentError:
        return ComposerHints()
    max_length = adapter.max_length(account)
    if account.config.get("simulated"):
        return ComposerHints(max_length=max_length)
    extra = getattr(adapter, "composer_hints", None)
    fields: dict[str, Any] = dict(extra(conversation)) if extra else {}
    notice = getattr(adapter, "composer_notice", None)
    if notice is not None and "notice" not in fields:
        fields["notice"] = str(notice(account))
    fields.setdefault("max_length", max_length)  # the conversation's own limit wins
    return ComposerHints(**fields)


def check_reply_mode(conversation: Conversation, mode: str) -> bool | None:
    """Whether a reply sent in `mode` is public (None: no mode asked, the channel's default);
    ValueError with the reason when this conversation does not offer that mode now."""
    from django.utils.translation import gettext as _

    if not mode:
        return None
    offered = {value: why for value, _label, why in composer_hints(conversation).reply_modes}
    if mode not in offered:
        raise ValueError(_("This conversation cannot be answered that way."))
    if offered[mode]:
        raise ValueError(offered[mode])
    return mode == "public"
