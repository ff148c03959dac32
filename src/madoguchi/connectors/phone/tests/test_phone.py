"""Phone: signed call events become conversations (a voicemail with its transcript and recording),
agents log calls on a contact, and a phone conversation cannot be answered by message."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from madoguchi.conftest import csrf_post
from madoguchi.connectors.base import OutboundMessage, PermanentError
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.phone import inbound
from madoguchi.connectors.phone.fake import FakeTelephony
from madoguchi.connectors.phone.outbound import adapter
from madoguchi.connectors.queries import composer_hints
from madoguchi.contacts.models import Contact, Identity
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Conversation, Delivery, Direction, Message, Outbox
from madoguchi.inbox.tasks import deliver_outbox

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "whsec-phone-line-1"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def line(cast) -> ChannelAccount:
    return ChannelAccount.objects.create(
        workspace=cast.ws,
        brand=cast.brand,
        kind="phone",
        name="Acme support line",
        handle="+81120000000",
        secrets={"webhook_secret": SECRET},
    )


@pytest.fixture
def provider() -> FakeTelephony:
    return FakeTelephony(SECRET)


def test_a_voicemail_becomes_a_conversation_with_its_transcript_and_recording(
    line, provider
) -> None:
    response = provider.post(line.pk, fixture("voicemail_ja.json"))
    assert response.status_code == 202, response.content
    message = Message.objects.get(channel_account=line)
    assert "+81312345678" in message.text and "0:33" in message.text
    assert "先週注文した商品がまだ届いていません" in message.text
    assert (
        'href="https://api.telephony.example/2010-04-01/Accounts/AC00/Recordings/RE0a1b2c3d4e5f.mp3"'
        in message.html
    )
    assert message.conversation.status == "new" and message.language == "ja"
    identity = Identity.objects.get(kind="phone", external_id="+81312345678")
    assert identity.display_name == "佐藤 結衣"
    assert response.json()["conversation"] == message.conversation_id


def test_a_providers_retry_stores_the_call_once(line, provider) -> None:
    for _ in range(2):
        assert provider.post(line.pk, fixture("voicemail_ja.json")).status_code == 202
    assert Message.objects.filter(channel_account=line).count() == 1


def test_an_outbound_call_event_is_our_message_to_the_number_called(line, provider) -> None:
    for _ in range(2):  # a provider's retry stores it once
        assert provider.post(line.pk, fixture("call_outbound.json")).status_code == 202
    message = Message.objects.get(channel_account=line)
    assert message.direction == Direction.OUTBOUND and message.delivery == Delivery.SENT
    assert message.author is None and message.raw["source"] == "provider"
    assert not Outbox.objects.exists()
    identities = message.conversation.contact.identities.values_list("external_id", flat=True)
    assert list(identities) == ["+819012345678"]
    assert "4:05" in message.text and "RE77.wav" in message.html
    assert Conversation.objects.filter(channel_account=line).count() == 1


def test_an_outbound_call_event_answers_the_callers_open_conversation(line, provider) -> None:
    event = fixture("call_outbound.json")
    inbound = provider.post(
        line.pk, {**event, "id": "CA-in-1", "direction": "inbound", "from": event["to"],
                  "to": event["from"], "started_at": None}
    )
    assert inbound.status_code == 202, inbound.content
    assert provider.post(line.pk, {**event, "started_at": None}).status_code == 202
    conversation = Conversation.objects.get(channel_account=line)
    assert conversation.message_count == 2 and conversation.status == "pending"
    assert conversation.waiting_since is None


def test_missing_wrong_and_stale_signatures_are_refused(line, provider) -> None:
    event = fixture("voicemail_ja.json")
    assert provider.post(line.pk, event, signature="").status_code == 401
    assert provider.post(line.pk, event, signature="v1=abc").status_code == 401
    assert provider.post(line.pk, event, secret="someone-elses").status_code == 403
    stale = provider.post(line.pk, event, at=time.time() - 6 * 60)
    assert stale.status_code == 403 and "5 minutes" in stale.json()["error"]
    assert provider.post(line.pk, event, at=time.time() + 6 * 60).status_code == 403
    body, header = provider.delivery(event)
    tampered = body.replace(b"33", b"34")
    response = provider.post(line.pk, tampered, signature=header)
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_a_rotated_secret_is_accepted_with_either_signature(line, provider) -> None:
    body, new = provider.delivery(fixture("voicemail_ja.json"))
    _, old = provider.delivery(body, secret="old-secret")
    both = f"{new},v1={old.split('v1=')[1]}"
    assert provider.post(line.pk, body, signature=both).status_code == 202


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"recording_url": "javascript:alert(1)"}, "recording_url"),
        ({"recording_url": "file:///etc/passwd"}, "http:// or https://"),
        ({"from": "call me maybe"}, "not a phone number"),
        ({"started_at": "2026-11-23T09:12:00"}, "time zone"),
        ({"duration": -5}, "duration"),
        ({"id": ""}, "id"),
    ],
)
def test_a_malformed_event_gets_400_with_the_reason(line, provider, change, needle) -> None:
    response = provider.post(line.pk, fixture("voicemail_ja.json") | change)
    assert response.status_code == 400
    assert needle in response.json()["error"]
    assert not Message.objects.exists()


def test_a_body_that_is_not_json_gets_400(line, provider) -> None:
    response = provider.post(line.pk, b"{not json")
    assert response.status_code == 400 and "not a call event" in response.json()["error"]


def test_a_line_of_another_workspace_or_kind_is_not_found(cast, line, provider) -> None:
    assert provider.post(cast.account.pk, fixture("voicemail_ja.json")).status_code == 404


def test_an_agent_logs_an_incoming_call_from_the_contact_page(cast, line, client_for) -> None:
    contact = Contact.objects.create(workspace=cast.ws, name="山田 花子")
    client = client_for(cast.agent)
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert f'action="/connectors/phone/contacts/{contact.pk}/log/"' in page
    response = csrf_post(
        client,
        f"/connectors/phone/contacts/{contact.pk}/log/",
        {
            "direction": "in",
            "number": "０９０-1111-2222",
            "minutes": "3",
            "seconds": "5",
            "summary": "配送状況の問い合わせ。明日着と案内。",
        },
    )
    message = Message.objects.get(channel_account=line)
    assert response.status_code == 302
    assert response["Location"] == f"/inbox/c/{message.conversation_id}/"
    assert message.direction == Direction.INBOUND and message.conversation.contact == contact
    assert "+" not in message.identity.external_id and "09011112222" in message.text
    assert "3:05" in message.text and "明日着と案内" in message.text
    assert message.raw["call"]["logged_by"] == cast.agent.pk
    assert message.conversation.status == "open"  # the agent who took the call has seen it
    # The next call continues the same conversation.
    csrf_post(
        client,
        f"/connectors/phone/contacts/{contact.pk}/log/",
        {"direction": "in", "number": "09011112222", "summary": "再度の確認"},
    )
    assert Conversation.objects.filter(channel_account=line).count() == 1


def test_an_outgoing_call_is_recorded_as_the_agents_sent_message_never_queued(
    cast, line, client_for
) -> None:
    contact = Contact.objects.create(workspace=cast.ws, name="山田 花子")
    csrf_post(
        client_for(cast.agent),
        f"/connectors/phone/contacts/{contact.pk}/log/",
        {
            "direction": "out",
            "number": "+81 90 1111 2222",
            "minutes": "1",
            "summary": "折り返し済み",
        },
    )
    [call] = Message.objects.filter(conversation__channel_account=line)
    assert call.direction == Direction.OUTBOUND and call.author == cast.agent
    assert call.delivery == Delivery.SENT and not Outbox.objects.exists()
    assert "+819011112222" in call.text and "折り返し済み" in call.text
    assert call.conversation.contact == contact and call.conversation.status == "pending"
    page = client_for(cast.agent).get(f"/inbox/c/{call.conversation_id}/").content.decode()
    assert "折り返し済み" in page and "+819011112222" in page


def test_a_number_of_another_contact_is_refused_with_the_reason(cast, line, client_for) -> None:
    first = Contact.objects.create(workspace=cast.ws, name="A")
    second = Contact.objects.create(workspace=cast.ws, name="B")
    client = client_for(cast.agent)
    csrf_post(
        client,
        f"/connectors/phone/contacts/{first.pk}/log/",
        {"direction": "in", "number": "0311112222"},
    )
    response = csrf_post(
        client,
        f"/connectors/phone/contacts/{second.pk}/log/",
        {"direction": "in", "number": "03-1111-2222"},
        follow=True,
    )
    assert f"contact #{first.pk}" in response.content.decode()
    assert not Conversation.objects.filter(contact=second).exists()


def test_logging_needs_a_phone_line_and_a_valid_number(cast, client_for) -> None:
    contact = Contact.objects.create(workspace=cast.ws, name="A")
    client = client_for(cast.agent)
    url = f"/connectors/phone/contacts/{contact.pk}/log/"
    page = csrf_post(client, url, {"direction": "in", "number": "0311112222"}, follow=True)
    assert "No phone line is set up" in page.content.decode()
    ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="phone", name="L")
    page = csrf_post(client, url, {"direction": "in", "number": "hello"}, follow=True)
    assert "is not a phone number" in page.content.decode()
    assert not Message.objects.exists()


def test_another_workspaces_contact_cannot_get_a_call_logged(cast, line, client_for) -> None:
    theirs = Contact.objects.create(workspace=cast.ws_b, name="Beta customer")
    response = csrf_post(
        client_for(cast.agent),
        f"/connectors/phone/contacts/{theirs.pk}/log/",
        {"direction": "in", "number": "0311112222"},
    )
    assert response.status_code == 404
    assert not Message.objects.exists()


def test_logging_a_call_needs_a_logged_in_agent(cast, line) -> None:
    from django.test import Client

    contact = Contact.objects.create(workspace=cast.ws, name="A")
    response = Client().post(
        f"/connectors/phone/contacts/{contact.pk}/log/", {"direction": "in", "number": "0311112222"}
    )
    assert response.status_code in (302, 403)
    assert not Message.objects.exists()


def test_a_reply_on_a_phone_conversation_fails_with_the_reason_and_the_composer_says_so(
    cast, line, provider
) -> None:
    provider.post(line.pk, fixture("voicemail_ja.json"))
    conversation = Conversation.objects.get(channel_account=line)
    assert "cannot be sent as messages" in composer_hints(conversation).notice
    reply = inbox_actions.do_reply(conversation, author=cast.agent, text="お電話します")
    assert deliver_outbox.call(reply.outbox.pk) == "failed"
    reply.refresh_from_db()
    assert (
        reply.delivery == Delivery.FAILED and "cannot be sent as messages" in reply.delivery_error
    )
    with pytest.raises(PermanentError):
        adapter.send(line, OutboundMessage(idempotency_key="k", text="x", recipient="+8131"))


def test_numbers_are_normalized_and_junk_refused() -> None:
    assert inbound.normalize_number("+81 (3) 1234-5678") == "+81312345678"
    assert inbound.normalize_number("０３ー１２３４ー５６７８") == "0312345678"
    for bad in ("", "12", "03\n1234", "tel:0312345678", "+81 3 1234 5678 ext 9"):
        with pytest.raises(inbound.PhoneError):
            inbound.normalize_number(bad)
