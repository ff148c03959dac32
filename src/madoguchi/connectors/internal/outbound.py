"""The built-in internal channel: delivers into a table, for the demo, tests and custom channels.

`config["simulate"]` can make it misbehave like a real platform: "temporary" (fails the first
`config["fail_times"]` attempts, default 1) or "permanent" (always refuses).
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import IntegrityError, transaction

from madoguchi.connectors.base import (
    OutboundMessage,
    PermanentError,
    SendResult,
    TemporaryError,
    register,
)
from madoguchi.connectors.models import ChannelAccount, InternalDelivery


class InternalAdapter:
    kind: ClassVar[str] = "internal"

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        simulate = account.config.get("simulate")
        if simulate == "permanent":
            raise PermanentError("recipient does not accept messages (simulated)")
        if simulate == "temporary":
            seen = account.config.setdefault("_attempts", {})
            seen[message.idempotency_key] = seen.get(message.idempotency_key, 0) + 1
            ChannelAccount.objects.filter(pk=account.pk).update(config=account.config)
            if seen[message.idempotency_key] <= int(account.config.get("fail_times", 1)):
                raise TemporaryError("platform unavailable (simulated)", retry_after=0)
        # Like a real platform honouring an idempotency key: a resend returns the first result.
        existing = InternalDelivery.objects.filter(idempotency_key=message.idempotency_key).first()
        if existing:
            return SendResult(external_id=existing.external_id)
        try:
            with transaction.atomic():
                delivery = InternalDelivery.objects.create(
                    account=account,
                    idempotency_key=message.idempotency_key,
                    external_id=f"int-{uuid.uuid4().hex[:16]}",
                    recipient=message.recipient,
                    text=message.text,
                    in_reply_to=message.in_reply_to,
                )
        except IntegrityError:
            delivery = InternalDelivery.objects.get(idempotency_key=message.idempotency_key)
        return SendResult(external_id=delivery.external_id)

    def max_length(self, account: ChannelAccount) -> int | None:
        return None


adapter = register(InternalAdapter())
