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


def test_instagram_comments_and_direct_messages_each_show_their_own_limit(cast, client_for):
    ig = account(cast, "instagram", ig_user_id="17841400000000001")
    comment = cast.inbound("色は？", account=ig, thread_id="media1:u1", public=True).message.conversation
    dm = cast.inbound("在庫は？", account=ig, customer="u2", thread_id="dm:u2").message.conversation
    hints = composer_hints(comment)
    assert (hints.max_length, hints.counting, hints.window_closes_at) == (2200, "chars", None)
    hints = composer_hints(dm)
    assert (hints.max_length, hints.counting) == (1000, "bytes")  # overrides the account's limit
    page = client_for(cast.agent).get(f"/inbox/c/{comment.pk}/")
    assert b'id="length-counter" data-max="2200" data-counting="chars"' in page.content


def test_instagram_refuses_what_is_over_the_limit_of_its_kind():
    from madoguchi.connectors.base import PermanentError
    from madoguchi.connectors.instagram.outbound import check_length

    check_length("あ" * 2200, public=True)  # a comment counts characters
    with pytest.raises(PermanentError, match="2,200 characters"):
        check_length("あ" * 2201, public=True)
    check_length("あ" * 333, public=False)  # a DM counts UTF-8 bytes: 999
    with pytest.raises(PermanentError, match="1,000 bytes"):
        check_length("あ" * 334, public=False)
