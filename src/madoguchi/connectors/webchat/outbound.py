"""Agent replies on web chat: the outbox "delivers" by accepting the message.

There is no platform to call: the visitor's widget reads its conversation from us. Once the
outbox records the message as sent (``do_record_sent`` publishes ``message.delivery``), the
visitor's event stream (live.py) pushes it to the widget, and the history endpoint lists it.
The external id is derived from the outbox's idempotency key, so a retried delivery is the same.
"""

from __future__ import annotations

from typing import ClassVar

from madoguchi.connectors.base import OutboundMessage, SendResult, register
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webchat.widget import MAX_TEXT


class WebchatAdapter:
    kind: ClassVar[str] = "webchat"

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        return SendResult(external_id=f"wc-out-{message.idempotency_key}")

    def max_length(self, account: ChannelAccount) -> int | None:
        return MAX_TEXT


adapter = register(WebchatAdapter())
