"""A scripted visitor of the contact form, for tests and the demo.

It opens the form like a browser (the page must be served, with its signed token), fills it in
and submits it. A person takes a while to type: `seconds_taken` re-signs the page's nonce with an
earlier render time (in-process, with the site's key), so the minimum fill time is satisfied
without sleeping; `seconds_taken=0` plays the robot that submits at once.
"""

from __future__ import annotations

import re
import time
from typing import Any

from django.core import signing
from django.test import Client

from madoguchi.connectors.webform import inbound
from madoguchi.connectors.webform.queries import form_account

_TOKEN_RE = re.compile(r'name="token" value="([^"]*)"')


class _Backdated(signing.TimestampSigner):
    def __init__(self, seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds = seconds

    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time() - self.seconds))


class FormVisitor:
    """`FormVisitor(brand_id).submit(name=…, email=…, subject=…, message=…)` → the response."""

    def __init__(
        self, brand_id: int, *, lang: str = "ja", embed: bool = False, client: Client | None = None
    ) -> None:
        self.brand_id = brand_id
        self.lang = lang
        self.client = client or Client(enforce_csrf_checks=True)
        self.url = f"/connectors/webform/{brand_id}/{'embed/' if embed else ''}"
        self.page = ""

    def open(self) -> str:
        response = self.client.get(self.url, {"lang": self.lang})
        assert response.status_code == 200, response.status_code
        self.page = response.content.decode()
        return self.page

    def token(self, seconds_taken: float) -> str:
        match = _TOKEN_RE.search(self.page or self.open())
        token = match.group(1) if match else ""
        account = form_account(self.brand_id)
        if not token or account is None or seconds_taken <= 0:
            return token
        nonce = token.split(":", 1)[0]
        return _Backdated(seconds_taken, salt=inbound._signer(account).salt).sign(nonce)

    def submit(
        self,
        *,
        name: str = "佐藤 結衣",
        email: str = "yui@example.com",
        subject: str = "返品について",
        message: str = "注文した商品を返品したいです。",
        category: str = "",
        files: list[Any] | None = None,
        seconds_taken: float = 20.0,
        honeypot: str = "",
        token: str | None = None,
    ) -> Any:
        data: dict[str, Any] = {
            "lang": self.lang,
            "name": name,
            "email": email,
            "subject": subject,
            "message": message,
            "website": honeypot,
            "token": self.token(seconds_taken) if token is None else token,
        }
        if category:
            data["category"] = category
        if files:
            data["attachments"] = files
        return self.client.post(self.url, data)
