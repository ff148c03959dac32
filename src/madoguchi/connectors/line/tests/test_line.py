"""LINE: signed webhooks in (every event kind kept, redelivery idempotent), reply token or push out."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from madoguchi.connectors import health, testing
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
    return testing.agent_reply(cast, message, text)


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
    assert result == [{"created": 0, "duplicate": 2, "quarantined": 0, "events": 0}]
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
    from madoguchi.inbox.models import MessageEvent

    fake.contents["354718705033693861"] = (b"\xff\xd8jpeg", "image/jpeg")
    names = ["text", "sticker", "image", "location", "group_text", "follow", "unfollow", "unsend", "postback"]
    assert deliver(fake, account, [FIXTURES[name] for name in names]) == [{"created": 6, "duplicate": 0, "quarantined": 0, "events": 3}]
    texts = set(Message.objects.filter(channel_account=account).values_list("text", flat=True))
    assert {"注文した商品がまだ届きません", "[image]", "@example 質問です", "[postback] storeId=12345"} <= texts
    assert any(t.startswith("[location] my location") for t in texts)
    assert not any(t.startswith(("[follow]", "[unfollow]", "[unsend]")) for t in texts)
    events = {e.kind: e for e in MessageEvent.objects.filter(channel_account=account)}
    assert set(events) == {"follow", "unfollow", "delete"}
    unsent = Message.objects.get(external_id="325708")
    assert events["delete"].message == unsent and unsent.deleted_at is not None
    assert unsent.text.startswith("[location]")  # the original is kept for audit
    group = Message.objects.get(external_id="468789577898262531")
    assert group.conversation.thread_key == "Ca56f94637cbbbbbbbbbbbbbbbbbbbbbb"


def test_follows_and_blocks_open_no_conversation_and_redelivery_changes_nothing(fake, account):
    from madoguchi.inbox.models import Conversation, MessageEvent

    follow, unfollow = fake.follow_event(USER), fake.unfollow_event(USER)
    deliver(fake, account, [follow, unfollow])
    deliver(fake, account, [fake.redelivered(follow)])
    assert not Conversation.objects.filter(channel_account=account).exists()
    assert sorted(MessageEvent.objects.values_list("kind", flat=True)) == ["follow", "unfollow"]
    assert MessageEvent.objects.get(kind="follow").identity.display_name == "佐藤 結衣"


def test_an_unsend_that_arrives_before_its_message_is_applied_when_it_comes(fake, account):
    text = fake.text_event(USER, "間違えました")
    deliver(fake, account, [fake.unsend_event(USER, text["message"]["id"])])
    deliver(fake, account, [text])
    assert Message.objects.get(external_id=text["message"]["id"]).deleted_at is not None


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
    assert deliver(fake, account, events) == [{"created": 2, "duplicate": 0, "quarantined": 0, "events": 2}]
    assert Message.objects.filter(channel_account=account).count() == 2


def test_an_expired_token_is_noticed_on_arrival_and_a_webhook_does_not_hide_it(cast, fake, account):
    fake.access_token = "rotated"  # the profile fetch now gets 401
    deliver(fake, account, [fake.text_event(USER, "hi")])
    assert Message.objects.filter(channel_account=account).exists()  # the message is kept
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected"
    deliver(fake, account, [fake.text_event(USER, "still there?")])  # signed with the secret only
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected"


# --- deliveries that crash, pushes whose answer is lost ----------------------------------------


def run_like_the_worker() -> None:
    """Claim and run every ready delivery task as django_tasks_db's worker does (failures recorded)."""
    from django_tasks_db.management.commands.db_worker import Worker

    worker = Worker(queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False, max_tasks=None, worker_id="test", excluded_queue_names=[])
    for row in DBTaskResult.objects.ready().filter(task_path__endswith="line.tasks.process_delivery"):
        row.claim("test")
        worker.run_task(row)


