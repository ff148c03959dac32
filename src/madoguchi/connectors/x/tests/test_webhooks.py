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
