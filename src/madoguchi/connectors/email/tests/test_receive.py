"""Mail into the inbox: conversations, threading, auto-replies, bounces, quarantine, endpoint."""

from __future__ import annotations

from django.test import Client

from madoguchi.connectors.email import inbound
from madoguchi.connectors.email.views import SIGNATURE_HEADER, sign
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Conversation, Delivery, Message, Outbox, Status
from madoguchi.ingest.models import Quarantine


def _mail(
    message_id: str,
    *,
    sender: str = "Yui Sato <yui@example.com>",
    subject: str = "返品について",
    body: str = "返品したいです。",
    headers: str = "",
) -> bytes:
    head = f"From: {sender}\r\nTo: support@acme.example\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n{headers}"
    return (
        head.encode("utf-8")
        + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + body.encode()
    )


def _sent_reply(cast, conversation: Conversation, message_id: str) -> Message:
    """An agent's reply that the SMTP server accepted with this Message-ID."""
    reply = inbox_actions.do_reply(conversation, author=cast.agent, text="承知しました。")
    inbox_actions.do_record_sent(Outbox.objects.get(message=reply), message_id)
    reply.refresh_from_db()
    return reply


def test_a_new_mail_opens_a_conversation_with_subject_author_and_attachments(mailbox, eml) -> None:
    outcome = inbound.receive(mailbox, eml("attachment.eml"))
    assert outcome.result == "created"
    message = Message.objects.get(pk=outcome.message_id)
    conversation = message.conversation
    assert conversation.subject == "領収書を添付します"
    assert conversation.contact.email == "mika@example.jp"
    assert message.identity.display_name == "Mika Kato"
    assert sorted(a.filename for a in message.attachments.all()) == ["画面.png", "領収書①.pdf"]
    assert message.raw["message_id"] == "attach-1@example.jp"


def test_the_same_mail_twice_is_stored_once(mailbox, eml) -> None:
    assert inbound.receive(mailbox, eml("shift_jis.eml")).result == "created"
    assert inbound.receive(mailbox, eml("shift_jis.eml")).result == "duplicate"
    assert Message.objects.filter(channel_account=mailbox).count() == 1


def test_inbound_html_is_sanitized_before_it_is_stored(mailbox, eml) -> None:
    message = Message.objects.get(
        pk=inbound.receive(mailbox, eml("utf8_alternative.eml")).message_id
    )
    assert "<script" not in message.html and "<b>403</b>" in message.html


def test_a_reply_to_our_mail_threads_by_in_reply_to_and_reopens(cast, mailbox) -> None:
    first = Message.objects.get(pk=inbound.receive(mailbox, _mail("c1@example.com")).message_id)
    conversation = first.conversation
    _sent_reply(cast, conversation, "mdg-abc@acme.example")
    inbox_actions.do_set_status(conversation, Status.RESOLVED, actor=cast.agent)
    reply = _mail(
        "c2@example.com",
        subject=f"Re: 返品について [#{conversation.pk}]",
        headers="In-Reply-To: <mdg-abc@acme.example>\r\nReferences: <c1@example.com> <mdg-abc@acme.example>\r\n",
    )
    second = Message.objects.get(pk=inbound.receive(mailbox, reply).message_id)
    assert second.conversation_id == conversation.pk
    assert second.reply_to_external_id == "mdg-abc@acme.example"
    conversation.refresh_from_db()
    assert conversation.status == Status.OPEN


def test_a_client_that_drops_in_reply_to_still_threads_by_the_subject_token(mailbox) -> None:
    conversation = Message.objects.get(
        pk=inbound.receive(mailbox, _mail("t1@example.com")).message_id
    ).conversation
    later = _mail("t2@example.com", subject=f"RE: 返品について [#{conversation.pk}]")
    assert (
        Message.objects.get(pk=inbound.receive(mailbox, later).message_id).conversation_id
        == conversation.pk
    )


def test_a_subject_token_from_another_sender_does_not_join_that_conversation(mailbox) -> None:
    conversation = Message.objects.get(
        pk=inbound.receive(mailbox, _mail("o1@example.com")).message_id
    ).conversation
    intruder = _mail(
        "o2@evil.example", sender="x@evil.example", subject=f"Re: [#{conversation.pk}]"
    )
    assert (
        Message.objects.get(pk=inbound.receive(mailbox, intruder).message_id).conversation_id
        != conversation.pk
    )


def test_a_new_subject_from_the_same_customer_is_a_new_conversation(mailbox) -> None:
    a = Message.objects.get(pk=inbound.receive(mailbox, _mail("n1@example.com")).message_id)
    b = Message.objects.get(
        pk=inbound.receive(mailbox, _mail("n2@example.com", subject="請求書")).message_id
    )
    assert a.conversation_id != b.conversation_id


