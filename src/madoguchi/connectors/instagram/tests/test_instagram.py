"""Instagram: comments, mentions and DMs in through signed webhooks (story replies and mentions,
reactions, reads and unsent messages kept), comment and mention replies and DMs out."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from madoguchi.connectors import health
from madoguchi.connectors.base import OutboundMessage, PermanentError
from madoguchi.connectors.facebook import graph
from madoguchi.connectors.facebook import tasks as facebook_tasks
from madoguchi.connectors.facebook.tests.meta import agent_reply, connect, deliver, post, run_queued
from madoguchi.connectors.instagram import outbound
from madoguchi.connectors.instagram.fake import FakeInstagram
from madoguchi.connectors.models import ChannelAccount
from madoguchi.contacts.models import Identity
from madoguchi.inbox.models import Delivery, Message, MessageEvent

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"
IG = "17841400000000001"
YUI, KEN, DM = "232323232", "343434343", "1254459154682919"


@pytest.fixture
def fake():
    server = FakeInstagram(ig_user_id=IG).start()
    server.add_user(YUI, "Yui Sato", username="yui.sato")
    server.add_user(KEN, "Ken Brand", username="kenbrand", followers=48000, business=True)
    server.add_user(DM, "Aiko Suzuki", username="aiko_s", followers=321)
    yield server
    server.stop()


@pytest.fixture
def account(cast, fake) -> ChannelAccount:
    return connect(cast, fake, "instagram", "@acme_support")


def test_handshake_and_signatures_are_meta_s(account, fake):
    url = f"/connectors/instagram/{account.pk}/webhook/"
    assert Client().get(url, {"hub.mode": "subscribe", "hub.verify_token": fake.verify_token, "hub.challenge": "42"}).content == b"42"
    assert Client().get(url, {"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "42"}).status_code == 403
    body, _ = fake.delivery(fake.messaging(fake.message(DM, "hi", instagram=True), instagram=True))
    assert post(account, body, None).status_code == 401
    assert post(account, body, graph.sign("another-secret", body)).status_code == 403
    assert not DBTaskResult.objects.exists()


def test_the_documented_delivery_keeps_comments_dms_story_replies_and_their_events(account, fake):
    payload = json.loads((FIXTURES / "webhooks.json").read_text())
    fake.media["story-mention.jpg"] = (b"\xff\xd8story", "image/jpeg")
    text = json.dumps(payload, ensure_ascii=True).replace("https://lookaside.fbsbx.com/ig_messaging_cdn/story-mention.jpg", f"{fake.url}/media/story-mention.jpg")
    body = text.replace("/", "\\/").encode()
    assert post(account, body, graph.sign(fake.app_secret, body)).status_code == 200
    counts = run_queued()[0]
    assert counts["created"] == 5 and counts["events"] == 3 and counts["ignored"] == 2  # our reply, the echo
    yui = Message.objects.get(external_id="17865799348089039")
    ken = Message.objects.get(external_id="17865799348089040")
    assert yui.public and yui.conversation.thread_key == f"18023345989012587:{YUI}"
    assert ken.conversation != yui.conversation  # one conversation per commenter
    assert Identity.objects.get(kind="instagram", external_id=KEN).followers == 48000  # business discovery
    assert Identity.objects.get(kind="instagram", external_id=YUI).handle == "yui.sato"
    dms = Message.objects.filter(conversation__thread_key=f"dm:{DM}").order_by("created_at")
    first, story_reply, story_mention = dms
    assert first.text == "注文のキャンセルはできますか？" and not first.public
    assert story_reply.text.startswith("[story reply] https://lookaside.fbsbx.com/") and story_reply.deleted_at is not None
    assert story_mention.attachments.get().file.read() == b"\xff\xd8story"
    identity = first.identity
    assert (identity.handle, identity.display_name, identity.followers) == ("aiko_s", "Aiko Suzuki", 321)
    assert set(MessageEvent.objects.filter(message=first).values_list("kind", flat=True)) == {"reaction", "read"}


def test_duplicate_deliveries_are_ignored(account, fake):
    media = fake.ig_media("新作")
    entry = fake.ig_changes("comments", fake.ig_comment(YUI, media, "かわいい"))
    deliver(fake, account, entry)
    assert deliver(fake, account, entry)[0]["duplicate"] == 1
    assert Message.objects.count() == 1


def test_a_comment_reply_goes_to_the_comment_and_a_reply_to_a_reply_to_its_top_comment(cast, account, fake):
    media = fake.ig_media("新作バッグ")
    top = fake.ig_comment(YUI, media, "色は何色ありますか？")
    deliver(fake, account, fake.ig_changes("comments", top))
    conversation = Message.objects.get(external_id=top["id"]).conversation
    reply = agent_reply(cast, conversation, "3色です")
    assert reply.delivery == Delivery.SENT and fake.replies[-1] == {**fake.replies[-1], "to": top["id"], "edge": "replies"}
    answer = fake.ig_comment(YUI, media, "黒はありますか？", parent_id=top["id"])
    deliver(fake, account, fake.ig_changes("comments", answer))
    assert Message.objects.get(external_id=answer["id"]).conversation == conversation
    agent_reply(cast, conversation, "黒もあります")
    assert fake.replies[-1]["to"] == top["id"]


def test_a_mention_in_a_comment_is_fetched_and_answered_through_the_mentions_edge(cast, account, fake):
    media = fake.ig_media("someone's post", owner="kenbrand")
    deliver(fake, account, fake.ig_changes("mentions", fake.ig_mention(KEN, media, "@acme_support これ壊れてました")))
    message = Message.objects.get(channel_account=account)
    assert message.text == "@acme_support これ壊れてました" and message.public
    assert message.identity.followers == 48000 and message.identity.handle == "kenbrand"
    agent_reply(cast, message.conversation, "DMでご連絡ください")
    assert fake.replies[-1] == {**fake.replies[-1], "edge": "mentions", "to": message.external_id, "media_id": media["id"]}


def test_the_documented_mention_notification_is_completed_from_the_graph_api(account, fake):
    """The webhook carries only ids; the text and author come from mentioned_comment."""
    fake.posts["17918195224117851"] = {"id": "17918195224117851", "media_product_type": "FEED", "permalink": "https://www.instagram.com/p/DAbCdEf/"}
    fake.comments["17894227972186120"] = {"id": "17894227972186120", "text": "@acme_support 返金はいつですか", "username": "kenbrand", "from": {"id": KEN, "username": "kenbrand"}, "timestamp": "2026-11-23T08:28:20+0000", "media": {"id": "17918195224117851", "permalink": "https://www.instagram.com/p/DAbCdEf/"}, "parent": "17918195224117851"}
    body = (FIXTURES / "mention.json").read_bytes()
    assert post(account, body, graph.sign(fake.app_secret, body)).status_code == 200
    assert run_queued()[0]["created"] == 1
    message = Message.objects.get(external_id="17894227972186120")
    assert message.text == "@acme_support 返金はいつですか" and message.identity.external_id == KEN
    assert message.raw["mention"] and message.raw["media_id"] == "17918195224117851"


def test_a_caption_mention_arrives_but_is_not_answered_by_api(account, fake):
    deliver(fake, account, fake.ig_changes("mentions", fake.ig_caption_mention("kenbrand", "Loving my @acme_support bag")))
    message = Message.objects.get(channel_account=account)
    assert message.text == "Loving my @acme_support bag"
    with pytest.raises(PermanentError, match="caption"):
        outbound.adapter.send(account, OutboundMessage("k", "thanks", recipient=KEN, in_reply_to=message.external_id, public=True))


def test_a_dm_reply_inside_the_window_is_sent_and_a_long_one_refused(cast, account, fake):
    deliver(fake, account, fake.messaging(fake.message(DM, "在庫ありますか", instagram=True), instagram=True))
    conversation = Message.objects.get(channel_account=account).conversation
    assert agent_reply(cast, conversation, "あります").delivery == Delivery.SENT
    assert fake.messages[-1] == {**fake.messages[-1], "to": DM, "via": IG, "messaging_type": "RESPONSE"}
    with pytest.raises(PermanentError, match="1,000 bytes"):
        outbound.adapter.send(account, OutboundMessage("k2", "あ" * 400, recipient=DM, thread_id=f"dm:{DM}"))


def test_a_dm_after_the_window_fails_clearly(cast, account, fake):
    deliver(fake, account, fake.messaging(fake.message(DM, "在庫ありますか", instagram=True), instagram=True))
    message = Message.objects.get(channel_account=account)
    Message.objects.filter(pk=message.pk).update(created_at=message.created_at - dt.timedelta(hours=30))
    reply = agent_reply(cast, message.conversation, "遅れてすみません")
    assert reply.delivery == Delivery.FAILED and "24-hour window closed" in reply.delivery_error and not fake.messages


def test_an_expired_token_is_noticed_by_the_periodic_check(account, fake):
    fake.expire_token()
    assert facebook_tasks.check_tokens.call() == {"checked": 1, "refused": 1}
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected"
