"""Bluesky: notifications polled with a resumable mark, sessions refreshed, Jetstream filtered by the
listening rules, replies threaded with the right root and parent, one post per outbox row."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from madoguchi.connectors import health
from madoguchi.connectors.base import (
    InboundEvent,
    InboundItem,
    OutboundMessage,
    PermanentError,
    TemporaryError,
)
from madoguchi.connectors.bluesky import inbound, outbound, tasks
from madoguchi.connectors.bluesky.client import (
    BlueskyClient,
    NotificationPage,
    PostView,
    Session,
    jwt_expiry,
    tid_for,
)
from madoguchi.connectors.bluesky.fake import FakeBluesky, FakeJetstream, is_tid
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.testing import agent_reply, worker_stopping
from madoguchi.contacts.models import Identity
from madoguchi.inbox.models import Delivery, Message, MessageEvent, Outbox
from madoguchi.ingest.models import Post
from madoguchi.listening.actions import do_import_rules, forget_compiled_rules

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"
YUI = "did:plc:yui4sato2hjw6tq3cvmsbnxz"
KEN = "did:plc:fan5kd2qwy3mxbnl4rfzjq7o"
BRAND = "did:plc:acmesupport7x2kq4nwzvb5"
MENTION = "@acme-support.bsky.social 注文した商品が届きません"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def _fresh_caches():
    forget_compiled_rules()
    inbound._profiles.clear()
    yield
    forget_compiled_rules()
    inbound._profiles.clear()


@pytest.fixture
def fake():
    server = FakeBluesky(brand_did=BRAND).start()
    server.add_user(YUI, "yui-sato.bsky.social", "佐藤 結衣", followers=1234)
    server.add_user(KEN, "ken.bsky.social", "Ken", followers=5)
    yield server
    server.stop()


@pytest.fixture
def jetstream():
    server = FakeJetstream().start()
    yield server
    server.stop()


@pytest.fixture
def account(cast, fake) -> ChannelAccount:
    config, secrets = fake.account_settings()
    return ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="bluesky", name="@acme-support", handle="acme-support.bsky.social", config=config, secrets=secrets)


@pytest.fixture
def rules(cast):
    return do_import_rules(
        cast.ws,
        """
rules:
  - name: own account
    accounts: ["@acme-support.bsky.social"]
  - name: phones
    any_of: [アイフォン, iphone, "au"]
