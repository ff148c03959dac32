"""The local fake of Instagram: the same fake Graph API as Facebook (facebook/fake.py), which
serves the linked Instagram professional account too, sending `object: "instagram"` deliveries."""

from __future__ import annotations

from typing import Any

from madoguchi.connectors.facebook.fake import FakeGraph


class FakeInstagram(FakeGraph):
    """Meta as one Instagram professional account (and its Facebook Page) sees it."""

    def account_settings(self, kind: str = "instagram") -> tuple[dict[str, Any], dict[str, str]]:
        return super().account_settings(kind)

    def delivery(self, *entries: dict[str, Any], object_: str = "instagram") -> tuple[bytes, str]:
        return super().delivery(*entries, object_=object_)
