"""The composer shows each channel's length limit and, on LINE, whether a reply is free or billed."""

import time

import pytest

from madoguchi.conftest import csrf_post
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.queries import composer_hints

pytestmark = pytest.mark.django_db


def account(cast, kind, **config):
    return ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind=kind, name=f"{kind} account", config=config)


def test_x_shows_its_weighted_280_limit(cast, client_for):
    conv = cast.inbound("@acme help", account=account(cast, "x")).message.conversation
    hints = composer_hints(conv)
    assert hints.max_length == 280 and hints.weighted and hints.line_mode is None
    page = client_for(cast.agent).get(f"/inbox/c/{conv.pk}/")
    assert b'id="length-counter" data-max="280" data-counting="x"' in page.content


def test_line_reply_is_free_while_the_token_is_fresh_then_billed(cast, client_for):
    line = account(cast, "line")
    fresh = {"replyToken": "tok", "timestamp": int(time.time() * 1000), "mode": "active"}
    conv = cast.inbound("こんにちは", account=line, raw=fresh).message.conversation
    assert composer_hints(conv).line_mode == "reply"
    page = client_for(cast.agent).get(f"/inbox/c/{conv.pk}/")
    assert b'id="line-mode"' in page.content
    csrf_post(client_for(cast.agent), f"/inbox/c/{conv.pk}/reply/", {"text": "はい"})
    assert composer_hints(conv).line_mode == "push"  # the token is spent once we answered


def test_stale_line_token_means_push(cast):
    stale = {"replyToken": "tok", "timestamp": int((time.time() - 3600) * 1000), "mode": "active"}
    conv = cast.inbound("hi", account=account(cast, "line"), raw=stale).message.conversation
    assert composer_hints(conv).line_mode == "push"


def test_internal_and_simulated_channels_have_no_limit(cast):
    conv = cast.inbound("hi").message.conversation
    assert composer_hints(conv).max_length is None
    demo_x = cast.inbound("hi", account=account(cast, "x", simulated=True), customer="other").message.conversation
    assert composer_hints(demo_x).max_length is None and not composer_hints(demo_x).weighted
