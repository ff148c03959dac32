"""The phone adapter: a call is not a message, so the outbox can never send one.

An agent answers a phone customer by calling them and logging the call on the contact page
(`views.log_call`), or by writing a note; a reply typed into the composer fails at once with
the reason, and the composer says so before anyone types (`composer_notice`).
"""

from __future__ import annotations

from typing import ClassVar

from django.utils.translation import gettext as _

from madoguchi.connectors.base import OutboundMessage, PermanentError, SendResult, register
from madoguchi.connectors.models import ChannelAccount


def cannot_send_reason() -> str:
    return _(
        "Calls cannot be sent as messages: call the customer back and log the call on their "
        "contact page, or write a note."
    )


class PhoneAdapter:
    """Refuses to send: phone conversations are answered by calling."""

    kind: ClassVar[str] = "phone"

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        raise PermanentError(cannot_send_reason())

    def max_length(self, account: ChannelAccount) -> int | None:
        return None

    def composer_notice(self, account: ChannelAccount) -> str:
        return cannot_send_reason()


adapter = register(PhoneAdapter())
