"""X Account Activity webhooks: CRC handshake, exact signature, mentions and DMs stored once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.x import inbound
from madoguchi.connectors.x.fake import FakeX
from madoguchi.contacts.models import Identity
from madoguchi.inbox.models import Message
from madoguchi.ingest.models import Quarantine

pytestmark = pytest.mark.django_db
FIXTURE = (Path(__file__).parent / "fixtures" / "activity.json").read_bytes()


@pytest.fixture
def fake():
    server = FakeX().start()
    server.add_user("111", "yui_sato", "佐藤 結衣", followers=1234)
    yield server
    server.stop()


@pytest.fixture
def account(cast, fake) -> ChannelAccount:
    config, secrets = fake.account_settings()
    return ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="@AcmeSupport", config=config, secrets=secrets)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def post(account: ChannelAccount, body: bytes, sig: str | None):
    headers: dict[str, Any] = {} if sig is None else {"HTTP_X_TWITTER_WEBHOOKS_SIGNATURE": sig}
    return Client(enforce_csrf_checks=True).post(f"/connectors/x/{account.pk}/webhook/", data=body, content_type="application/json", **headers)


def test_the_crc_challenge_is_answered_with_the_documented_hmac(fake, account):
    response = Client().get(f"/connectors/x/{account.pk}/webhook/", {"crc_token": "challenge-123"})
    assert response.status_code == 200
    expected = base64.b64encode(hmac.new(b"fake-consumer-secret", b"challenge-123", hashlib.sha256).digest()).decode()
    assert response.json() == {"response_token": f"sha256={expected}"}
    assert Client().get(f"/connectors/x/{account.pk}/webhook/").status_code == 400


def test_unsigned_or_wrongly_signed_deliveries_are_refused(fake, account):
    assert post(account, FIXTURE, None).status_code == 401
    assert post(account, FIXTURE, signature("other", FIXTURE)).status_code == 403
    reserialized = json.dumps(json.loads(FIXTURE)).encode()
    assert post(account, reserialized, signature(fake.consumer_secret, FIXTURE)).status_code == 403
    assert not Message.objects.exists()


def test_a_documented_delivery_stores_the_mention_and_the_dm_but_not_our_own_post(fake, account):
    assert post(account, FIXTURE, signature(fake.consumer_secret, FIXTURE)).status_code == 200
    mention = Message.objects.get(external_id="1860000000000005000")
    assert mention.text == "@AcmeSupport ログインできません & パスワード再設定メールも来ない" and mention.public
    dm = Message.objects.get(external_id="dm:1860000000000006000")
    assert not dm.public and dm.conversation.thread_key == "dm:2244994945-9876543210"
    assert Identity.objects.get(kind="x", external_id="9876543210").followers == 250000
    assert not Message.objects.filter(external_id="1860000000000005001").exists()


def test_the_same_items_from_a_webhook_and_a_poll_are_stored_once(fake, account):
    tweet = fake.post("111", "@AcmeSupport 届きません")
    dm = fake.dm("111", "注文番号です")
    body, sig = fake.activity(tweets=[tweet], dms=[dm])
    assert post(account, body, sig).status_code == 200
    assert post(account, body, sig).status_code == 200  # a repeated delivery
    ChannelAccount.objects.filter(pk=account.pk).update(config={**account.config, "mentions": {}, "dms": {}})
    inbound.do_poll_mentions(ChannelAccount.objects.get(pk=account.pk), force=True)
    inbound.do_poll_dms(ChannelAccount.objects.get(pk=account.pk), force=True)
    assert Message.objects.filter(channel_account=account).count() == 2
    assert Message.objects.get(external_id=f"dm:{dm['id']}").conversation.thread_key == f"dm:{dm['dm_conversation_id']}"


def test_a_signed_body_that_is_not_json_is_quarantined(fake, account):
    body = b"not json"
    assert post(account, body, signature(fake.consumer_secret, body)).status_code == 200
    assert Quarantine.objects.filter(channel_account=account).count() == 1


# --- edits, deletions, likes, follows, read marks ----------------------------------------------

EVENTS = (Path(__file__).parent / "fixtures" / "activity_events.json").read_bytes()


def test_documented_activity_events_become_message_events_and_open_no_conversation(fake, account):
    from madoguchi.inbox.models import Conversation, MessageEvent

    assert post(account, FIXTURE, signature(fake.consumer_secret, FIXTURE)).status_code == 200
    conversations = Conversation.objects.count()
    assert post(account, EVENTS, signature(fake.consumer_secret, EVENTS)).status_code == 200
    assert Conversation.objects.count() == conversations
    events = {e.kind: e for e in MessageEvent.objects.filter(channel_account=account)}
    assert set(events) == {"edit", "reaction", "follow", "delete", "read"}  # typing and our own follow: not kept
    mention = Message.objects.get(external_id="1860000000000005000")
    assert mention.text == "@AcmeSupport ログインできません(追記: パスワード再設定メールも来ない)"
    assert events["edit"].previous_text.startswith("@AcmeSupport ログインできません & ") and mention.edited_at
    assert not Message.objects.filter(external_id="1860000000000007000").exists()
    assert (events["reaction"].emoji, events["reaction"].target_external_id) == ("like", "1860000000000006500")
    assert events["read"].target_external_id == "dm:1860000000000006600"
    assert events["follow"].identity.external_id == "9876543210"
    # Delivered again: nothing new.
    assert post(account, EVENTS, signature(fake.consumer_secret, EVENTS)).status_code == 200
    assert MessageEvent.objects.filter(channel_account=account).count() == 5


def test_a_like_of_our_reply_and_a_deletion_land_on_their_messages(cast, fake, account):
    from madoguchi.inbox import actions as inbox_actions
    from madoguchi.inbox.models import Outbox
    from madoguchi.inbox.tasks import deliver_outbox

    mention = fake.post("111", "@AcmeSupport 助けて")
    body, sig = fake.activity(tweets=[mention])
    post(account, body, sig)
    message = Message.objects.get(external_id=mention["id"])
    reply = inbox_actions.do_reply(message.conversation, author=cast.agent, text="お任せください")
    deliver_outbox.call(Outbox.objects.get(message=reply).pk)
    reply.refresh_from_db()
    body, sig = fake.activity(favorite_events=[fake.favorite_event("111", fake.tweets[reply.external_id])], tweet_delete_events=[fake.delete_event(mention)])
    post(account, body, sig)
    assert [(e.kind, e.emoji) for e in reply.events.all()] == [("reaction", "like")]
    message.refresh_from_db()
    assert message.deleted_at is not None and message.text == "@AcmeSupport 助けて"  # kept for audit


def test_an_edit_polled_from_the_timeline_updates_the_mention(fake, account):
    mention = fake.post("111", "@AcmeSupport 注文番号は 123")
    inbound.do_poll_mentions(account, force=True)
    edited = fake.edit(mention["id"], "@AcmeSupport 注文番号は 124 でした")
    counts = inbound.do_poll_mentions(ChannelAccount.objects.get(pk=account.pk), force=True)
    assert counts.get("event") == 1
    message = Message.objects.get(external_id=mention["id"])
    assert message.text == "@AcmeSupport 注文番号は 124 でした"
    assert not Message.objects.filter(external_id=edited["id"]).exists()


def test_dm_read_marks_and_typing_from_the_fake(fake, account):
    from madoguchi.inbox.models import MessageEvent

    ours = fake.dm(fake.brand_id, "ご確認ください", to="111")
    body, sig = fake.activity(direct_message_mark_read_events=[fake.read_event("111", ours["id"])], direct_message_indicate_typing_events=[fake.typing_event("111")], follow_events=[fake.follow_event("111", fake.brand_id, "unfollow")])
    post(account, body, sig)
    assert sorted(MessageEvent.objects.values_list("kind", flat=True)) == ["read", "unfollow"]