def test_a_delivery_whose_task_crashed_is_run_again_and_nothing_is_lost(fake, account, monkeypatch):
    from django.db import OperationalError

    from madoguchi.ingest import actions as ingest

    first, second = fake.text_event(USER, "一通目"), fake.text_event(USER, "二通目")
    body, signature = fake.delivery([first, second])
    real = ingest.do_ingest
    calls = {"n": 0}

    def flaky(account, item):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OperationalError("database is locked")
        return real(account, item)

    monkeypatch.setattr(ingest, "do_ingest", flaky)
    assert post(account, body, signature).status_code == 200
    run_like_the_worker()
    assert DBTaskResult.objects.get().status == "FAILED"
    assert Message.objects.filter(channel_account=account).count() == 1  # crashed mid-way
    assert tasks.requeue_deliveries.call() == {"requeued": 0, "quarantined": 0}  # waits a little first
    DBTaskResult.objects.update(finished_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    assert tasks.requeue_deliveries.call() == {"requeued": 1, "quarantined": 0}
    run_like_the_worker()
    assert sorted(Message.objects.values_list("text", flat=True)) == ["一通目", "二通目"]
    assert not DBTaskResult.objects.filter(status="FAILED").exists()
    assert tasks.requeue_deliveries.call() == {"requeued": 0, "quarantined": 0}


def test_a_delivery_whose_worker_died_is_run_again_and_one_that_keeps_failing_is_quarantined(fake, account):
    body, signature = fake.delivery([fake.text_event(USER, "届いていますか")])
    post(account, body, signature)
    row = DBTaskResult.objects.get()
    row.claim("died")  # the worker was killed while running it
    DBTaskResult.objects.filter(pk=row.pk).update(started_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert tasks.requeue_deliveries.call()["requeued"] == 1
    row = DBTaskResult.objects.get()
    assert row.status == "READY" and row.args_kwargs["kwargs"] == {"attempt": 1}
    DBTaskResult.objects.update(status="FAILED", finished_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1), args_kwargs={"args": [account.pk, body.decode()], "kwargs": {"attempt": tasks.MAX_ATTEMPTS}})
    assert tasks.requeue_deliveries.call() == {"requeued": 0, "quarantined": 1}
    assert Quarantine.objects.get().payload == body.decode()
    assert not DBTaskResult.objects.exists()


def test_a_push_whose_answer_was_lost_is_retried_with_the_same_key_and_counts_once(cast, fake, account):
    deliver(fake, account, [fake.text_event(USER, "hi")])
    fake.expire_reply_tokens()
    reply = inbox_actions.do_reply(Message.objects.get(channel_account=account).conversation, author=cast.agent, text="お待たせしました")
    outbox = Outbox.objects.get(message=reply)
    fake.lose_responses = 1
    assert deliver_outbox.call(outbox.pk) == "retrying"
    Outbox.objects.filter(pk=outbox.pk).update(next_attempt_at=dt.datetime.now(dt.UTC))
    deliver_outbox.call(outbox.pk)
    reply.refresh_from_db()
    assert reply.delivery == Delivery.SENT and len(fake.sent) == 1
    assert fake.sent[0]["retry_key"] == str(outbound.uuid.uuid5(outbound.RETRY_KEY_NAMESPACE, outbox.idempotency_key))


def test_a_reply_whose_answer_was_lost_is_not_pushed_again(cast, fake, account):
    deliver(fake, account, [fake.text_event(USER, "hi")])
    reply = inbox_actions.do_reply(Message.objects.get(channel_account=account).conversation, author=cast.agent, text="すぐ確認します")
    outbox = Outbox.objects.get(message=reply)
    fake.lose_responses = 1  # the free reply goes out, its answer is lost
    assert deliver_outbox.call(outbox.pk) == "retrying"
    Outbox.objects.filter(pk=outbox.pk).update(next_attempt_at=dt.datetime.now(dt.UTC))
    deliver_outbox.call(outbox.pk)  # the token is spent: by our first try
    reply.refresh_from_db()
    assert reply.delivery == Delivery.SENT
    assert [s["endpoint"] for s in fake.sent] == ["reply"]
    assert not ChannelAccount.objects.get(pk=account.pk).config.get("line_replying")
