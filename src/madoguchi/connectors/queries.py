"""Reads of the connectors app that other apps may use (the inbox's composer)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from madoguchi.connectors.base import PermanentError, adapter_for

if TYPE_CHECKING:
    from madoguchi.inbox.models import Conversation


@dataclass(frozen=True)
class ComposerHints:
    """What the composer tells an agent before sending on this conversation's channel."""

    max_length: int | None = None
    # X counts CJK characters twice (a Japanese reply holds 140 characters) and any URL as 23.
    weighted: bool = False
    # LINE: "reply" (free, with the customer's reply token) or "push" (billed per message).
    line_mode: str | None = None
    # A channel's own warning, from its adapter's optional `composer_notice(account)` (phone).
    notice: str = ""
    # Facebook/Instagram direct messages: when the 24-hour window for a reply closes.
    window_closes_at: dt.datetime | None = None


def composer_hints(conversation: Conversation) -> ComposerHints:
    """The channel's length limit and, on LINE, whether a reply will be free or billed."""
    account = conversation.channel_account
    try:
        adapter = adapter_for(account)
    except PermanentError:
        return ComposerHints()
    max_length = adapter.max_length(account)
    if account.config.get("simulated"):
        return ComposerHints(max_length=max_length)
    line_mode = None
    if account.kind == "line":
        from madoguchi.connectors.line.outbound import reply_mode

        line_mode = reply_mode(conversation)
    window = None
    if account.kind in {"facebook", "instagram"}:
        from madoguchi.connectors.facebook.graph import messaging_window

        window = messaging_window(conversation)
    notice = getattr(adapter, "composer_notice", None)
    notice_text = str(notice(account)) if notice else ""
    if account.kind == "mastodon":  # who will see the reply (its visibility follows the status answered)
        from madoguchi.connectors.mastodon.outbound import composer_notice_for

        notice_text = composer_notice_for(conversation)
    return ComposerHints(
        max_length=max_length,
        weighted=account.kind == "x",
        line_mode=line_mode,
        window_closes_at=window,
        notice=notice_text,
    )
