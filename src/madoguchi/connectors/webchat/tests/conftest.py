"""A web chat widget in workspace A (allowed on https://shop.example) and one in workspace B."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webchat.fake import FakeVisitor

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


def _keep_connection(handler: WSGIHandler) -> Callable[..., Any]:
    """Like Django's test client: the handler must not close the test's database connection."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            result = handler(environ, start_response)
            body = b"".join(result)
            result.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return [body]

    return app


@pytest.fixture
def visitor_for() -> Iterator[Callable[..., FakeVisitor]]:
    handler = WSGIHandler()
    made: list[FakeVisitor] = []

    def make(account: ChannelAccount, *, origin: str = SHOP, remote_addr: str = "127.0.0.1", **kw: object) -> FakeVisitor:
        transport = httpx.WSGITransport(app=_keep_connection(handler), remote_addr=remote_addr)
        v = FakeVisitor(key=account.config["widget_key"], origin=origin, transport=transport, **kw)  # type: ignore[arg-type]
        made.append(v)
        return v

    yield make
    for v in made:
        v.close()

