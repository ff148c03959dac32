"""Facebook Pages: signed webhooks in (comments, visitor posts, Messenger; reactions, edits and
removals kept as events; duplicates ignored), comment replies and Messenger messages out."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from madoguchi.connectors import health
from madoguchi.connectors.base import OutboundMessage, PermanentError, TemporaryError
from madoguchi.connectors.facebook import graph, inbound, outbound, tasks
from madoguchi.connectors.facebook.fake import FakeGraph
from madoguchi.connectors.facebook.tests.meta import agent_reply, connect, deliver, post, run_queued
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.queries import composer_hints
from madoguchi.contacts.models import Identity
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Delivery, Message, MessageEvent, Outbox
from madoguchi.inbox.tasks import deliver_outbox
from madoguchi.ingest.models import Quarantine

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"
PAGE = "104598765432101"
YUI, KEN = "6543210987654321", "7654321098765432"
PSID = "25012345678901234"


@pytest.fixture
def fake():
    server = FakeGraph(page_id=PAGE).start()
    server.add_user(YUI, "佐藤 結衣")
    server.add_user(KEN, "Ken Tanaka")
    server.add_user(PSID, "Aiko Suzuki")
    yield server
    server.stop()


@pytest.fixture
def account(cast, fake) -> ChannelAccount:
    return connect(cast, fake, "facebook", "Acme Page")


def fixture_body(name: str, fake: FakeGraph) -> bytes:
    """A fixture as Meta sends it (escaped unicode), its CDN URLs pointed at the fake."""
    payload = json.loads((FIXTURES / name).read_text())
    text = json.dumps(payload, ensure_ascii=True).replace("https://scontent.xx.fbcdn.net/v/t1.15752-9/", f"{fake.url}/media/")
    return text.replace("/", "\\/").encode()


# --- the webhook endpoint ------------------------------------------------------------------------


def test_subscription_handshake_echoes_the_challenge_only_for_our_verify_token(account, fake):
    url = f"/connectors/facebook/{account.pk}/webhook/"
    good = Client().get(url, {"hub.mode": "subscribe", "hub.verify_token": fake.verify_token, "hub.challenge": "1158201444"})
    assert good.status_code == 200 and good.content == b"1158201444"
    bad = Client().get(url, {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"})
    assert bad.status_code == 403 and b"1158201444" not in bad.content


def test_unsigned_and_wrongly_signed_deliveries_are_refused_and_nothing_is_kept(account, fake):
    body, signature = fake.delivery(fake.feed(fake.comment(YUI, fake.page_post("新商品").get("id"), "hello")))
    assert post(account, body, None).status_code == 401
    assert post(account, body, "sha256=" + "0" * 64).status_code == 403
    # Re-serialized JSON carries the same data but not the bytes Meta signed.
    reserialized = json.dumps(json.loads(body), ensure_ascii=False).encode()
    assert post(account, reserialized, signature).status_code == 403
    assert not DBTaskResult.objects.exists() and not Message.objects.exists()


def test_a_signed_delivery_is_stored_before_the_answer_and_processed_by_the_worker(account, fake):
    body, signature = fake.delivery(fake.feed(fake.comment(YUI, fake.page_post("新商品").get("id"), "いつ発売ですか？")))
    assert post(account, body, signature).status_code == 200
    assert not Message.objects.exists() and DBTaskResult.objects.count() == 1  # durable, not yet ingested
    assert run_queued()[0]["created"] == 1
    assert Message.objects.get(channel_account=account).text == "いつ発売ですか？"


# --- receiving -----------------------------------------------------------------------------------


def test_the_documented_feed_delivery_becomes_comments_posts_and_events(account, fake):
    body = fixture_body("feed.json", fake)
    assert post(account, body, graph.sign(fake.app_secret, body)).status_code == 200
    counts = run_queued()[0]
    assert counts["created"] == 3 and counts["events"] == 3 and counts["ignored"] == 1  # the page's own reply skipped
    yui = Message.objects.get(external_id="900000000000001_1200000000000001")
    ken = Message.objects.get(external_id="900000000000001_1200000000000002")
    visitor = Message.objects.get(external_id="104598765432101_900000000000077")
    assert yui.public and yui.identity.display_name == "佐藤 結衣"
    # The edit replaced the text; the original is kept on the event for audit.
    assert yui.text == "注文番号は A-1024 です。まだ届きません。" and yui.edited_at is not None
    edit = MessageEvent.objects.get(kind="edit")
    assert edit.previous_text == "注文した商品がまだ届きません。確認してもらえますか？"
    assert MessageEvent.objects.get(kind="reaction").message == yui
    assert MessageEvent.objects.get(kind="reaction").emoji == "like"
    assert ken.deleted_at is not None and ken.text == "Same here, mine is late too"
    # One conversation per commenter under the same post; the visitor post is its own.
    assert yui.conversation != ken.conversation != visitor.conversation
    assert yui.conversation.thread_key == f"104598765432101_900000000000001:{YUI}"
    assert ken.reply_to_external_id == "104598765432101_900000000000001"  # not threaded into Yui's
    assert visitor.text == "店舗の営業時間を教えてください" and visitor.public


def test_the_documented_messenger_delivery_keeps_messages_images_reactions_edits_and_reads(account, fake):
    fake.add_media("broken-box.jpg", b"\xff\xd8\xff\xe0photo", "image/jpeg")  # the CDN URL's query is ignored
    body = fixture_body("messenger.json", fake)
    assert post(account, body, graph.sign(fake.app_secret, body)).status_code == 200
    counts = run_queued()[0]
    assert counts["created"] == 2 and counts["events"] == 3 and counts["ignored"] == 2  # echo, delivery
    text, image = Message.objects.filter(channel_account=account).order_by("created_at")
    assert not text.public and text.conversation == image.conversation and text.conversation.thread_key == f"dm:{PSID}"
    assert text.text == "返品と交換の方法を教えてください" and text.edited_at is not None
    attachment = image.attachments.get()
    assert image.text == "[image]"
    assert attachment.content_type == "image/jpeg" and attachment.file.read() == b"\xff\xd8\xff\xe0photo"
    assert text.identity.display_name == "Aiko Suzuki" and text.identity.avatar_url.endswith(f"avatar-{PSID}.jpg")
    reaction = MessageEvent.objects.get(kind="reaction")
    assert (reaction.message, reaction.emoji) == (text, "\u2764\ufe0f")
    assert MessageEvent.objects.filter(kind="read").exists()


def test_an_oversized_attachment_is_noted_not_fetched(account, fake, settings):
    settings.ATTACHMENT_MAX_BYTES = 10
    url = fake.add_media("huge.jpg", b"x" * 100)
    deliver(fake, account, fake.messaging(fake.message(PSID, "見てください", attachments=[{"type": "image", "payload": {"url": url}}])))
    message = Message.objects.get(channel_account=account)
    assert not message.attachments.exists() and "not fetched" in message.text and message.text.startswith("見てください")


def test_duplicate_deliveries_change_nothing(account, fake):
    post_id = fake.page_post("セール開始")["id"]
    comment = fake.comment(YUI, post_id, "クーポンは使えますか？")
    reaction = fake.reaction(KEN, comment, "haha")
    entry = fake.feed(comment, reaction)
    deliver(fake, account, entry)
    again = deliver(fake, account, entry)[0]
    assert again["created"] == 0 and again["duplicate"] == 1
    assert Message.objects.count() == 1 and MessageEvent.objects.count() == 1


def test_edits_arriving_out_of_order_and_before_the_comment_end_with_the_latest_text(account, fake):
    post_id = fake.page_post("お知らせ")["id"]
    comment = fake.comment(YUI, post_id, "first")
    deliver(fake, account, fake.feed(fake.edited(comment, "third"), at=1_900_000_300))
    deliver(fake, account, fake.feed(fake.edited(comment, "second"), at=1_900_000_200))
    deliver(fake, account, fake.feed(comment))
    message = Message.objects.get(external_id=comment["comment_id"])
    assert message.text == "third"
    assert set(MessageEvent.objects.filter(kind="edit").values_list("text", flat=True)) == {"second", "third"}


def test_a_removed_reaction_is_kept_as_an_unreaction(account, fake):
    comment = fake.comment(YUI, fake.page_post("x")["id"], "nice")
    deliver(fake, account, fake.feed(comment, fake.reaction(KEN, comment, "love"), fake.reaction(KEN, comment, "love", verb="remove")))
    assert list(MessageEvent.objects.order_by("id").values_list("kind", "emoji")) == [("reaction", "love"), ("unreaction", "love")]


def test_a_signed_but_malformed_body_is_quarantined_not_refused(account, fake):
    body = b'{"object":"page","entry":"nope"}'
    assert post(account, body, graph.sign(fake.app_secret, body)).status_code == 200
    assert Quarantine.objects.filter(channel_account=account).count() == 1


# --- sending -------------------------------------------------------------------------------------


def test_a_reply_to_a_comment_goes_to_that_comment_and_a_reply_to_a_reply_to_its_top_comment(cast, account, fake):
    post_id = fake.page_post("新商品のお知らせ")["id"]
    top = fake.comment(YUI, post_id, "色違いはありますか？")
    deliver(fake, account, fake.feed(top))
    conversation = Message.objects.get(external_id=top["comment_id"]).conversation
    reply = agent_reply(cast, conversation, "はい、3色ございます。")
    assert reply.delivery == Delivery.SENT and fake.replies[-1]["to"] == top["comment_id"]
    assert reply.external_id == fake.replies[-1]["id"]
    # Yui answers our reply: same conversation; our next answer goes under her top comment.
    again = fake.comment(YUI, post_id, "青はありますか？", parent_id=top["comment_id"])
    deliver(fake, account, fake.feed(again))
    assert Message.objects.get(external_id=again["comment_id"]).conversation == conversation
    agent_reply(cast, conversation, "青もございます。")
    assert fake.replies[-1] == {**fake.replies[-1], "to": top["comment_id"], "message": "青もございます。"}


def test_a_visitor_post_is_answered_with_a_comment_on_it(cast, account, fake):
    value = fake.visitor_post(KEN, "営業時間は？")
    deliver(fake, account, fake.feed(value))
    agent_reply(cast, Message.objects.get(external_id=value["post_id"]).conversation, "10時から19時です。")
    assert fake.replies[-1]["to"] == value["post_id"]


def test_a_messenger_reply_inside_the_window_is_a_response_message(cast, account, fake):
    deliver(fake, account, fake.messaging(fake.message(PSID, "在庫はありますか？")))
    conversation = Message.objects.get(channel_account=account).conversation
    assert composer_hints(conversation).window_closes_at is not None
    reply = agent_reply(cast, conversation, "ございます。")
    assert reply.delivery == Delivery.SENT
    assert fake.messages[-1] == {**fake.messages[-1], "to": PSID, "text": "ございます。", "messaging_type": "RESPONSE"}


def test_after_24_hours_a_message_fails_clearly_without_calling_meta(cast, account, fake):
    deliver(fake, account, fake.messaging(fake.message(PSID, "在庫はありますか？")))
    message = Message.objects.get(channel_account=account)
    Message.objects.filter(pk=message.pk).update(created_at=message.created_at - dt.timedelta(hours=25))
    reply = agent_reply(cast, message.conversation, "遅くなりました")
    assert reply.delivery == Delivery.FAILED
    assert "24-hour window closed on" in reply.delivery_error and "tagged messages" in reply.delivery_error
    assert not fake.messages
    hints = composer_hints(message.conversation)
    assert hints.window_closes_at is not None and hints.window_closes_at < message.created_at


def test_the_platforms_window_refusal_is_a_clear_permanent_failure(account, fake):
    deliver(fake, account, fake.messaging(fake.message(PSID, "hello")))
    fake.last_user_message[PSID] -= 25 * 3600  # Meta's clock says the window is over
    with pytest.raises(PermanentError, match="24-hour messaging window"):
        outbound.adapter.send(account, OutboundMessage("k1", "hi", recipient=PSID, thread_id=f"dm:{PSID}"))


def test_an_expired_token_disconnects_the_account_and_fails_the_reply(cast, account, fake):
    comment = fake.comment(YUI, fake.page_post("x")["id"], "help")
    deliver(fake, account, fake.feed(comment))
    fake.expire_token()
    reply = agent_reply(cast, Message.objects.get(external_id=comment["comment_id"]).conversation, "はい")
    assert reply.delivery == Delivery.FAILED and "code 190" in reply.delivery_error
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected"


def test_an_expired_token_is_noticed_on_arrival_and_the_message_still_kept(account, fake):
    fake.expire_token()
    deliver(fake, account, fake.messaging(fake.message(PSID, "返信がありません")))
    assert Message.objects.get(channel_account=account).text == "返信がありません"
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected"


def test_the_periodic_token_check_notices_an_expired_token_before_any_reply(account, fake):
    assert tasks.check_tokens.call() == {"checked": 1, "refused": 0}
    assert tasks.check_tokens.call() == {"checked": 0, "refused": 0}  # not due again yet
    fake.expire_token()
    account.refresh_from_db()
    health.update_config(account, lambda config: config.pop("token_checked_at"))
    assert tasks.check_tokens.call() == {"checked": 1, "refused": 1}
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected" and "Session has expired" in account.config["health"]["reason"]


def test_a_lost_webhook_subscription_is_noticed_by_the_periodic_check(account, fake):
    fake.app_installed = False
    assert tasks.check_tokens.call() == {"checked": 1, "refused": 0}
    account.refresh_from_db()
    assert health.channel_state(account) == "disconnected" and "subscribed_apps" in account.config["health"]["reason"]
    fake.app_installed = True
    health.update_config(account, lambda config: config.pop("token_checked_at"))
    tasks.check_tokens.call()
    account.refresh_from_db()
    assert "health" not in account.config
    assert health.channel_state(account) == "connected"  # the check alone, with nothing received


def test_a_rate_limit_retries_later_as_meta_estimates(account, fake):
    comment = fake.comment(YUI, fake.page_post("x")["id"], "help")
    deliver(fake, account, fake.feed(comment))
    fake.rate_limit(f"{comment['comment_id']}/comments", minutes=3)
    with pytest.raises(TemporaryError) as caught:
        outbound.adapter.send(account, OutboundMessage("k2", "はい", recipient=YUI, in_reply_to=comment["comment_id"], public=True))
    assert caught.value.retry_after == 180
    account.refresh_from_db()
    assert health.channel_state(account) == "degraded"
    # Until Meta's estimate has passed, no reply calls again (never hammer a limited page).
    calls = len(fake.requests)
    with pytest.raises(TemporaryError) as caught:
        outbound.adapter.send(account, OutboundMessage("k3", "はい", recipient=YUI, in_reply_to=comment["comment_id"], public=True))
    assert 170 < caught.value.retry_after <= 180 and len(fake.requests) == calls
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    health.update_config(account, lambda config: config.__setitem__("rate_limited_until", past))
    assert outbound.adapter.send(account, OutboundMessage("k3", "はい", recipient=YUI, in_reply_to=comment["comment_id"], public=True)).external_id
    assert "rate_limited_until" not in account.config


def test_usage_headers_that_say_to_back_off_are_obeyed_after_a_success(account, fake):
    deliver(fake, account, fake.messaging(fake.message(PSID, "hello")))
    usage = {PAGE: [{"type": "messenger", "call_count": 100, "total_cputime": 10, "total_time": 10, "estimated_time_to_regain_access": 2}]}
    fake.extra_headers["X-Business-Use-Case-Usage"] = json.dumps(usage)
    outbound.adapter.send(account, OutboundMessage("k5", "hi", recipient=PSID, thread_id=f"dm:{PSID}"))
    with pytest.raises(TemporaryError) as caught:
        outbound.adapter.send(account, OutboundMessage("k6", "hi again", recipient=PSID, thread_id=f"dm:{PSID}"))
    assert 100 < caught.value.retry_after <= 120 and len(fake.messages) == 1


def test_a_reply_to_a_deleted_comment_fails_with_a_clear_reason(account, fake):
    comment = fake.comment(YUI, fake.page_post("x")["id"], "help")
    deliver(fake, account, fake.feed(comment))
    fake.delete_comment(comment["comment_id"])
    with pytest.raises(PermanentError, match="deleted or is not visible"):
        outbound.adapter.send(account, OutboundMessage("k4", "はい", recipient=YUI, in_reply_to=comment["comment_id"], public=True))


def test_a_retry_after_a_lost_answer_does_not_post_the_reply_twice(cast, account, fake):
    comment = fake.comment(YUI, fake.page_post("x")["id"], "help")
    deliver(fake, account, fake.feed(comment))
    fake.fail(f"{comment['comment_id']}/comments", 502, {"error": {"message": "Bad Gateway", "code": 2, "type": "OAuthException", "is_transient": True}}, after_accepting=True)
    reply = inbox_actions.do_reply(Message.objects.get(external_id=comment["comment_id"]).conversation, author=cast.agent, text="確認します")
    outbox = Outbox.objects.get(message=reply)
    assert deliver_outbox.call(outbox.pk) == "retrying"
    Outbox.objects.filter(pk=outbox.pk).update(next_attempt_at=dt.datetime.now(dt.UTC))
    assert deliver_outbox.call(outbox.pk) == "sent"
    assert len(fake.replies) == 1
    reply.refresh_from_db()
    assert reply.external_id == fake.replies[0]["id"]


def test_contacts_keep_the_facebook_name(account, fake):
    deliver(fake, account, fake.feed(fake.comment(YUI, fake.page_post("x")["id"], "hi")))
    assert Identity.objects.get(kind="facebook", external_id=YUI).display_name == "佐藤 結衣"


def test_inbound_module_skips_entries_for_another_page(account, fake):
    body = json.dumps({"object": "page", "entry": [{"id": "999", "time": 1, "changes": []}]})
    inbound.process_delivery(account, body)
    assert Quarantine.objects.filter(channel_account=account).count() == 1