def test_an_auto_reply_is_quarantined_and_never_reopens_the_conversation(
    cast, mailbox, eml
) -> None:
    conversation = Message.objects.get(
        pk=inbound.receive(
            mailbox, _mail("a1@example.co.jp", sender="yamamoto@example.co.jp")
        ).message_id
    ).conversation
    _sent_reply(cast, conversation, "mdg-aaaa@acme.example")
    conversation.refresh_from_db()
    assert conversation.status == Status.PENDING
    outcome = inbound.receive(mailbox, eml("auto_reply.eml"))
    assert outcome.result == "auto_reply"
    conversation.refresh_from_db()
    assert conversation.status == Status.PENDING
    assert not Message.objects.filter(external_id="ooo-1@example.co.jp").exists()
    quarantined = Quarantine.objects.get(channel_account=mailbox)
    assert (
        "auto-reply" in quarantined.reason and "Auto-Submitted: auto-replied" in quarantined.reason
    )
    inbound.receive(mailbox, eml("auto_reply.eml"))  # fetched again: no second quarantine row
    assert Quarantine.objects.filter(channel_account=mailbox).count() == 1


def test_a_bounce_marks_the_reply_it_bounces_as_failed_with_the_reason(cast, mailbox, eml) -> None:
    conversation = Message.objects.get(
        pk=inbound.receive(mailbox, _mail("b1@example.net", sender="nobody@example.net")).message_id
    ).conversation
    reply = _sent_reply(cast, conversation, "mdg-0123456789abcdef0123456789abcdef@acme.example")
    assert reply.delivery == Delivery.SENT
    outcome = inbound.receive(mailbox, eml("bounce.eml"))
    assert outcome.result == "bounce"
    reply.refresh_from_db()
    assert reply.delivery == Delivery.FAILED
    assert "5.1.1" in reply.delivery_error and "User unknown" in reply.delivery_error
    assert (
        Message.objects.filter(conversation=conversation).count() == 2
    )  # the DSN itself is not a message


def test_a_bounce_for_mail_we_never_sent_is_quarantined(mailbox, eml) -> None:
    assert inbound.receive(mailbox, eml("bounce.eml")).result == "quarantined"
    assert "did not send" in Quarantine.objects.get(channel_account=mailbox).reason


def test_malformed_mail_is_quarantined_with_its_reason_and_raw_bytes(mailbox, eml) -> None:
    for name in ("malformed.eml", "no_from.eml"):
        assert inbound.receive(mailbox, eml(name)).result == "quarantined"
    reasons = " | ".join(q.reason for q in Quarantine.objects.filter(channel_account=mailbox))
    assert "StartBoundaryNotFoundDefect" in reasons and "no From header" in reasons
    assert all(
        "support@acme.example" in q.payload
        for q in Quarantine.objects.filter(channel_account=mailbox)
    )


# --- the inbound POST endpoint ---------------------------------------------------------------


def _post(client: Client, account_id: int, body: bytes, signature: str | None) -> object:
    headers = {} if signature is None else {"HTTP_X_MADOGUCHI_SIGNATURE": signature}
    return client.post(
        f"/connectors/email/{account_id}/inbound/", body, content_type="message/rfc822", **headers
    )


def test_a_signed_post_of_a_raw_mail_is_ingested_once(mailbox, eml) -> None:
    body = eml("iso2022jp_cp50220.eml")
    client = Client(enforce_csrf_checks=True)
    response = _post(client, mailbox.pk, body, sign("s3cret-inbound", body))
    assert response.status_code == 202 and response.json()["result"] == "created"
    again = _post(client, mailbox.pk, body, sign("s3cret-inbound", body))
    assert again.json()["result"] == "duplicate"
    assert Conversation.objects.get(channel_account=mailbox).subject == "①返品について㈱アクメ様"


def test_a_post_with_a_missing_or_wrong_signature_is_refused(mailbox, eml) -> None:
    body = eml("shift_jis.eml")
    client = Client()
    assert _post(client, mailbox.pk, body, None).status_code == 401
    assert _post(client, mailbox.pk, body, sign("wrong", body)).status_code == 401
    assert _post(client, mailbox.pk, body + b"x", sign("s3cret-inbound", body)).status_code == 401
    assert not Message.objects.filter(channel_account=mailbox).exists()
    assert SIGNATURE_HEADER == "X-Madoguchi-Signature"


def test_a_post_over_the_size_limit_is_refused_with_413(mailbox) -> None:
    mailbox.config["max_message_bytes"] = 1000
    mailbox.save()
    body = _mail("big@example.com", body="x" * 2000)
    assert _post(Client(), mailbox.pk, body, sign("s3cret-inbound", body)).status_code == 413


def test_a_post_to_an_unknown_or_other_kind_of_account_is_404(cast, mailbox) -> None:
    body = _mail("u@example.com")
    assert _post(Client(), cast.account.pk, body, sign("s3cret-inbound", body)).status_code == 404
    assert Client().get(f"/connectors/email/{mailbox.pk}/inbound/").status_code == 405
