"""X: mentions polled with a cursor (no gaps, no duplicates, rate limits waited out), replies threaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from madoguchi.connectors import health
from madoguchi.connectors.base import OutboundMessage, PermanentError, TemporaryError
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.testing import agent_reply
from madoguchi.connectors.x import inbound, outbound, tasks
from madoguchi.connectors.x.client import TimelinePage
from madoguchi.connectors.x.fake import FakeX
from madoguchi.contacts.models import Identity
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Delivery, Message, Outbox
from madoguchi.inbox.tasks import deliver_outbox
from madoguchi.ingest.models import Post

pytestmark = pytest.mark.django_db
FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "mentions_page.json").read_text())


@pytest.fixture
def fake():
    server = FakeX().start()
    server.add_user("111", "yui_sato", "佐藤 結衣", followers=1234, verified=True)
    server.add_user("222", "ken", "Ken", followers=5)
    yield server
    server.stop()


@pytest.fixture
def account(cast, fake) -> ChannelAccount:
    config, secrets = fake.account_settings()
    return ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="@AcmeSupport", handle="AcmeSupport", config=config, secrets=secrets)


def poll(account: ChannelAccount) -> dict:
    """A poll after a restart: a fresh account row, as a new worker would read it."""
    return inbound.do_poll_mentions(ChannelAccount.objects.get(pk=account.pk), force=True)


def mentions_requests(fake: FakeX) -> int:
    return sum(1 for _, path in fake.requests if "/mentions" in path)


# --- receiving ---------------------------------------------------------------------------------


def test_a_documented_mentions_page_becomes_items_with_author_signals():
    page = TimelinePage.model_validate(FIXTURE)
    users = {u.id: u for u in page.includes.users}
    first, reply, link_only = (inbound.tweet_item(t, users[t.author_id]) for t in page.data)
    assert first.text == "@AcmeSupport 返品の手続きを教えてください & 送料は?"
    assert (first.author.handle, first.author.display_name, first.author.followers) == ("yui_sato", "佐藤 結衣", 1234)
    assert first.language == "ja" and first.public and first.url == "https://x.com/yui_sato/status/1860000000000004000"
    assert reply.reply_to == ["1860000000000002000"] and reply.thread_id == "1860000000000001000"
    assert reply.raw["verified"] is True and reply.author.followers == 250000
    assert link_only.language == ""  # "zxx": no linguistic content


def test_a_mention_arrives_in_the_inbox_with_the_authors_profile(fake, account):
    tweet = fake.post("111", "@AcmeSupport 注文が届きません <至急>")
    assert poll(account)["created"] == 1
    message = Message.objects.get(channel_account=account)
    assert message.text == "@AcmeSupport 注文が届きません <至急>" and message.public
    assert message.external_id == tweet["id"]
    identity = Identity.objects.get(kind="x", external_id="111")
    assert (identity.handle, identity.followers) == ("yui_sato", 1234)
    assert identity.avatar_url.endswith("/111/normal.jpg")
    assert Post.objects.filter(channel_account=account, external_id=tweet["id"]).exists()
    account.refresh_from_db()
    assert account.last_receive_at and health.channel_state(account) == "connected"
    assert account.config["mentions"]["since_id"] == tweet["id"]


def test_the_first_poll_starts_from_the_newest_page_not_all_history(fake, account):
    for i in range(150):
        fake.post("222", f"@AcmeSupport old {i}")
    poll(account)
    assert Message.objects.filter(channel_account=account).count() == 100
    assert mentions_requests(fake) == 1


def test_polling_resumes_after_a_restart_without_gaps_or_duplicates(fake, account, monkeypatch):
    poll(account)  # connected with no mentions yet
    fake.post("111", "@AcmeSupport first")
    poll(account)
    for i in range(230):
        fake.post("222", f"@AcmeSupport 問い合わせ {i}")
    monkeypatch.setattr(inbound, "MAX_PAGES_PER_POLL", 1)  # the worker "dies" after every page
    poll(account)
    state = ChannelAccount.objects.get(pk=account.pk).config["mentions"]
    assert state["next_token"] and state["pending_newest"]
    fake.post("111", "@AcmeSupport arrived while we were paging")
    for _ in range(5):
        poll(account)
    texts = list(Message.objects.filter(channel_account=account).values_list("text", flat=True))
    assert len(texts) == len(set(texts)) == 232
    assert "@AcmeSupport arrived while we were paging" in texts
    assert "next_token" not in ChannelAccount.objects.get(pk=account.pk).config["mentions"]


def test_a_repeated_poll_changes_nothing(fake, account):
    fake.post("111", "@AcmeSupport hello")
    poll(account)
    ChannelAccount.objects.filter(pk=account.pk).update(config={**ChannelAccount.objects.get(pk=account.pk).config, "mentions": {}})
    result = poll(account)  # the cursor was lost: the same page again
    assert result["duplicate"] == 1 and result["created"] == 0
    assert Message.objects.filter(channel_account=account).count() == 1


def test_our_own_replies_in_the_timeline_are_not_ingested_as_customer_messages(cast, fake, account):
    fake.post("111", "@AcmeSupport 助けて")
    poll(account)
    agent_reply(cast, Message.objects.get(channel_account=account), "DMでご連絡ください")
    fake.post(fake.brand_id, "@AcmeSupport self mention")
    poll(account)
    assert Message.objects.filter(channel_account=account, direction="in").count() == 1


def test_a_used_up_window_is_waited_out_not_hammered(fake, account):
    fake.windows["mentions"].remaining = 1
    fake.post("111", "@AcmeSupport hi")
    assert poll(account)["rate_limited_for"] > 0
    before = mentions_requests(fake)
    assert inbound.do_poll_mentions(ChannelAccount.objects.get(pk=account.pk)) == {"skipped": "not due"}
    assert tasks.poll_mentions.call() == {"polled": 0}
    assert mentions_requests(fake) == before
    state = ChannelAccount.objects.get(pk=account.pk).config["mentions"]
    assert abs(state["wait_until"] - fake.windows["mentions"].reset) < 5


def test_a_429_waits_until_the_reset_and_marks_the_account_degraded(fake, account):
    fake.windows["mentions"].remaining = 0
    assert poll(account)["error"] == "rate limited"
    account.refresh_from_db()
    assert health.channel_state(account) == "degraded" and "rate limit" in account.last_error
    assert account.config["mentions"]["wait_until"] >= fake.windows["mentions"].reset - 1


def test_a_refused_token_disconnects_the_account(fake, account):
    fake.bearer_token = "revoked"
    assert poll(account)["error"] == "disconnected"
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected" and "401" in account.last_error
    fake.bearer_token = account.secrets["bearer_token"]
    poll(account)
    account.refresh_from_db()
    assert health.channel_state(account) == "connected"


def test_a_server_error_is_recorded_and_the_cursor_kept(fake, account):
    fake.post("111", "@AcmeSupport hi")
    poll(account)
    since = ChannelAccount.objects.get(pk=account.pk).config["mentions"]["since_id"]
    fake.fail("/2/users/", 503, "Service Unavailable")
    assert "503" in poll(account)["error"]
    assert ChannelAccount.objects.get(pk=account.pk).config["mentions"]["since_id"] == since


def test_the_clock_task_polls_each_due_account_once(fake, account):
    fake.post("111", "@AcmeSupport hi")
    assert tasks.poll_mentions.call() == {"polled": 1}
    assert tasks.poll_mentions.call() == {"polled": 0}  # next poll in config["poll_seconds"]
    assert Message.objects.filter(channel_account=account).count() == 1


# --- replying ----------------------------------------------------------------------------------


def test_a_reply_is_threaded_to_the_mention_and_the_answer_continues_the_conversation(cast, fake, account):
    mention = fake.post("111", "@AcmeSupport 注文が届きません")
    poll(account)
    inbound_message = Message.objects.get(channel_account=account)
    reply = agent_reply(cast, inbound_message, "@yui_sato ご不便をおかけしています。DMで注文番号をお送りください。")
    assert reply.delivery == Delivery.SENT
    assert fake.posted == [{"id": reply.external_id, "text": reply.text, "in_reply_to_tweet_id": mention["id"]}]
    fake.post("111", "@AcmeSupport 送りました", in_reply_to=reply.external_id)
    poll(account)
    answer = Message.objects.filter(channel_account=account, direction="in").latest("id")
    assert answer.conversation_id == inbound_message.conversation_id


def test_a_reply_to_a_deleted_post_fails_with_a_clear_reason(cast, fake, account):
    mention = fake.post("111", "@AcmeSupport 消します")
    poll(account)
    fake.delete(mention["id"])
    reply = agent_reply(cast, Message.objects.get(channel_account=account), "承知しました")
    assert reply.delivery == Delivery.FAILED
    assert "deleted or is not visible" in reply.delivery_error


def test_the_same_text_to_another_post_is_refused_as_duplicate_content(fake, account):
    first, second = fake.post("111", "@AcmeSupport hi"), fake.post("222", "@AcmeSupport hello")
    outbound.adapter.send(account, OutboundMessage(idempotency_key="k1", text="Thanks for reaching out!", recipient="111", in_reply_to=first["id"], public=True))
    with pytest.raises(PermanentError, match="duplicate"):
        outbound.adapter.send(account, OutboundMessage(idempotency_key="k1b", text="Thanks for reaching out!", recipient="222", in_reply_to=second["id"], public=True))
    assert len(fake.posted) == 1


def test_a_reply_whose_response_was_lost_is_not_posted_twice(fake, account):
    mention = fake.post("111", "@AcmeSupport hi")
    message = OutboundMessage(idempotency_key="mdg-7", text="See https://example.com/help & more", recipient="111", in_reply_to=mention["id"], public=True)
    fake.lose_responses = 1  # X posts it, but the answer never arrives
    with pytest.raises(TemporaryError):
        outbound.adapter.send(account, message)
    assert len(fake.posted) == 1
    result = outbound.adapter.send(ChannelAccount.objects.get(pk=account.pk), message)  # the outbox retries
    assert len(fake.posted) == 1 and result.external_id == fake.posted[0]["id"]
    assert ("GET", f"/2/users/{fake.brand_id}/tweets") in [(m, p.split("?")[0]) for m, p in fake.requests]
    assert "mdg-7" not in ChannelAccount.objects.get(pk=account.pk).config.get("x_sending", {})


def test_a_retry_refused_as_duplicate_content_is_recognised_as_sent(fake, account):
    mention = fake.post("111", "@AcmeSupport hi")
    message = OutboundMessage(idempotency_key="mdg-8", text="ありがとうございます", recipient="111", in_reply_to=mention["id"], public=True)
    sent = outbound.adapter.send(account, message)
    # The worker died before recording the result, and the retry carries no trace of the first try.
    account = ChannelAccount.objects.get(pk=account.pk)
    assert outbound.adapter.send(account, message).external_id == sent.external_id
    assert len(fake.posted) == 1


def test_a_dm_whose_response_was_lost_is_not_sent_twice(fake, account, monkeypatch):
    message = OutboundMessage(idempotency_key="mdg-9", text="DMです", recipient="111", public=False)
    real = outbound.XClient.send_dm

    def lost(self, participant_id, text):
        real(self, participant_id, text)
        raise outbound.XAPIError(0, "ReadTimeout: timed out", timed_out=True)

    monkeypatch.setattr(outbound.XClient, "send_dm", lost)
    with pytest.raises(TemporaryError):
        outbound.adapter.send(account, message)
    monkeypatch.setattr(outbound.XClient, "send_dm", real)
    result = outbound.adapter.send(ChannelAccount.objects.get(pk=account.pk), message)
    assert len(fake.dms) == 1 and result.external_id == fake.dms[0]["id"]


def test_the_length_limit_counts_japanese_double():
    assert outbound.weighted_length("a" * 280) == 280
    assert outbound.weighted_length("あ" * 140) == 280
    assert outbound.weighted_length("see https://example.com/a/very/long/path/indeed") == 4 + 23


def test_a_reply_over_280_is_refused_before_sending(fake, account):
    assert outbound.adapter.max_length(account) == 280
    with pytest.raises(PermanentError, match="280"):
        outbound.adapter.send(account, OutboundMessage(idempotency_key="k2", text="あ" * 141, recipient="111", public=True))
    assert not fake.requests


def test_a_used_up_post_window_makes_the_outbox_wait_without_calling(fake, account):
    fake.windows["tweets"].remaining = 1
    outbound.adapter.send(account, OutboundMessage(idempotency_key="k3", text="one", recipient="111", public=True))
    calls = len(fake.requests)
    with pytest.raises(TemporaryError) as exc:
        outbound.adapter.send(account, OutboundMessage(idempotency_key="k4", text="two", recipient="111", public=True))
    assert len(fake.requests) == calls
    assert 800 < exc.value.retry_after <= 901


def test_a_429_on_posting_is_retried_after_the_reset(cast, fake, account):
    fake.post("111", "@AcmeSupport hi")
    poll(account)
    fake.windows["tweets"].remaining = 0
    reply = inbox_actions.do_reply(Message.objects.get(channel_account=account).conversation, author=cast.agent, text="ok")
    outbox = Outbox.objects.get(message=reply)
    assert deliver_outbox.call(outbox.pk) == "retrying"
    outbox.refresh_from_db()
    assert outbox.next_attempt_at.timestamp() == pytest.approx(fake.windows["tweets"].reset, abs=5)


def test_a_revoked_user_token_fails_the_reply_and_disconnects(cast, fake, account):
    fake.post("111", "@AcmeSupport hi")
    poll(account)
    fake.access_token = "revoked"
    reply = agent_reply(cast, Message.objects.get(channel_account=account), "ok")
    assert reply.delivery == Delivery.FAILED and "401" in reply.delivery_error
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected"


def test_a_private_reply_goes_out_as_a_direct_message(fake, account):
    result = outbound.adapter.send(account, OutboundMessage(idempotency_key="k5", text="DMです", recipient="111", public=False))
    assert fake.dms == [{"to": "111", "text": "DMです", "id": result.external_id}]



# --- direct messages ---------------------------------------------------------------------------


def test_direct_messages_arrive_privately_and_resume_without_gaps(fake, account, monkeypatch):
    inbound.do_poll_dms(account, force=True)  # connected with no DMs yet
    first = fake.dm("111", "DMで失礼します。注文番号は A-123 です")
    inbound.do_poll_dms(ChannelAccount.objects.get(pk=account.pk), force=True)
    message = Message.objects.get(channel_account=account)
    assert (message.text, message.public, message.external_id) == ("DMで失礼します。注文番号は A-123 です", False, f"dm:{first['id']}")
    assert message.conversation.thread_key == f"dm:{first['dm_conversation_id']}"
    for i in range(150):
        fake.dm("222", f"メッセージ {i}")
    fake.dm(fake.brand_id, "こちらから送ったDM", to="222")
    monkeypatch.setattr(inbound, "MAX_PAGES_PER_POLL", 1)
    for _ in range(4):
        inbound.do_poll_dms(ChannelAccount.objects.get(pk=account.pk), force=True)
    texts = list(Message.objects.filter(channel_account=account).values_list("text", flat=True))
    assert len(texts) == len(set(texts)) == 151
    assert "こちらから送ったDM" not in texts


def test_a_reply_to_a_direct_message_goes_back_as_one(cast, fake, account):
    fake.dm("111", "助けてください")
    inbound.do_poll_dms(account, force=True)
    reply = agent_reply(cast, Message.objects.get(channel_account=account), "DMで承ります")
    assert reply.delivery == Delivery.SENT
    assert fake.dms == [{"to": "111", "text": "DMで承ります", "id": reply.external_id}]
    assert not fake.posted


def test_the_clock_task_polls_dms_when_enabled(fake, account):
    ChannelAccount.objects.filter(pk=account.pk).update(config={**account.config, "poll_dms": True})
    fake.dm("111", "hello")
    fake.post("222", "@AcmeSupport hi")
    assert tasks.poll_mentions.call() == {"polled": 2}
    assert Message.objects.filter(channel_account=account).count() == 2


def test_mentions_and_dms_are_kept_when_the_workspace_has_listening_rules(cast, fake, account):
    from madoguchi.listening.actions import do_save_rule

    do_save_rule(cast.ws, cast.brand, {"name": "product names", "any_of": ["acmephone"]})
    fake.post("111", "@AcmeSupport 届きません")
    fake.dm("222", "DMです")
    inbound.do_poll_mentions(account, force=True)
    inbound.do_poll_dms(ChannelAccount.objects.get(pk=account.pk), force=True)
    assert Message.objects.filter(channel_account=account).count() == 2


def test_x_rate_headers_are_read_by_the_shared_rate_limit():
    import time

    import httpx

    from madoguchi.connectors.ratelimit import RateLimit
    from madoguchi.connectors.x.client import XAPIError, XClient

    reset = int(time.time()) + 600
    headers = {"x-rate-limit-limit": "300", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}
    transport = httpx.MockTransport(lambda request: httpx.Response(429, headers=headers, json={"title": "Too Many Requests"}))
    account = ChannelAccount(config={"api_base": "https://api.x.example"}, secrets={"bearer_token": "t"})
    with XClient(account, transport=transport) as client, pytest.raises(XAPIError) as exc:
        client.mentions("42")
    assert isinstance(exc.value.rate, RateLimit)
    assert (exc.value.rate.limit, exc.value.rate.remaining, exc.value.rate.reset) == (300, 0, float(reset))
    assert exc.value.rate.wait_seconds(now=reset - 100) == 100
