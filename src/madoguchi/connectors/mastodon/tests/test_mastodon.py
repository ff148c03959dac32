"""Mastodon: notifications polled with a cursor and streamed (no gaps, no duplicates, reconnects
caught up), every item kind kept, replies threaded with the right visibility and idempotency key,
rate limits obeyed, a refused token disconnects, listening hashtags and keywords reach the stream."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.urls import reverse

from madoguchi.connectors import health
from madoguchi.connectors.base import (
    InboundEvent,
    InboundItem,
    OutboundMessage,
    PermanentError,
    TemporaryError,
)
from madoguchi.connectors.mastodon import inbound, outbound, stream, tasks
from madoguchi.connectors.mastodon.client import (
    MastodonClient,
    Notification,
    RateLimit,
    iter_sse,
    parse_links,
    query_value,
)
from madoguchi.connectors.mastodon.fake import FakeMastodon
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.queries import composer_hints
from madoguchi.connectors.testing import agent_reply, worker_stopping
from madoguchi.contacts.models import Identity
from madoguchi.inbox.models import Delivery, Message, MessageEvent, Outbox
from madoguchi.ingest.models import Post
from madoguchi.listening import actions as listening
from madoguchi.listening.models import ListeningRule

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def fake():
    server = FakeMastodon().start()
    server.yui = server.add_account("yui", "佐藤 結衣", followers=1234, domain="mstdn.jp")["id"]
    server.ken = server.add_account("ken", "Ken", followers=5, bot=True, domain="fosstodon.org")["id"]
    yield server
    server.stop()


@pytest.fixture
def account(cast, fake) -> ChannelAccount:
    config, secrets = fake.account_settings()
    return ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="mastodon", name="@acme", handle="acme", config=config, secrets=secrets)


def fresh(account: ChannelAccount) -> ChannelAccount:
    """The account as a new worker (after a restart) reads it."""
    return ChannelAccount.objects.get(pk=account.pk)


def poll(account: ChannelAccount) -> dict:
    return inbound.do_poll_notifications(fresh(account), force=True)


def notification_calls(fake: FakeMastodon) -> int:
    return sum(1 for _, path in fake.requests if path.startswith("/api/v1/notifications"))


def mention(fake: FakeMastodon, who: str, text: str, **kwargs) -> dict:
    return fake.post(who, f"@acme {text}", **kwargs)


# --- parsing real-shaped payloads ----------------------------------------------------------------


def test_a_documented_notifications_page_becomes_items_and_events():
    page = fixture("notifications_page.json")
    things = [inbound.notification_to(Notification.model_validate(raw), raw, own_id="14715") for raw in page["body"]]
    edit, follow, boost, favourite, dm, public = things
    assert isinstance(public, InboundItem) and public.public and public.reply_to == ["113500000000000070"]
    assert public.text == (
        "@acme 返品の手続きを教えてください & 送料は？ https://shop.example/orders/1234?ref=mastodon-support-thread #acme\n\nよろしくお願いします"
    )
    assert "<script" not in public.html and "返品の手続き" in public.html
    assert (public.author.handle, public.author.display_name, public.author.followers) == ("yui@mstdn.jp", "佐藤 結衣", 1234)
    assert public.language == "ja" and public.url == "https://mstdn.jp/@yui/113500000000000080"
    assert public.raw["visibility"] == "unlisted" and public.raw["acct"] == "yui@mstdn.jp"
    assert public.raw["bot"] is False and (public.raw["likes"], public.raw["reposts"]) == (0, 0)
    assert isinstance(dm, InboundItem) and not dm.public and dm.thread_id == "dm:555001"
    assert dm.text == "@acme my order number is 1234, the parcel never came.\nCan you check?" and dm.language == "en"
    assert isinstance(favourite, InboundEvent) and (favourite.kind, favourite.emoji, favourite.target_external_id) == ("reaction", "⭐", "113500000000000090")
    assert isinstance(boost, InboundEvent) and boost.emoji == "🔁" and boost.external_id == "notification:34975700"
    assert isinstance(follow, InboundEvent) and follow.kind == "follow" and follow.author.handle == "haskal@cybre.space"
    assert isinstance(edit, InboundEvent) and edit.kind == "edit" and edit.target_external_id == "113500000000000100"
    assert edit.text == "@acme 注文番号は 1234 です（訂正）" and edit.external_id.endswith("2026-11-20T10:40:01.000Z")


def test_our_own_mentions_are_not_customer_items():
    raw = fixture("notifications_page.json")["body"][5]
    assert inbound.notification_to(Notification.model_validate(raw), raw, own_id="971724") is None


def test_server_sent_events_are_decoded():
    events = list(iter_sse(iter((FIXTURES / "stream_user.txt").read_text().split("\n"))))
    assert [e.event for e in events] == ["notification", "filters_changed", "status.update", "delete"]
    assert events[0].payload["status"]["id"] == "108914343542683797" and events[1].payload is None
    assert events[2].payload["edited_at"] and events[3].payload == "108914343542683797"


def test_link_headers_and_rate_limit_headers_are_read():
    links = parse_links(fixture("notifications_page.json")["link"])
    assert query_value(links["prev"], "min_id") == "34975900" and query_value(links["next"], "max_id") == "34975500"
    rate = RateLimit.from_headers(httpx.Headers({"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2026-11-23T10:05:00.000Z"}), "x-ratelimit-")
    assert rate.reset == pytest.approx(1795428300.0) and rate.wait_seconds(now=1795428290.0) == pytest.approx(10.0)
    assert RateLimit(300, 11, 0).wait_seconds(keep=10) == 0.0


def test_the_documented_user_stream_gives_a_mention_then_its_edit_and_deletion(account):
    events = list(iter_sse(iter((FIXTURES / "stream_user.txt").read_text().split("\n"))))
    outcomes = [stream._dispatch(account, "user", e) for e in events]
    assert outcomes == ["created", "ignored", "event", "event"]
    message = Message.objects.get(channel_account=account, external_id="108914343542683797")
    assert message.text == "@trwnh test (edited)" and message.edited_at and message.deleted_at
    assert message.identity.handle == "a@pl.nulled.red" and message.raw["bot"] is True
    assert message.conversation.thread_key == "108914343542683797"  # a top-level public mention starts a thread
    assert [stream._dispatch(account, "user", e) for e in events] == ["duplicate", "ignored", "event", "event"]
    assert MessageEvent.objects.filter(channel_account=account).count() == 2  # delivered twice, kept once


def test_the_instance_configuration_sets_the_length_limit_and_streaming_host(account):
    body = fixture("instance_v2.json")["body"]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    with MastodonClient(account, transport=transport) as client:
        inbound.ensure_instance(account, client)
    account = fresh(account)
    assert account.config["max_characters"] == 1000 and account.config["streaming_url"] == "https://mastodon.example"
    assert outbound.adapter.max_length(account) == 1000


def test_documented_hashtag_and_search_statuses_become_stream_items(account):
    status = fixture("search_statuses.json")["body"]["statuses"][0]
    assert inbound.handle_status(account, status) == "created"
    post = Post.objects.get(channel_account=account, external_id="109348699525106378")
    assert post.conversation_id is None and post.text.startswith("My new #acme kettle")
    assert post.identity.followers == 2307 and post.language == "en"
    assert post.raw["visibility"] == "public" and post.influence > 0  # followers count for triage


# --- receiving by polling ------------------------------------------------------------------------


def test_a_mention_and_a_dm_arrive_with_the_authors_profile(fake, account):
    public = mention(fake, fake.yui, "注文が届きません <至急>")
    dm = mention(fake, fake.ken, "my order #1234 is late", visibility="direct", language="en")
    result = poll(account)
    assert result["created"] == 2
    message = Message.objects.get(channel_account=account, external_id=public["id"])
    assert message.text == "@acme 注文が届きません <至急>" and message.public
    private = Message.objects.get(channel_account=account, external_id=dm["id"])
    assert not private.public and private.conversation_id != message.conversation_id
    assert private.conversation.thread_key == f"dm:{fake.ken}"
    identity = Identity.objects.get(kind="mastodon", external_id=fake.yui)
    assert (identity.handle, identity.followers, identity.display_name) == ("yui@mstdn.jp", 1234, "佐藤 結衣")
    assert private.raw["bot"] is True and private.language == "en"
    account.refresh_from_db()
    assert account.config["account_id"] == fake.brand_id and account.config["max_characters"] == 500
    assert account.last_receive_at and health.channel_state(account) == "connected"


def test_polling_resumes_after_a_restart_without_gaps_or_duplicates(fake, account, monkeypatch):
    poll(account)  # connected with nothing yet
    assert fresh(account).config["notifications"]["min_id"] == "0"
    for i in range(85):
        mention(fake, fake.ken, f"問い合わせ {i}")
    monkeypatch.setattr(inbound, "MAX_PAGES_PER_POLL", 1)  # the worker "dies" after every page
    poll(account)
    cursor = fresh(account).config["notifications"]["min_id"]
    assert Message.objects.filter(channel_account=account).count() == 40
    mention(fake, fake.yui, "arrived while we were paging")
    for _ in range(3):
        poll(account)
    texts = list(Message.objects.filter(channel_account=account).values_list("text", flat=True))
    assert len(texts) == len(set(texts)) == 86
    assert "@acme arrived while we were paging" in texts
    assert int(fresh(account).config["notifications"]["min_id"]) > int(cursor)
    before = notification_calls(fake)
    assert poll(account)["created"] == 0 and notification_calls(fake) == before + 1


def test_a_page_fetched_again_changes_nothing(fake, account):
    mention(fake, fake.yui, "hello")
    fake.follow(fake.ken)
    poll(account)
    ChannelAccount.objects.filter(pk=account.pk).update(config={**fresh(account).config, "notifications": {}})
    result = poll(account)  # the cursor was lost: the same page again
    assert result["duplicate"] == 1 and result["created"] == 0
    assert Message.objects.filter(channel_account=account).count() == 1
    assert MessageEvent.objects.filter(channel_account=account, kind="follow").count() == 1


def test_favourites_boosts_follows_edits_and_deletes_are_kept_as_events(cast, fake, account):
    asked = mention(fake, fake.yui, "返品できますか")
    poll(account)
    inbound_message = Message.objects.get(channel_account=account, external_id=asked["id"])
    reply = agent_reply(cast, inbound_message, "はい、30日以内なら返品できます")
    assert reply.delivery == Delivery.SENT
    fake.favourite(fake.yui, reply.external_id)
    fake.reblog(fake.ken, reply.external_id)
    fake.follow(fake.ken)
    fake.edit(asked["id"], "@acme 返品できますか？（レシートなし）", notify=True)
    poll(account)
    events = {e.kind + e.emoji: e for e in MessageEvent.objects.filter(channel_account=account)}
    assert events["reaction⭐"].message_id == reply.pk and events["reaction🔁"].message_id == reply.pk
    assert events["follow"].message_id is None and events["follow"].identity.external_id == fake.ken
    inbound_message.refresh_from_db()
    assert inbound_message.text == "@acme 返品できますか？（レシートなし）" and inbound_message.edited_at
    assert events["edit"].previous_text == "@acme 返品できますか"
    # A deletion only comes through the stream: `delete` with the bare id.
    assert stream._dispatch(account, "user", next(iter_sse(iter(["event: delete", f"data: {asked['id']}", ""])))) == "event"
    inbound_message.refresh_from_db()
    assert inbound_message.deleted_at is not None and inbound_message.text  # the original is kept


def test_a_used_up_window_is_waited_out_not_hammered(fake, account):
    fake.window.remaining = inbound.RESERVE_FOR_SENDING + 3  # 2 calls (credentials, instance) then the page
    mention(fake, fake.yui, "hi")
    assert poll(account)["rate_limited_for"] > 0
    before = len(fake.requests)
    assert inbound.do_poll_notifications(fresh(account)) == {"skipped": "not due"}
    assert len(fake.requests) == before
    assert abs(fresh(account).config["rate_limit"]["reset"] - fake.window.reset) < 2


def test_a_429_waits_for_the_reset_and_marks_the_account_degraded(fake, account):
    fake.window.remaining = 0
    assert poll(account)["error"] == "rate limited"
    account.refresh_from_db()
    assert health.channel_state(account) == "degraded" and "rate limit" in account.last_error
    assert account.config["rate_limit"]["wait_until"] >= fake.window.reset - 2


def test_an_invalid_token_disconnects_the_account_until_it_works_again(fake, account):
    fake.access_token = "revoked"
    assert poll(account)["error"] == "disconnected"
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected" and "access token is invalid" in account.last_error
    fake.access_token = account.secrets["access_token"]
    poll(account)
    account.refresh_from_db()
    assert health.channel_state(account) == "connected"


def test_a_server_error_keeps_the_cursor(fake, account):
    mention(fake, fake.yui, "hi")
    poll(account)
    cursor = fresh(account).config["notifications"]["min_id"]
    fake.fail("/api/v1/notifications", 503, "Service Unavailable")
    assert "503" in poll(account)["error"]
    assert fresh(account).config["notifications"]["min_id"] == cursor
    assert health.channel_state(fresh(account)) == "degraded"


# --- receiving by streaming ----------------------------------------------------------------------


def _run_stream(account: ChannelAccount, driver, stop) -> dict:
    thread = threading.Thread(target=driver, daemon=True)
    thread.start()
    try:
        return stream.do_stream(fresh(account), seconds=20, stop=stop, backoff_start=0.05)
    finally:
        thread.join(5)


@pytest.mark.slow
def test_the_stream_delivers_and_a_reconnect_catches_up_what_was_missed(fake, account):
    before = mention(fake, fake.yui, "sent before the worker started")
    texts: list[str] = []

    def driver():
        assert fake.wait_for_streams(1)
        texts.append(mention(fake, fake.yui, "live on the stream")["id"])
        # The stream drops; this one is said while nobody listens, then the client reconnects.
        fake.drop_streams(then=lambda: texts.append(mention(fake, fake.ken, "said while disconnected")["id"]))
        assert fake.wait_for_streams(2)
        texts.append(mention(fake, fake.yui, "live again")["id"])

    def done() -> bool:
        return Message.objects.filter(channel_account=account).count() >= 4 and len(texts) == 3

    result = _run_stream(account, driver, done)
    ids = set(Message.objects.filter(channel_account=account).values_list("external_id", flat=True))
    assert ids == {before["id"], *texts} and Message.objects.filter(channel_account=account).count() == 4
    assert result["connections"] == 2 and result["reconnects"] == 1
    assert fresh(account).config["notifications"]["min_id"]  # the catch-up polls moved the cursor
    assert "lease_until" not in fresh(account).config["stream"]


@pytest.mark.slow
def test_a_stopping_worker_ends_the_streaming_session_and_frees_the_account(fake, account):
    with worker_stopping(after=0.5):
        result = tasks.stream_account.call(account.pk)
    assert result["stopped"] and result["connections"] >= 1
    assert tasks._streaming_due(fresh(account), time.time())  # the next session may start at once


def test_an_invalid_token_ends_the_stream_and_disconnects(fake, account):
    fake.access_token = "revoked"
    result = stream.do_stream(fresh(account), seconds=5, backoff_start=0.05)
    assert result["error"] == "disconnected" and health.channel_state(fresh(account)) == "disconnected"


@pytest.mark.slow
def test_hashtag_listening_items_reach_the_stream_route(cast, fake, account):
    ListeningRule.objects.update_or_create(workspace=cast.ws, name="Acme tags", defaults={"brand": cast.brand, "any_of": ["#acme", "ケトル"]})
    listening.forget_compiled_rules()
    assert inbound.listening_terms(fresh(account)) == (["acme"], ["ケトル"])
    old = fake.post(fake.ken, "older #acme post")
    ids: list[str] = []

    def driver():
        assert fake.wait_for_streams(2)  # the user stream and #acme
        ids.append(fake.post(fake.yui, "My #acme kettle broke")["id"])
        ids.append(fake.post(fake.yui, "nothing to do with us #cats")["id"])

    def done() -> bool:
        return Post.objects.filter(channel_account=account, external_id__in=ids[:1]).exists()

    result = _run_stream(account, driver, done)
    assert result["connections"] == 2
    posts = Post.objects.filter(channel_account=account)
    assert set(posts.values_list("external_id", flat=True)) == {old["id"], ids[0]}  # caught up, then streamed
    assert all(p.conversation_id is None for p in posts)
    assert not Message.objects.filter(channel_account=account).exists()


def test_keywords_are_polled_by_search_with_a_cursor(cast, fake, account):
    ListeningRule.objects.create(workspace=cast.ws, brand=cast.brand, name="kettle", any_of=["ケトル"])
    listening.forget_compiled_rules()
    fake.post(fake.yui, "Acmeのケトルが壊れた")
    first = inbound.do_poll_listening(fresh(account), force=True)
    assert first["created"] == 1
    fake.post(fake.ken, "ケトル、お湯が沸かない")
    fake.post(fake.ken, "unrelated")
    second = inbound.do_poll_listening(fresh(account), force=True)
    assert second["created"] == 1 and second.get("duplicate", 0) == 0
    assert Post.objects.filter(channel_account=account, conversation__isnull=True).count() == 2
    assert "search:ケトル" in fresh(account).config["listening"]["cursors"]


# --- replying ------------------------------------------------------------------------------------


def test_a_reply_is_threaded_with_the_visibility_of_the_status_and_the_outbox_key(cast, fake, account):
    asked = mention(fake, fake.yui, "注文が届きません", visibility="unlisted")
    poll(account)
    message = Message.objects.get(channel_account=account, external_id=asked["id"])
    reply = agent_reply(cast, message, "ご不便をおかけしています。")
    assert reply.delivery == Delivery.SENT
    key = Outbox.objects.get(message=reply).idempotency_key
    assert fake.posted == [{"id": reply.external_id, "status": "@yui@mstdn.jp ご不便をおかけしています。", "in_reply_to_id": asked["id"], "visibility": "unlisted", "language": "ja", "idempotency_key": key}]
    answer = fake.post(fake.yui, "@acme ありがとう", in_reply_to=reply.external_id)
    poll(account)
    assert Message.objects.get(channel_account=account, external_id=answer["id"]).conversation_id == message.conversation_id


def test_a_dm_is_answered_directly_mentioning_the_customer(cast, fake, account):
    dm = mention(fake, fake.ken, "private question", visibility="direct", language="en")
    poll(account)
    reply = agent_reply(cast, Message.objects.get(external_id=dm["id"]), "Sure, send us the order number.")
    assert reply.delivery == Delivery.SENT and not reply.public
    assert fake.posted[0]["visibility"] == "direct" and fake.posted[0]["status"].startswith("@ken@fosstodon.org ")


def test_the_composer_says_who_will_see_the_reply(fake, account):
    public = mention(fake, fake.yui, "hi", visibility="unlisted")
    dm = mention(fake, fake.ken, "secret", visibility="direct")
    poll(account)
    unlisted_hint = composer_hints(Message.objects.get(external_id=public["id"]).conversation)
    direct_hint = composer_hints(Message.objects.get(external_id=dm["id"]).conversation)
    assert "@yui@mstdn.jp" in unlisted_hint.notice and "quiet public" in unlisted_hint.notice and "23" in unlisted_hint.notice
    assert "@ken@fosstodon.org" in direct_hint.notice and "direct message" in direct_hint.notice
    assert direct_hint.max_length == 500 and not direct_hint.weighted


def test_the_conversation_page_shows_the_notice_and_the_limit(cast, client_for, fake, account):
    dm = mention(fake, fake.ken, "secret", visibility="direct")
    poll(account)
    conversation = Message.objects.get(external_id=dm["id"]).conversation
    page = client_for(cast.admin).get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert 'id="channel-notice"' in page and "@ken@fosstodon.org" in page and 'data-max="500"' in page


def test_a_retried_send_never_posts_twice(fake, account):
    asked = mention(fake, fake.yui, "hi")
    poll(account)
    message = OutboundMessage(idempotency_key="outbox-42", text="こんにちは", recipient=fake.yui, in_reply_to=asked["id"], public=True)
    first = outbound.adapter.send(fresh(account), message)
    second = outbound.adapter.send(fresh(account), message)  # e.g. after a timeout we never saw answered
    assert first.external_id == second.external_id and len(fake.posted) == 1


def test_the_length_limit_comes_from_the_instance_and_counts_links_as_23(cast, fake, account):
    fake.max_characters = 60
    asked = mention(fake, fake.yui, "hi")
    poll(account)
    message = Message.objects.get(external_id=asked["id"])
    assert outbound.adapter.max_length(fresh(account)) == 60
    assert composer_hints(message.conversation).max_length == 60
    long_link = "https://shop.example/" + "x" * 200
    ok = OutboundMessage(idempotency_key="k1", text=f"詳しくはこちら {long_link}", recipient=fake.yui, in_reply_to=asked["id"], public=True)
    assert outbound.adapter.send(fresh(account), ok).external_id
    too_long = OutboundMessage(idempotency_key="k2", text="あ" * 61, recipient=fake.yui, in_reply_to=asked["id"], public=True)
    with pytest.raises(PermanentError, match="at most 60 characters"):
        outbound.adapter.send(fresh(account), too_long)


def test_a_429_on_send_is_retried_after_the_reset_without_calling_again(fake, account):
    asked = mention(fake, fake.yui, "hi")
    poll(account)
    fake.window.remaining = 0
    message = OutboundMessage(idempotency_key="k", text="hello", recipient=fake.yui, in_reply_to=asked["id"], public=True)
    with pytest.raises(TemporaryError) as first:
        outbound.adapter.send(fresh(account), message)
    assert first.value.retry_after == pytest.approx(fake.window.reset - __import__("time").time(), abs=3)
    calls = len(fake.requests)
    with pytest.raises(TemporaryError):
        outbound.adapter.send(fresh(account), message)
    assert len(fake.requests) == calls and fake.posted == []


def test_a_reply_to_a_deleted_status_fails_with_a_clear_reason(cast, fake, account):
    asked = mention(fake, fake.yui, "消します")
    poll(account)
    fake.delete(asked["id"])
    reply = agent_reply(cast, Message.objects.get(external_id=asked["id"]), "承知しました")
    assert reply.delivery == Delivery.FAILED
    assert "deleted" in Outbox.objects.get(message=reply).last_error


def test_an_invalid_token_on_send_fails_and_disconnects(fake, account):
    asked = mention(fake, fake.yui, "hi")
    poll(account)
    fake.access_token = "expired"
    with pytest.raises(PermanentError, match="401"):
        outbound.adapter.send(fresh(account), OutboundMessage(idempotency_key="k", text="x", recipient=fake.yui, in_reply_to=asked["id"], public=True))
    assert health.channel_state(fresh(account)) == "disconnected"


# --- the clock ---------------------------------------------------------------------------------


def test_the_clock_polls_when_streaming_is_off_and_queues_a_session_otherwise(fake, account):
    mention(fake, fake.yui, "hi")  # streaming is opt-in: polling by default
    assert tasks.poll_accounts.call()["polled"] == 1
    assert tasks.poll_accounts.call()["polled"] == 0  # next poll in config["poll_seconds"]
    assert Message.objects.filter(channel_account=account).count() == 1
    ChannelAccount.objects.filter(pk=account.pk).update(config={**fresh(account).config, "streaming": True})
    assert tasks.poll_accounts.call()["streams_queued"] == 1
    assert tasks.poll_accounts.call()["streams_queued"] == 0  # one session at a time


def test_the_client_refuses_an_account_without_a_server(cast):
    account = ChannelAccount(workspace=cast.ws, brand=cast.brand, kind="mastodon", name="x", config={})
    with pytest.raises(Exception, match="api_base_url"):
        MastodonClient(account)
