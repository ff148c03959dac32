"""A telephony provider's side of the call-event endpoint, for tests and the demo: it signs
call events the way `inbound.verify` expects (timestamp + body, HMAC-SHA256) and posts them."""

from __future__ import annotations

import json
import time
from typing import Any

from django.test import Client

from madoguchi.connectors.phone.inbound import SIGNATURE_HEADER, sign


class FakeTelephony:
    """`FakeTelephony(secret).post(account_id, event)` → the endpoint's response."""

    def __init__(self, secret: str, client: Client | None = None) -> None:
        self.secret = secret
        self.client = client or Client(enforce_csrf_checks=True)

    def delivery(
        self, event: dict[str, Any] | bytes, *, at: float | None = None, secret: str | None = None
    ) -> tuple[bytes, str]:
        """(body, signature header) for an event, signed at `at` (default now)."""
        body = event if isinstance(event, bytes) else json.dumps(event, ensure_ascii=False).encode()
        stamp = int(time.time() if at is None else at)
        return body, sign(self.secret if secret is None else secret, body, stamp)

    def post(
        self,
        account_id: int,
        event: dict[str, Any] | bytes,
        *,
        signature: str | None = None,
        **kw: Any,
    ) -> Any:
        body, header = self.delivery(event, **kw)
        headers: dict[str, Any] = (
            {}
            if signature == ""
            else {"HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"): signature or header}
        )
        return self.client.post(
            f"/connectors/phone/{account_id}/events/",
            data=body,
            content_type="application/json",
            **headers,
        )
