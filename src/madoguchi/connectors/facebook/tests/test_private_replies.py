"""Private replies (Meta's one message to a commenter, in Messenger or Instagram Direct, within 7
days of the comment): the composer offers "Reply publicly" or "Reply privately" on a comment, the
reply goes out through the outbox addressed to the comment, a second one or a late one is refused
with a clear reason (in the composer, and from Meta), and the customer's answer arrives in a
direct-message conversation of the same contact."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from madoguchi.accounts.tests.api_client import api_fixture  # noqa: F401
from madoguchi.conftest import csrf_post
from madoguchi.connectors.base import PermanentError
from madoguchi.connectors.facebook import graph
from madoguchi.connectors.facebook.fake import FakeGraph
from madoguchi.connectors.facebook.tests.conftest import IG, KEN, PAGE, YUI
from madoguchi.connectors.facebook.tests.meta import connect, deliver
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.queries import composer_hints
from madoguchi.contacts.models import Identity
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Conversation, Delivery, Message, Outbox
from madoguchi.inbox.tasks import deliver_outbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(meta):
    return meta


def facebook_comment(fake: FakeGraph, account: ChannelAccount, text: str = "注文した商品が届きません") -> Conversation:
    value = fake.comment(YUI, fake.page_post("新商品のお知らせ")["id"], text)
    deliver(fake, account, fake.feed(value))
    return Message.objects.get(channel_account=account, external_id=value["comment_id"]).conversation


def send_from_composer(client: Client, conversation: Conversation, text: str, mode: str, **extra: Any):
    answer = csrf_post(client, reverse("inbox:reply", args=[conversation.pk]), {"kind": "reply", "text": text, "reply_mode": mode}, **extra)
    for outbox in Outbox.objects.filter(message__conversation=conversation, status="pending"):
        deliver_outbox.call(outbox.pk)
    return answer


def modes(conversation: Conversation) -> dict[str, str]:
    return {value: why for value, _label, why in composer_hints(conversation).reply_modes}


def test_a_private_reply_goes_to_the_comment_in_messenger_and_the_answer_comes_back_to_the_same_contact(cast, fake, client_for):
    account = connect(cast, fake, "facebook")
    conversation = facebook_comment(fake, account)
    assert modes(conversation) == {"public": "", "private": ""}
    page = client_for(cast.agent).get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert 'name="reply_mode" value="private"' in page and "Reply privately in Messenger" in page

    send_from_composer(client_for(cast.agent), conversation, "ご注文番号をメッセージでお知らせください", "private")
    reply = Message.objects.get(conversation=conversation, direction="out")
    assert not reply.public and reply.delivery == Delivery.SENT and reply.external_id.startswith("m_")
    assert "Private reply" in client_for(cast.agent).get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    sent = fake.messages[-1]
    comment_id = Message.objects.get(conversation=conversation, direction="in").external_id
    assert sent["private_reply_to"] == comment_id and sent["via"] == PAGE and not fake.replies  # no public comment
    psid = fake.psids[YUI]
    assert sent["to"] == psid and psid != YUI
    assert Identity.objects.get(kind="facebook", external_id=psid).contact_id == conversation.contact_id

    deliver(fake, account, fake.messaging(fake.message(psid, "注文番号は A-1234 です")))
    answer = Message.objects.get(channel_account=account, text="注文番号は A-1234 です")
    assert answer.conversation_id != conversation.pk and answer.conversation.thread_key == f"dm:{psid}"
    assert answer.conversation.contact_id == conversation.contact_id
    page = client_for(cast.agent).get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert f'href="/inbox/c/{answer.conversation_id}/"' in page or reverse("inbox:conversation", args=[answer.conversation_id]) in page
    # The agent goes on in Messenger, within the window the customer's answer opened.
    later = inbox_actions.do_reply(answer.conversation, author=cast.agent, text="確認しました")
    deliver_outbox.call(Outbox.objects.get(message=later).pk)
    assert fake.messages[-1]["to"] == psid and "private_reply_to" not in fake.messages[-1]


def test_one_private_reply_per_comment_the_composer_says_why_and_refuses_a_second(cast, fake, client_for):
    account = connect(cast, fake, "facebook")
    conversation = facebook_comment(fake, account)
    client = client_for(cast.agent)
    send_from_composer(client, conversation, "DMをお送りしました", "private")
    why = modes(conversation)["private"]
    assert "already has its private reply" in why
    assert modes(conversation)["public"] == ""
    page = client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert re.search(r'value="private"[^>]* disabled', page)
    refused = send_from_composer(client, conversation, "もう一度", "private", HTTP_ACCEPT="application/json")
    assert refused.status_code == 400 and "already has its private reply" in refused.json()["error"]
    assert Message.objects.filter(conversation=conversation, direction="out").count() == 1
    # A public answer is still possible.
    send_from_composer(client, conversation, "コメントでも失礼します", "public")
    assert fake.replies[-1]["message"] == "コメントでも失礼します"


def test_after_seven_days_no_private_reply_is_offered_or_sent(cast, fake):
    account = connect(cast, fake, "facebook")
    conversation = facebook_comment(fake, account)
    Message.objects.filter(conversation=conversation, direction="in").update(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=8))
    assert "within 7 days" in modes(conversation)["private"]
    # Queued anyway (an API client, a stale page): the adapter refuses it before calling Meta.
    reply = inbox_actions.do_reply(conversation, author=cast.agent, text="遅い返信", public=False)
    deliver_outbox.call(Outbox.objects.get(message=reply).pk)
    reply.refresh_from_db()
    assert reply.delivery == Delivery.FAILED and "within 7 days" in reply.delivery_error
    assert not fake.messages


@pytest.mark.parametrize(
    ("meta_state", "reason"),
    [("replied elsewhere", "already has its one private reply"), ("too old for Meta", "no longer allows a private reply")],
)
def test_meta_s_refusals_fail_the_reply_with_a_clear_reason(cast, fake, meta_state, reason):
    account = connect(cast, fake, "facebook")
    conversation = facebook_comment(fake, account)
    comment_id = Message.objects.get(conversation=conversation, direction="in").external_id
    if meta_state == "replied elsewhere":
        fake.private_replied[comment_id] = "m_from_business_suite"  # answered in Meta Business Suite
    else:
        fake.age(comment_id, 8)
    reply = inbox_actions.do_reply(conversation, author=cast.agent, text="DMします", public=False)
    assert deliver_outbox.call(Outbox.objects.get(message=reply).pk) == "failed"
    reply.refresh_from_db()
    assert reason in reply.delivery_error and reply.delivery == Delivery.FAILED


def test_a_visitor_post_is_answered_privately_by_its_post_id(cast, fake):
    account = connect(cast, fake, "facebook")
    value = fake.visitor_post(KEN, "営業時間を教えてください")
    deliver(fake, account, fake.feed(value))
    conversation = Message.objects.get(external_id=value["post_id"]).conversation
    assert set(modes(conversation)) == {"public", "private"}
    reply = inbox_actions.do_reply(conversation, author=cast.agent, text="メッセージでお送りします", public=False)
    deliver_outbox.call(Outbox.objects.get(message=reply).pk)
    assert fake.messages[-1]["private_reply_to"] == value["post_id"]


def test_messenger_conversations_offer_no_reply_mode(cast, fake):
    account = connect(cast, fake, "facebook")
    fake.add_user("25012345678901234", "Aiko Suzuki")
    deliver(fake, account, fake.messaging(fake.message("25012345678901234", "こんにちは")))
    conversation = Conversation.objects.get(thread_key="dm:25012345678901234")
    assert composer_hints(conversation).reply_modes == ()


def test_the_api_sends_a_private_reply_and_says_why_it_cannot(cast, fake, api):
    account = connect(cast, fake, "facebook")
    conversation = facebook_comment(fake, account)
    url = f"/api/v1/conversations/{conversation.pk}/messages"
    created = api(cast.agent, "post", url, {"kind": "reply", "text": "DMでご案内します", "reply_mode": "private"})
    assert created.status_code == 201 and created.json()["public"] is False
    again = api(cast.agent, "post", url, {"kind": "reply", "text": "もう一度", "reply_mode": "private"})
    assert again.status_code == 400 and "already has its private reply" in again.json()["detail"]


def test_an_instagram_comment_is_answered_in_direct_and_the_answer_joins_the_same_contact(cast, fake, client_for):
    account = connect(cast, fake, "instagram")
    media = fake.ig_media("新作リップ")
    value = fake.ig_comment(YUI, media, "色味を教えてください")
    deliver(fake, account, fake.ig_changes("comments", value))
    conversation = Message.objects.get(external_id=value["id"]).conversation
    assert modes(conversation) == {"public": "", "private": ""}
    # The composer counts each mode against its own limit: a comment's 2,200 characters, a
    # private reply's (a direct message's) 1,000 bytes.
    options = {value: (limit, counting) for value, _l, _w, limit, counting in composer_hints(conversation).reply_mode_options}
    assert options == {"public": (2200, "chars"), "private": (1000, "bytes")}
    page = client_for(cast.agent).get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert 'value="private" data-max="1000" data-counting="bytes"' in page
    send_from_composer(client_for(cast.agent), conversation, "詳しくはDMでお送りします", "private")
    sent = fake.messages[-1]
    assert sent["private_reply_to"] == value["id"] and sent["via"] == IG and sent["to"] == YUI
    assert sent["request"] == {"recipient": {"comment_id": value["id"]}, "message": {"text": "詳しくはDMでお送りします"}}  # as documented
    assert "already has its private reply" in modes(conversation)["private"]
    deliver(fake, account, fake.messaging(fake.message(YUI, "ありがとうございます", instagram=True), instagram=True))
    answer = Message.objects.get(text="ありがとうございます")
    assert answer.conversation.thread_key == f"dm:{YUI}" and answer.conversation.contact_id == conversation.contact_id


def test_an_instagram_mention_offers_no_private_reply(cast, fake):
    account = connect(cast, fake, "instagram")
    mention = fake.ig_mention(KEN, fake.ig_media("他の人の投稿", owner="someone"), "@acme_support これ良い")
    deliver(fake, account, fake.ig_changes("mentions", mention))
    conversation = Message.objects.get(external_id=mention["comment_id"]).conversation
    assert composer_hints(conversation).reply_modes == ()


def test_the_requests_are_the_documented_shape_and_meta_s_refusals_map_to_clear_reasons(cast, fake):
    documented = json.loads((Path(__file__).parent / "fixtures" / "private_reply.json").read_text())
    account = connect(cast, fake, "facebook")
    conversation = facebook_comment(fake, account)
    comment_id = Message.objects.get(conversation=conversation, direction="in").external_id
    reply = inbox_actions.do_reply(conversation, author=cast.agent, text="DMします", public=False)
    deliver_outbox.call(Outbox.objects.get(message=reply).pk)
    expected = json.loads(json.dumps(documented["facebook"]["request"]).replace("{COMMENT-ID}", comment_id).replace("{TEXT}", "DMします"))
    assert fake.messages[-1]["request"] == expected
    assert ("POST", f"/v24.0/{PAGE}/messages") in fake.requests
    assert set(documented["facebook"]["response"]) == {"recipient_id", "message_id"}
    for name, reason in (("already_replied", "already has its one private reply"), ("cannot_reply", "no longer allows a private reply")):
        error = documented["errors"][name]["error"]
        mapped = graph.failure(account, graph.GraphError(400, error["message"], code=error["code"], subcode=error.get("error_subcode", 0)), what="the private reply")
        assert isinstance(mapped, PermanentError) and reason in str(mapped)
