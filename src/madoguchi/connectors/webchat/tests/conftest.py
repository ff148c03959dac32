"""A web chat widget in workspace A (allowed on https://shop.example) and one in workspace B."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.core.cache import cache

from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webchat.fake import FakeVisitor, in_process

SHOP = "https://shop.example"


@pytest.fixture(autouse=True)
def _clean(settings, tmp_path) -> Iterator[None]:
    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()  # rate-limit counters
    yield
    cache.clear()


@pytest.fixture
def widget(cast) -> ChannelAccount:
    return ChannelAccount.objects.create(
        workspace=cast.ws,
        brand=cast.brand,
        kind="webchat",
        name="Acme website",
        config={"widget_key": "wk_acme_test_key_000001", "allowed_origins": [SHOP, "http://127.0.0.1:*"]},
    )


@pytest.fixture
def widget_b(cast) -> ChannelAccount:
    return ChannelAccount.objects.create(
        workspace=cast.ws_b,
        brand=cast.account_b.brand,
        kind="webchat",
        name="Beta website",
        config={"widget_key": "wk_beta_test_key_000002", "allowed_origins": [SHOP]},
    )


@pytest.fixture
def visitor_for() -> Iterator[Callable[..., FakeVisitor]]:
    made: list[FakeVisitor] = []

    def make(account: ChannelAccount, *, origin: str = SHOP, remote_addr: str = "127.0.0.1", **kw: object) -> FakeVisitor:
        v = FakeVisitor(key=account.config["widget_key"], origin=origin, transport=in_process(remote_addr), **kw)  # type: ignore[arg-type]
        made.append(v)
        return v

    yield make
    for v in made:
        v.close()