""",
    )


def fresh(account: ChannelAccount) -> ChannelAccount:
    """The account as a new worker reads it after a restart."""
    return ChannelAccount.objects.get(pk=account.pk)


def poll(account: ChannelAccount) -> dict:
    return inbound.do_poll_notifications(fresh(account), force=True)


def calls(fake: FakeBluesky, nsid: str) -> int:
    return sum(1 for _, path in fake.requests if f"/xrpc/{nsid}" in path)


# --- shapes ------------------------------------------------------------------------------------


def test_every_documented_notification_kind_becomes_an_item_an_event_or_nothing():
    page = NotificationPage.model_validate(fixture("notifications.json"))
    follow, like, reply, quote, mention, starter = (inbound.notification_entry(n, None) for n in page.notifications)
    assert isinstance(follow, InboundEvent) and follow.kind == "follow" and follow.author.handle == "ken.bsky.social"
    assert isinstance(like, InboundEvent) and like.kind == "reaction" and like.emoji == "like"
    assert like.target_external_id == f"at://{BRAND}/app.bsky.feed.post/3lbq7s5vqbk2a"
    assert isinstance(reply, InboundItem) and reply.public and reply.language == "ja"
    assert reply.reply_to == [f"at://{BRAND}/app.bsky.feed.post/3lbq7s5vqbk2a"]
    assert reply.thread_id == f"at://{YUI}/app.bsky.feed.post/3lbq7qbdhhs2x"  # the root of the thread
    assert reply.url == "https://bsky.app/profile/yui-sato.bsky.social/post/3lbq7tgyb2k2r"
    assert isinstance(quote, InboundItem) and quote.reply_to == [] and quote.language == "en"
    assert isinstance(mention, InboundItem) and mention.thread_id == mention.external_id
    assert mention.author.display_name == "佐藤 結衣" and reply.author.avatar_url.startswith("https://cdn.bsky.app/")
    assert starter is None


def test_documented_session_and_post_view_are_read():
    session = Session.model_validate(fixture("create_session.json"))
    assert session.did == BRAND and jwt_expiry(session.accessJwt) == 1795600800
    post = PostView.model_validate(fixture("get_posts.json")["posts"][0])
    refs = outbound.reply_refs(post)
    assert refs["parent"] == {"uri": post.uri, "cid": post.cid}
    assert refs["root"]["uri"] == f"at://{YUI}/app.bsky.feed.post/3lbq7qbdhhs2x"


def test_jetstream_fixture_events_become_stream_posts_mentions_or_nothing():
    events = [json.loads(line) for line in (FIXTURES / "jetstream.jsonl").read_text().splitlines()]
    keyword, chatter, mention, identity, account_event, deletion = events
    item = inbound.jetstream_item(keyword, BRAND)
    assert item is not None and item.route == "stream" and item.external_id == f"at://{KEN}/app.bsky.feed.post/3lbq7v2kq2s2c".replace("3lbq7v2kq2s2c", "3lbqa2bq4bc2c")
    assert inbound.jetstream_item(mention, BRAND).route == "conversation"
    assert inbound.jetstream_item(identity, BRAND) is None and inbound.jetstream_item(account_event, BRAND) is None
    assert inbound.jetstream_item(deletion, BRAND) is None
    assert inbound.jetstream_item(mention, YUI) is None  # our own post


# --- receiving by notifications ----------------------------------------------------------------


def test_a_mention_arrives_in_the_inbox_with_the_authors_profile(fake, account):
    fake.post(YUI, MENTION, mention=BRAND)
    result = poll(account)
    assert result["created"] == 1
    message = Message.objects.get(channel_account=account)
    assert message.text == MENTION and message.public and message.external_id.startswith(f"at://{YUI}/app.bsky.feed.post/")
    identity = Identity.objects.get(kind="bluesky", external_id=YUI)
    assert (identity.handle, identity.followers) == ("yui-sato.bsky.social", 1234)
    account = fresh(account)
    assert health.channel_state(account) == "connected" and account.last_receive_at
    assert account.config["notifications"]["since_uris"] == [message.external_id]
    assert "password" in account.secrets and account.secrets["session"]["did"] == BRAND


def test_likes_reposts_and_follows_are_kept_as_events(cast, fake, account):
    fake.post(YUI, MENTION, mention=BRAND)
    poll(account)
    reply = agent_reply(cast, Message.objects.get(channel_account=account), "確認いたします")
    fake.like(YUI, reply.external_id)
    fake.repost(KEN, reply.external_id)
    fake.follow(KEN)
    result = poll(account)
    assert result["events"] == 3
    kinds = sorted(MessageEvent.objects.filter(channel_account=account).values_list("kind", "emoji"))
    assert kinds == [("follow", ""), ("reaction", "like"), ("reaction", "repost")]
    assert MessageEvent.objects.get(emoji="like").message_id == reply.pk


def test_the_first_poll_starts_from_the_newest_page_not_all_history(fake, account, monkeypatch):
    monkeypatch.setattr(inbound, "PAGE_SIZE", 20)
    for i in range(30):
        fake.post(KEN, f"@acme-support.bsky.social old {i}", mention=BRAND)
    poll(account)
    assert Message.objects.filter(channel_account=account).count() == inbound.PAGE_SIZE
    assert calls(fake, "app.bsky.notification.listNotifications") == 1


def test_polling_resumes_after_a_restart_without_gaps_or_duplicates(fake, account, monkeypatch):
    poll(account)  # connected, nothing yet
    fake.post(YUI, "@acme-support.bsky.social first", mention=BRAND)
    poll(account)
    for i in range(55):
        fake.post(KEN, f"@acme-support.bsky.social 問い合わせ {i}", mention=BRAND)
    monkeypatch.setattr(inbound, "PAGE_SIZE", 20)
    monkeypatch.setattr(inbound, "MAX_PAGES_PER_POLL", 1)  # the worker "dies" after every page
    poll(account)
    state = fresh(account).config["notifications"]
    assert state["next_cursor"] and state["pending_at"]
    fake.post(YUI, "@acme-support.bsky.social arrived while we were paging", mention=BRAND)
    for _ in range(5):
        poll(account)
    texts = list(Message.objects.filter(channel_account=account).values_list("text", flat=True))
    assert len(texts) == len(set(texts)) == 57
    assert "@acme-support.bsky.social arrived while we were paging" in texts
    assert "next_cursor" not in fresh(account).config["notifications"]


def test_a_lost_mark_only_repeats_what_is_already_stored(fake, account):
    fake.post(YUI, MENTION, mention=BRAND)
    poll(account)
    config = fresh(account).config
    config.pop("notifications")
    ChannelAccount.objects.filter(pk=account.pk).update(config=config)
    result = poll(account)
    assert result["duplicate"] == 1 and result["created"] == 0


# --- sessions ----------------------------------------------------------------------------------


def test_an_expired_access_token_is_refreshed_not_logged_in_again(fake, account):
    poll(account)
    fake.expire_access_tokens()
    fake.post(YUI, MENTION, mention=BRAND)
    assert poll(account)["created"] == 1
    assert (len(fake.logins), fake.refreshes) == (1, 1)
    for _ in range(3):
        poll(account)
    assert len(fake.logins) == 1  # never a login per poll


def test_a_token_about_to_expire_is_refreshed_before_use(fake, account):
    fake.access_ttl = 60  # the first token expires inside the five-minute margin
    poll(account)
    fake.access_ttl = 7200
    before = calls(fake, "app.bsky.notification.listNotifications")
    poll(account)
    poll(account)
    assert fake.refreshes == 1 and calls(fake, "app.bsky.notification.listNotifications") == before + 2


def test_a_session_refresh_alone_makes_a_failing_account_connected(fake, account):
    poll(account)
    health.do_record_channel_error(fresh(account), "503 from the PDS")
    assert health.channel_state(fresh(account)) == "degraded"
    BlueskyClient(fresh(account)).refresh()
    assert health.channel_state(fresh(account)) == "connected"
    assert fresh(account).config["checked_ok_at"]


def test_a_refused_refresh_token_falls_back_to_the_app_password(fake, account):
    poll(account)
    fake.expire_access_tokens()
    fake.revoke_refresh_tokens()
    secrets = fresh(account).secrets
    secrets["last_login_at"] = time.time() - 3600
    ChannelAccount.objects.filter(pk=account.pk).update(secrets=secrets)
    fake.post(YUI, MENTION, mention=BRAND)
    assert poll(account)["created"] == 1 and len(fake.logins) == 2


def test_a_refused_app_password_disconnects_the_account_without_hammering_logins(fake, account):
    ChannelAccount.objects.filter(pk=account.pk).update(secrets={"identifier": fake.brand_handle, "password": "wrong"})
    assert poll(account)["error"] == "disconnected"
    account = fresh(account)
    assert health.channel_state(account) == "disconnected" and "AuthenticationRequired" in account.last_error
    poll(account)
    assert len(fake.logins) == 1  # the next login waits a minute
    ChannelAccount.objects.filter(pk=account.pk).update(secrets={"identifier": fake.brand_handle, "password": fake.password})
    poll(account)
    assert health.channel_state(fresh(account)) == "connected"


def test_a_used_up_read_window_is_waited_out(fake, account):
    poll(account)
    fake.windows["read"].remaining = 0
    assert poll(account)["error"] == "rate limited"
    state = fresh(account).config["notifications"]
    assert abs(state["wait_until"] - fake.windows["read"].reset) < 5
    before = len(fake.requests)
    assert inbound.do_poll_notifications(fresh(account)) == {"skipped": "not due"}
    assert tasks.poll.call()["polled"] == 0
    assert len(fake.requests) == before
    assert health.channel_state(fresh(account)) == "degraded"


# --- replying ----------------------------------------------------------------------------------


def test_replies_carry_the_right_root_and_parent_and_continue_the_conversation(cast, fake, account):
    mention = fake.post(YUI, MENTION, mention=BRAND)
    mention_uri = f"at://{YUI}/app.bsky.feed.post/{mention['commit']['rkey']}"
    poll(account)
    first = Message.objects.get(channel_account=account)
    reply = agent_reply(cast, first, "ご不便をおかけしています。注文番号を教えてください。")
    assert reply.delivery == Delivery.SENT and reply.external_id.startswith(f"at://{BRAND}/app.bsky.feed.post/")
    record = fake.created[0]["record"]
    assert record["reply"]["parent"] == {"uri": mention_uri, "cid": mention["commit"]["cid"]}
    assert record["reply"]["root"] == record["reply"]["parent"]  # a top-level post is its own root
    assert record["langs"] == ["ja"]
    answer = fake.post(YUI, "A-1234 です", reply_to=reply.external_id)
    poll(account)
    second = Message.objects.filter(channel_account=account, direction="in").latest("id")
    assert second.conversation_id == first.conversation_id
    agent_reply(cast, second, "ありがとうございます。https://acme.example/help をご覧ください")
    record = fake.created[1]["record"]
    assert record["reply"]["root"]["uri"] == mention_uri
    assert record["reply"]["parent"]["uri"] == f"at://{YUI}/app.bsky.feed.post/{answer['commit']['rkey']}"
    link = record["facets"][0]
    text_bytes = record["text"].encode()
    assert text_bytes[link["index"]["byteStart"] : link["index"]["byteEnd"]].decode() == "https://acme.example/help"


def test_a_mention_in_our_reply_becomes_a_mention_facet(fake, account):
    facets = outbound.facets_for("@ken.bsky.social さん、ありがとう", lambda handle: KEN if handle == "ken.bsky.social" else "")
    assert facets == [{"index": {"byteStart": 0, "byteEnd": 16}, "features": [{"$type": "app.bsky.richtext.facet#mention", "did": KEN}]}]


def test_the_record_key_is_derived_from_the_outbox_row_so_a_retry_never_posts_twice(fake, account):
    fake.post(YUI, MENTION, mention=BRAND)
    parent = next(iter(fake.posts))
    assert tid_for("mdg-abc", None) == tid_for("mdg-abc", None) != tid_for("mdg-abd", None)
    assert is_tid(tid_for("mdg-abc", None))
    message = OutboundMessage(idempotency_key="mdg-retry", text="確認します", recipient=YUI, in_reply_to=parent, public=True)
    first = outbound.adapter.send(fresh(account), message)
    second = outbound.adapter.send(fresh(account), message)  # as after a timeout: the PDS refuses the key
    assert first.external_id == second.external_id
    assert len(fake.created) == 1
    assert first.external_id.endswith("/" + tid_for("mdg-retry", None))


def test_a_429_on_create_is_a_retry_after_the_reset_and_the_window_is_remembered(fake, account):
    fake.post(YUI, MENTION, mention=BRAND)
    parent = next(iter(fake.posts))
    fake.windows["write"].remaining = 2  # a create costs 3 points
    message = OutboundMessage(idempotency_key="mdg-limited", text="hi", recipient=YUI, in_reply_to=parent, public=True)
    with pytest.raises(TemporaryError) as caught:
        outbound.adapter.send(fresh(account), message)
    assert caught.value.retry_after and caught.value.retry_after > 60
    before = len(fake.requests)
    with pytest.raises(TemporaryError):
        outbound.adapter.send(fresh(account), message)
    assert len(fake.requests) == before  # not hammered
    assert fresh(account).config["rate_limits"]["posts"]["reset"] == fake.windows["write"].reset


def test_length_is_counted_in_graphemes(fake, account):
    family = "👨\u200d👩\u200d👧\u200d👦"
    assert outbound.grapheme_length(family) == 1 and outbound.grapheme_length("か\u3099") == 1
    assert outbound.adapter.max_length(account) == 300
    fake.post(YUI, MENTION, mention=BRAND)
    parent = next(iter(fake.posts))
    ok = OutboundMessage(idempotency_key="mdg-long-ok", text="あ" * 300, recipient=YUI, in_reply_to=parent, public=True)
    assert outbound.adapter.send(fresh(account), ok).external_id
    too_long = OutboundMessage(idempotency_key="mdg-long", text="あ" * 301, recipient=YUI, in_reply_to=parent, public=True)
    with pytest.raises(PermanentError, match="300"):
        outbound.adapter.send(fresh(account), too_long)


def test_a_reply_to_a_deleted_post_fails_with_a_clear_reason(cast, fake, account):
    fake.post(YUI, MENTION, mention=BRAND)
    poll(account)
    message = Message.objects.get(channel_account=account)
    fake.delete(message.external_id)
    reply = agent_reply(cast, message, "承知しました")
    assert reply.delivery == Delivery.FAILED
    assert "deleted" in Outbox.objects.get(message=reply).last_error


# --- Jetstream ---------------------------------------------------------------------------------


def listen(account: ChannelAccount, jetstream: FakeJetstream, **kwargs) -> dict:
    config = fresh(account).config
    config["jetstream_url"] = jetstream.url
    ChannelAccount.objects.filter(pk=account.pk).update(config=config)
    kwargs.setdefault("max_seconds", 5)
    return inbound.do_listen_jetstream(fresh(account), sleep=lambda s: None, **kwargs)


def test_jetstream_keeps_keyword_posts_and_facet_mentions_and_records_deletions(fake, jetstream, account, rules):
    fake.add_user(KEN, "ken.bsky.social", "Ken", followers=777)
    health.update_config(account, lambda c: c.setdefault("jetstream", {}).update(cursor=1795640000000000 + inbound.REWIND_US))
    assert jetstream.replay(FIXTURES / "jetstream.jsonl") == 6
    result = listen(account, jetstream, max_events=6)
    assert result["events"] == 6 and result["dropped"] == 1 and result["created"] == 2
    post = Post.objects.get(channel_account=account, external_id=f"at://{KEN}/app.bsky.feed.post/3lbqa2bq4bc2c")
    assert post.matched_rule.name == "phones" and post.conversation_id is None
    assert post.identity.followers == 777 and post.url == "https://bsky.app/profile/ken.bsky.social/post/3lbqa2bq4bc2c"
    mention = Message.objects.get(channel_account=account)
    assert mention.text == "@acme-support.bsky.social 請求が二重です" and mention.public
    assert MessageEvent.objects.filter(channel_account=account, kind="delete", target_external_id=post.external_id).count() == 1
    assert "wantedCollections=app.bsky.feed.post" in jetstream.connections[0]
    assert fresh(account).config["jetstream"]["cursor"] == 1795640000400000


def test_jetstream_resumes_from_the_saved_time_rewound_and_ignores_the_replayed_posts(fake, jetstream, account, rules):
    listen(account, jetstream, max_seconds=0.3)  # the first connection tails live posts: no cursor
    assert "cursor=" not in jetstream.connections[0]
    first = fake.post(KEN, "アイフォンの電池が減る")
    jetstream.add(first)
    health.update_config(account, lambda c: c.setdefault("jetstream", {}).update(cursor=first["time_us"]))
    listen(account, jetstream, max_events=1)
    cursor = fresh(account).config["jetstream"]["cursor"]
    assert cursor == first["time_us"]
    second = fake.post(KEN, "iphone 17 の画面が割れた")
    jetstream.add(second)
    result = listen(account, jetstream, max_events=2)
    assert f"cursor={cursor - inbound.REWIND_US}" in jetstream.connections[-1]
    assert result["duplicate"] == 1 and result["created"] == 1
    assert Post.objects.filter(channel_account=account).count() == 2


def test_jetstream_reconnects_after_a_dropped_connection_without_losing_posts(fake, jetstream, account, rules):
    events = [fake.post(KEN, f"au の回線 {i}", langs=("ja",)) for i in range(5)]
    jetstream.add(*events)
    health.update_config(account, lambda c: c.setdefault("jetstream", {}).update(cursor=events[0]["time_us"]))
    jetstream.drop_after = 2
    result = listen(account, jetstream, max_events=7)  # 2, then the rewind replays all 5
    assert result["connections"] == 2 and result["reconnects"] == 1
    assert Post.objects.filter(channel_account=account).count() == 5


def test_a_stopping_worker_ends_the_jetstream_run_and_frees_the_account(fake, jetstream, account, rules):
    with worker_stopping(after=0.3):
        result = listen(account, jetstream, max_seconds=120)
    assert result["stopped"] and result["connections"] == 1
    lease = (fresh(account).config.get("jetstream") or {}).get("lease_until")
    assert not lease  # the next run may start at once


def test_without_listening_rules_the_firehose_is_not_read(jetstream, account):
    assert listen(account, jetstream) == {"skipped": "no listening rules"}
    assert jetstream.connections == []


def test_the_clock_polls_notifications_and_queues_jetstream_runs(fake, account, rules):
    health.update_config(account, lambda c: c.update(listen_jetstream=True))
    fake.post(YUI, MENTION, mention=BRAND)
    assert tasks.poll.call() == {"polled": 1, "jetstream_queued": 1}
    assert tasks.poll.call() == {"polled": 0, "jetstream_queued": 0}  # queued a moment ago, not due
    assert Message.objects.filter(channel_account=account).count() == 1


# --- direct messages ---------------------------------------------------------------------------


def test_documented_chat_log_entries_become_a_private_item_and_a_reaction():
    logs = fixture("chat_log.json")["logs"]
    begin, incoming, ours, reaction = (inbound.dm_entry(log, {}, BRAND) for log in logs)
    assert begin is None and ours is None
    assert isinstance(incoming, InboundItem) and not incoming.public
    assert (incoming.external_id, incoming.thread_id) == ("dm:3lbqc6ylb2a2f", "dm:3lbqc6yk3kx2f")
    assert isinstance(reaction, InboundEvent) and reaction.emoji == "👍" and reaction.target_external_id == "dm:3lbqc7dhr5s2p"


def test_direct_messages_arrive_privately_and_the_answer_goes_back_in_the_same_convo(cast, fake, account):
    health.update_config(account, lambda c: c.update(poll_dms=True))
    fake.dm(YUI, "注文番号 A-1234 の件です")
    assert tasks.poll.call()["polled"] == 2  # notifications and the chat log
    message = Message.objects.get(channel_account=account)
    assert not message.public and message.conversation.thread_key.startswith("dm:")
    assert Identity.objects.get(kind="bluesky", external_id=YUI).followers == 1234
    reply = agent_reply(cast, message, "確認いたします")
    assert reply.delivery == Delivery.SENT and reply.external_id.startswith("dm:")
    convo = next(iter(fake.convos.values()))
    assert [m["text"] for m in convo["messages"]] == ["注文番号 A-1234 の件です", "確認いたします"]
    fake.react_dm(YUI, reply.external_id.removeprefix("dm:"), "👍")
    fake.dm(YUI, "ありがとうございます")
    result = inbound.do_poll_dms(fresh(account), force=True)
    assert (result["created"], result["events"]) == (1, 1)  # our own message in the log is skipped
    assert MessageEvent.objects.get(channel_account=account, kind="reaction").message_id == reply.pk
    assert Message.objects.filter(conversation=message.conversation, direction="in").count() == 2
    assert all(h == "did:web:api.bsky.chat#bsky_chat" for h in fake.chat_proxies)


def test_a_retried_direct_message_is_not_sent_twice(fake, account):
    fake.dm(YUI, "hello")
    convo = next(iter(fake.convos))
    message = OutboundMessage(idempotency_key="mdg-dm", text="確認します", recipient=YUI, thread_id=f"dm:{convo}")
    first = outbound.adapter.send(fresh(account), message)
    second = outbound.adapter.send(fresh(account), message)
    assert first.external_id == second.external_id
    assert [m["text"] for m in fake.convos[convo]["messages"]] == ["hello", "確認します"]


def test_a_jetstream_run_is_bounded_and_queues_the_next_one(fake, jetstream, account, rules):
    health.update_config(account, lambda c: c.update(listen_jetstream=True, run_seconds=0.3, jetstream_url=jetstream.url))
    result = tasks.listen_jetstream.call(account.pk)
    assert result["connections"] == 1
    state = fresh(account).config["jetstream"]
    assert "lease_until" not in state and state["queued_at"] > time.time() - 60  # the next run is queued
    assert tasks.poll.call()["jetstream_queued"] == 0  # and the clock does not queue a second one


def test_an_app_password_without_dm_access_degrades_but_does_not_disconnect(fake, account):
    fake.dm_allowed = False
    assert inbound.do_poll_dms(fresh(account), force=True)["error"] == "no access to direct messages"
    account = fresh(account)
    assert health.channel_state(account) == "degraded" and "direct messages" in account.last_error
    assert fake.refreshes == 0 and len(fake.logins) == 1
