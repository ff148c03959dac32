"""LINE: signed webhooks in (every event kind kept, redelivery idempotent), reply token or push out."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from madoguchi.connectors import health
from madoguchi.connectors.base import OutboundMessage, PermanentError, TemporaryError
from madoguchi.connectors.line import outbound, tasks
from madoguchi.connectors.line.fake import FakeLine, sign
from madoguchi.connectors.models import ChannelAccount
from madoguchi.contacts.models import Identity
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Delivery, Message, Outbox
from madoguchi.inbox.tasks import deliver_outbox
from madoguchi.ingest.models import Quarantine

pytestmark = pytest.mark.django_db
FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "events.json").read_text())
USER = "U4af4980629aaaaaaaaaaaaaaaaaaaaaa"


@pytest.fixture
def fake():
    server = FakeLine().start()
    server.add_user(USER, "佐藤 結衣", picture_url="https://profile.line-scdn.net/abc", language="ja")
    yield server
    server.stop()


@pytest.fixture
def account(cast, fake) -> ChannelAccount:
    config, secrets = fake.account_settings()
    return ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="line", name="Acme LINE", config=config, secrets=secrets)


def post(account: ChannelAccount, body: bytes, signature: str | None):
    headers: dict[str, Any] = {} if signature is None else {"HTTP_X_LINE_SIGNATURE": signature}
    return Client(enforce_csrf_checks=True).post(f"/connectors/line/{account.pk}/webhook/", data=body, content_type="application/json", **headers)


def run_queued() -> list[dict]:
    """Run the queued delivery tasks, as a worker would."""
    results = []
    for row in DBTaskResult.objects.filter(task_path__endswith="line.tasks.process_delivery").order_by("enqueued_at"):
        results.append(tasks.process_delivery.call(*row.args_kwargs["args"]))
        row.delete()
    return results


def deliver(fake: FakeLine, account: ChannelAccount, events: list[dict]) -> list[dict]:
    body, signature = fake.delivery(events)
    assert post(account, body, signature).status_code == 200
    return run_queued()


def agent_reply(cast, message: Message, text: str = "ご連絡ありがとうございます。確認します。") -> Message:
    reply = inbox_actions.do_reply(message.conversation, author=cast.agent, text=text)
    deliver_outbox.call(Outbox.objects.get(message=reply).pk)
    reply.refresh_from_db()
    return reply


# --- receiving ---------------------------------------------------------------------------------


def test_text_message_arrives_with_the_users_profile(cast, fake, account):
    deliver(fake, account, [fake.text_event(USER, "注文した商品がまだ届きません")])
    message = Message.objects.get(channel_account=account)
    assert message.text == "注文した商品がまだ届きません"
    identity = Identity.objects.get(kind="line", external_id=USER)
    assert (identity.display_name, identity.avatar_url, identity.language) == ("佐藤 結衣", "https://profile.line-scdn.net/abc", "ja")
    assert message.raw["replyToken"]  # kept for the reply
    account.refresh_from_db()
    assert account.last_receive_at is not None and health.channel_state(account) == "connected"


def test_a_missing_signature_is_refused_with_401_and_nothing_is_kept(fake, account):
    body, _ = fake.delivery([fake.text_event(USER, "hi")])
    assert post(account, body, None).status_code == 401
    assert not DBTaskResult.objects.exists()


@pytest.mark.parametrize("how", ["wrong secret", "re-serialized body", "garbage"])
def test_a_wrong_signature_is_refused_with_403(fake, account, how):
    body, signature = fake.delivery([fake.text_event(USER, "こんにちは")])
    if how == "wrong secret":
        signature = sign("not-the-secret", body)
    elif how == "re-serialized body":
        body = json.dumps(json.loads(body)).encode()  # same JSON, other bytes (escaped unicode)
    else:
        signature = "!!!"
    assert post(account, body, signature).status_code == 403
    assert not DBTaskResult.objects.exists() and not Message.objects.exists()


def test_the_consoles_verification_request_is_accepted(fake, account):
    body, signature = fake.delivery([])
    assert post(account, body, signature).status_code == 200
    assert not DBTaskResult.objects.exists()


def test_an_unknown_or_inactive_channel_is_404(fake, account):
    body, signature = fake.delivery([])
    ChannelAccount.objects.filter(pk=account.pk).update(is_active=False)
    assert post(account, body, signature).status_code == 404


def test_a_signed_but_malformed_body_is_quarantined_not_refused(fake, account):
    body = b'{"destination": "U1", "events": "not a list"}'
    assert post(account, body, sign(fake.channel_secret, body)).status_code == 200
    assert Quarantine.objects.filter(channel_account=account).count() == 1


def test_a_redelivered_event_is_stored_once(fake, account):
    event = fake.text_event(USER, "届いていません")
    deliver(fake, account, [event])
    result = deliver(fake, account, [fake.redelivered(event), event])
    assert result == [{"created": 0, "duplicate": 2, "quarantined": 0}]
    assert Message.objects.filter(channel_account=account).count() == 1


def test_stickers_and_images_are_kept_with_the_image_file(fake, account):
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    deliver(fake, account, [fake.sticker_event(USER, keywords=["Thanks"]), fake.image_event(USER, png, "image/png")])
    sticker, image = Message.objects.filter(channel_account=account).order_by("id")
    assert sticker.text.startswith("[sticker] Thanks")
    assert image.text == "[image]"
    attachment = image.attachments.get()
    assert (attachment.content_type, attachment.file.read()) == ("image/png", png)


def test_an_image_whose_content_is_gone_is_still_recorded(fake, account):
    event = fake.image_event(USER, b"jpeg")
    fake.contents.clear()  # LINE deletes content after a while
    deliver(fake, account, [event])
    message = Message.objects.get(channel_account=account)
    assert message.text.startswith("[image] content not fetched: LINE API 404")
    assert message.raw["message"]["id"] == event["message"]["id"]


def test_every_documented_event_kind_is_kept(fake, account):
    fake.contents["354718705033693861"] = (b"\xff\xd8jpeg", "image/jpeg")
    names = ["text", "sticker", "image", "location", "group_text", "follow", "unfollow", "unsend", "postback"]
    assert deliver(fake, account, [FIXTURES[name] for name in names]) == [{"created": 9, "duplicate": 0, "quarantined": 0}]
    texts = set(Message.objects.filter(channel_account=account).values_list("text", flat=True))
    assert {"注文した商品がまだ届きません", "[image]", "@example 質問です"} <= texts
    assert any(t.startswith("[location] my location") for t in texts)
    assert {"[postback] storeId=12345", "[unsend] took back message 325708"} <= texts
    assert any(t.startswith("[follow]") for t in texts) and any(t.startswith("[unfollow] blocked") for t in texts)
    unsend = Message.objects.get(text="[unsend] took back message 325708")
    assert unsend.conversation_id == Message.objects.get(external_id="325708").conversation_id
    assert Message.objects.get(external_id="325708").text.startswith("[location]")  # the original is kept
    group = Message.objects.get(external_id="468789577898262531")
    assert group.conversation.thread_key == "Ca56f94637cbbbbbbbbbbbbbbbbbbbbbb"


def test_a_profile_that_cannot_be_read_does_not_lose_the_message(fake, account):
    deliver(fake, account, [fake.text_event("Uunknown", "hello")])
    assert Message.objects.get(channel_account=account).identity.external_id == "Uunknown"


# --- replying ----------------------------------------------------------------------------------


def test_a_prompt_reply_uses_the_free_reply_token(cast, fake, account):
    event = fake.text_event(USER, "返品したいです")
    deliver(fake, account, [event])
    inbound = Message.objects.get(channel_account=account)
    assert outbound.reply_mode(inbound.conversation) == "reply"
    reply = agent_reply(cast, inbound)
    assert reply.delivery == Delivery.SENT
    assert [s["endpoint"] for s in fake.sent] == ["reply"]
    assert fake.sent[0]["replyToken"] == event["replyToken"]
    assert reply.external_id == fake.sent[0]["ids"][0]["id"]
    assert outbound.reply_mode(inbound.conversation) == "push"  # the token is spent


def test_an_old_message_is_answered_by_push_without_trying_the_token(cast, fake, account):
    deliver(fake, account, [fake.text_event(USER, "返品したいです")])
    inbound = Message.objects.get(channel_account=account)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    Message.objects.filter(pk=inbound.pk).update(raw={**inbound.raw, "timestamp": int(old.timestamp() * 1000)})
    assert outbound.reply_mode(inbound.conversation) == "push"
    agent_reply(cast, inbound)
    assert [(s["endpoint"], s.get("to")) for s in fake.sent] == [("push", USER)]
    assert not any(path == "/v2/bot/message/reply" for _, path in fake.requests)


def test_an_invalid_reply_token_falls_back_to_push(cast, fake, account):
    deliver(fake, account, [fake.text_event(USER, "返品したいです")])
    fake.expire_reply_tokens()
    reply = agent_reply(cast, Message.objects.get(channel_account=account))
    assert reply.delivery == Delivery.SENT
    assert [s["endpoint"] for s in fake.sent] == ["push"]


def test_a_group_chat_is_answered_in_the_group(cast, fake, account):
    event = fake.text_event(USER, "質問です", group_id="Cgroup1")
    deliver(fake, account, [event])
    fake.expire_reply_tokens()
    agent_reply(cast, Message.objects.get(channel_account=account))
    assert fake.sent[0]["to"] == "Cgroup1"


def test_a_retried_push_is_delivered_once(fake, account):
    message = OutboundMessage(idempotency_key="mdg-1", text="お待たせしました", recipient=USER)
    first = outbound.adapter.send(account, message)
    second = outbound.adapter.send(account, message)  # e.g. the worker died before recording it
    assert len(fake.sent) == 1
    assert first.external_id and second.external_id.startswith("line-push-")


def test_a_rate_limited_push_is_retried_later(cast, fake, account):
    deliver(fake, account, [fake.text_event(USER, "hi")])
    fake.expire_reply_tokens()
    fake.fail("/v2/bot/message/push", 429, "The API rate limit has been exceeded. Try again later.")
    with pytest.raises(TemporaryError) as exc:
        outbound.adapter.send(account, OutboundMessage(idempotency_key="mdg-2", text="x", recipient=USER))
    assert exc.value.retry_after == 30
    account.refresh_from_db()
    assert health.channel_state(account) == "degraded"
    outbound.adapter.send(account, OutboundMessage(idempotency_key="mdg-2", text="x", recipient=USER))
    account.refresh_from_db()
    assert health.channel_state(account) == "connected"


def test_a_server_error_is_retried(cast, fake, account):
    deliver(fake, account, [fake.text_event(USER, "hi")])
    fake.expire_reply_tokens()
    fake.fail("/v2/bot/message/push", 500, "Internal server error")
    inbound = Message.objects.get(channel_account=account)
    reply = inbox_actions.do_reply(inbound.conversation, author=cast.agent, text="確認します")
    assert deliver_outbox.call(Outbox.objects.get(message=reply).pk) == "retrying"


def test_a_revoked_token_fails_the_message_and_disconnects_the_account(cast, fake, account):
    deliver(fake, account, [fake.text_event(USER, "hi")])
    fake.access_token = "rotated"
    reply = agent_reply(cast, Message.objects.get(channel_account=account))
    assert reply.delivery == Delivery.FAILED
    assert "401" in reply.delivery_error
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected"
    assert "access token" in account.last_error
    # Someone pastes the new token: the next successful call reconnects the account.
    ChannelAccount.objects.filter(pk=account.pk).update(secrets={**account.secrets, "channel_access_token": "rotated"})
    account.refresh_from_db()
    outbound.adapter.send(account, OutboundMessage(idempotency_key="mdg-3", text="x", recipient=USER))
    account.refresh_from_db()
    assert health.channel_state(account) == "connected"


def test_text_longer_than_line_allows_is_refused_before_sending(fake, account):
    assert outbound.adapter.max_length(account) == 5000
    with pytest.raises(PermanentError, match="5000"):
        outbound.adapter.send(account, OutboundMessage(idempotency_key="mdg-4", text="あ" * 5001, recipient=USER))
    assert not fake.requests


def test_nothing_is_dropped_when_the_workspace_has_listening_rules(cast, fake, account):
    from madoguchi.listening.actions import do_save_rule

    do_save_rule(cast.ws, cast.brand, {"name": "product names", "any_of": ["acmephone"]})
    events = [fake.follow_event(USER), fake.text_event(USER, "こんにちは"), fake.sticker_event(USER), fake.unfollow_event(USER)]
    assert deliver(fake, account, events) == [{"created": 4, "duplicate": 0, "quarantined": 0}]
    assert Message.objects.filter(channel_account=account).count() == 4


def test_an_expired_token_is_noticed_on_arrival_and_a_webhook_does_not_hide_it(cast, fake, account):
    fake.access_token = "rotated"  # the profile fetch now gets 401
    deliver(fake, account, [fake.text_event(USER, "hi")])
    assert Message.objects.filter(channel_account=account).exists()  # the message is kept
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected"
    deliver(fake, account, [fake.text_event(USER, "still there?")])  # signed with the secret only
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected"
