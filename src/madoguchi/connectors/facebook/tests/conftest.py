"""Shared by the Meta tests (Facebook and Instagram): a fake Graph API with two commenters."""

from __future__ import annotations

import pytest

from madoguchi.connectors.facebook.fake import FakeGraph

PAGE, IG = "104598765432101", "17841400000000001"
YUI, KEN = "6543210987654321", "7654321098765432"


@pytest.fixture
def meta():
    """The fake Meta: page PAGE and its Instagram account IG; Yui and Ken can comment."""
    server = FakeGraph(page_id=PAGE, ig_user_id=IG).start()
    server.add_user(YUI, "佐藤 結衣", username="yui.sato")
    server.add_user(KEN, "Ken Tanaka", username="ken.t")
    yield server
    server.stop()
