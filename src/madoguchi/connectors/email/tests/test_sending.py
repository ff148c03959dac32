"""Replies leave by SMTP to a real server (aiosmtpd on loopback): headers, encoding, refusals."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from madoguchi.connectors.email import inbound
from madoguchi.connectors.email.fake import SmtpServer
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Delivery, Message, Outbox, OutboxStatus
from madoguchi.inbox.tasks import deliver_outbox

pytestmark = pytest.mark.slow


def _customer_mail(message_id: str = "c1@example.com", references: str = "") -> bytes:
    refs = (
        f"In-Reply-To: <{references.split()[-1][1:-1]}>\r\nReferences: {references}\r\n"
        if references
        else ""
    )
    return (
        "From: 佐藤 ゆい <yui@example.com>\r\nTo: support@acme.example\r\n"
        f"Subject: =?utf-8?b?6L+U5ZOB44Gr44Gk44GE44Gm?=\r\nMessage-ID: <{message_id}>\r\n{refs}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode() + "返品したいです。".encode()


def _use(mailbox, smtp: SmtpServer, **config: object) -> None:
    mailbox.config.update(
        {
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_security": "none",
            "smtp_timeout": 30,
        }
        | config
    )
    mailbox.save()


def _reply(
    cast,
    mailbox,
    text: str = "ご連絡ありがとうございます。\n返品を承りました～。",
    raw: bytes | None = None,
) -> Message:
    message = Message.objects.get(pk=inbound.receive(mailbox, raw or _customer_mail()).message_id)
    return inbox_actions.do_reply(message.conversation, author=cast.agent, text=text)


def test_a_reply_is_sent_threaded_in_text_and_html_with_a_japanese_subject(cast, mailbox) -> None:
    with SmtpServer() as smtp:
        _use(mailbox, smtp, signature="Acme サポート窓口\n0120-000-000")
        reply = _reply(cast, mailbox)
        assert deliver_outbox.call(reply.outbox.pk) == "sent"
    [received] = smtp.messages
    assert received.rcpt_tos == ["yui@example.com"]
    assert received.content.isascii()  # 7bit on the wire: every relay passes it unchanged
    mail = message_from_bytes(received.content, policy=policy.default)
    conversation = reply.conversation
    assert mail["Subject"] == f"Re: 返品について [#{conversation.pk}]"
    assert "=?utf-8?" in received.content.decode().split("Subject:")[1].split("\r\n")[0].lower()
    assert mail["In-Reply-To"] == "<c1@example.com>"
    assert mail["References"] == "<c1@example.com>"
    assert mail["From"].addresses[0].display_name == "Acme サポート"
    key = Outbox.objects.get(message=reply).idempotency_key
    assert mail["Message-ID"] == f"<{key}@acme.example>"
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "返品を承りました～。" in text and "\n-- \nAcme サポート窓口" in text
    html = mail.get_body(("html",)).get_content()
    assert "返品を承りました～。" in html and 'lang="ja"' in html
    reply.refresh_from_db()
    assert reply.delivery == Delivery.SENT and reply.external_id == f"{key}@acme.example"


def test_the_customers_answer_to_our_mail_lands_in_the_same_conversation(cast, mailbox) -> None:
    with SmtpServer() as smtp:
        _use(mailbox, smtp)
        reply = _reply(cast, mailbox)
        deliver_outbox.call(reply.outbox.pk)
        our_id = message_from_bytes(smtp.messages[0].content, policy=policy.default)["Message-ID"]
    answer = _customer_mail("c2@example.com", references=f"<c1@example.com> {our_id}")
    message = Message.objects.get(pk=inbound.receive(mailbox, answer).message_id)
    assert message.conversation_id == reply.conversation_id
    # The next reply's References carry the whole chain.
    second = inbox_actions.do_reply(reply.conversation, author=cast.agent, text="はい。")
    with SmtpServer() as smtp:
        _use(mailbox, smtp)
        deliver_outbox.call(second.outbox.pk)
    mail = message_from_bytes(smtp.messages[0].content, policy=policy.default)
    assert mail["In-Reply-To"] == "<c2@example.com>"
    assert mail["References"].split() == ["<c1@example.com>", our_id, "<c2@example.com>"]


def test_a_resend_carries_the_same_message_id(cast, mailbox) -> None:
    with SmtpServer() as smtp:
        _use(mailbox, smtp)
        reply = _reply(cast, mailbox)
        outbox = Outbox.objects.get(message=reply)
        from madoguchi.connectors.base import OutboundMessage
        from madoguchi.connectors.email.outbound import adapter

        out = OutboundMessage(
            idempotency_key=outbox.idempotency_key,
            text="x",
            recipient="yui@example.com",
            in_reply_to="c1@example.com",
        )
        first, second = adapter.send(mailbox, out), adapter.send(mailbox, out)
    assert first.external_id == second.external_id
    ids = {message_from_bytes(m.content)["Message-ID"] for m in smtp.messages}
    assert len(smtp.messages) == 2 and len(ids) == 1


def test_a_permanent_smtp_refusal_fails_the_message_with_the_servers_reason(cast, mailbox) -> None:
    with SmtpServer() as smtp:
        _use(mailbox, smtp)
        smtp.refuse_recipients(
            "550 5.1.1 <yui@example.com>: Recipient address rejected: User unknown"
        )
        reply = _reply(cast, mailbox)
        assert deliver_outbox.call(reply.outbox.pk) == "failed"
    reply.refresh_from_db()
    assert reply.delivery == Delivery.FAILED
    assert "550 5.1.1" in reply.delivery_error and "User unknown" in reply.delivery_error


def test_a_temporary_smtp_refusal_is_retried(cast, mailbox) -> None:
    with SmtpServer() as smtp:
        _use(mailbox, smtp)
        smtp.refuse_data("451 4.3.0 Try again later")
        reply = _reply(cast, mailbox)
        assert deliver_outbox.call(reply.outbox.pk) == "retrying"
    outbox = Outbox.objects.get(message=reply)
    assert outbox.status == OutboxStatus.PENDING and "451 4.3.0" in outbox.last_error
    mailbox.refresh_from_db()
    assert "451" in mailbox.last_error


@pytest.mark.parametrize(
    ("password", "outcome", "sent", "error"),
    [("pw-1", "sent", 1, ""), ("wrong", "retrying", 0, "SMTP login refused: 535")],
    ids=["the right password sends", "a wrong password is retried, not failed"],
)
def test_starttls_and_login(cast, mailbox, password, outcome, sent, error) -> None:
    with SmtpServer(starttls=True, username="support", password="pw-1") as smtp:
        _use(
            mailbox,
            smtp,
            smtp_security="starttls",
            smtp_username="support",
            tls_ca_file=smtp.ca_file,
        )
        mailbox.secrets["smtp_password"] = password
        mailbox.save()
        reply = _reply(cast, mailbox)
        assert deliver_outbox.call(reply.outbox.pk) == outcome
        assert len(smtp.messages) == sent
    assert error in Outbox.objects.get(message=reply).last_error


def test_an_unreachable_server_is_a_temporary_error(cast, mailbox) -> None:
    from madoguchi.connectors.email.fake import free_port

    mailbox.config.update(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none")
    mailbox.save()
    reply = _reply(cast, mailbox)
    assert deliver_outbox.call(reply.outbox.pk) == "retrying"
    assert "SMTP connection to 127.0.0.1" in Outbox.objects.get(message=reply).last_error


def test_attachments_go_out_with_their_japanese_file_names(cast, mailbox) -> None:
    with SmtpServer() as smtp:
        _use(mailbox, smtp)
        message = Message.objects.get(pk=inbound.receive(mailbox, _customer_mail()).message_id)
        reply = inbox_actions.do_reply(
            message.conversation,
            author=cast.agent,
            text="返品伝票を添付します。",
            attachments=[
                inbox_actions.NewAttachment("返品伝票.pdf", "application/pdf", b"%PDF-1.4 x")
            ],
        )
        assert deliver_outbox.call(reply.outbox.pk) == "sent"
    mail = message_from_bytes(smtp.messages[0].content, policy=policy.default)
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "返品伝票.pdf"
    assert attachment.get_content() == b"%PDF-1.4 x"


def test_the_connection_check_names_the_step_that_failed(mailbox) -> None:
    from madoguchi.connectors.base import TemporaryError
    from madoguchi.connectors.email.outbound import check

    with SmtpServer(starttls=True, username="support", password="pw-1") as smtp:
        _use(mailbox, smtp, smtp_security="starttls", smtp_username="support")
        mailbox.secrets["smtp_password"] = "pw-1"
        with pytest.raises(TemporaryError, match="TLS with 127.0.0.1"):
            check(mailbox)  # a self-signed certificate we were not told to trust
        mailbox.config["tls_ca_file"] = smtp.ca_file
        assert check(mailbox).startswith("SMTP: connected")
        mailbox.secrets["smtp_password"] = "wrong"
        with pytest.raises(TemporaryError, match="SMTP login refused: 535"):
            check(mailbox)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("返品について", "Re: 返品について [#7]"),
        ("Re: 返品について [#7]", "Re: 返品について [#7]"),
        ("RE: 返品\r\nBcc: victim@example.com", "RE: 返品 Bcc: victim@example.com [#7]"),
        ("", "Re: [#7]"),
    ],
)
def test_reply_subjects_never_stack_prefixes_or_break_lines(subject: str, expected: str) -> None:
    from madoguchi.connectors.email.outbound import reply_subject

    assert reply_subject(subject, 7) == expected


def test_the_signature_follows_the_conversations_language(cast, mailbox) -> None:
    with SmtpServer() as smtp:
        _use(mailbox, smtp, signature="Acme Support", signatures={"ja": "アクメ サポート窓口"})
        reply = _reply(cast, mailbox)  # the customer wrote in Japanese
        english = _reply(
            cast,
            mailbox,
            text="Thanks!",
            raw=b"From: a@example.com\r\nSubject: refund\r\nMessage-ID: <en-1@example.com>\r\n\r\n"
            b"Hello, I would like a refund for my order please.",
        )
        deliver_outbox.call(reply.outbox.pk)
        deliver_outbox.call(english.outbox.pk)
    texts = [
        message_from_bytes(m.content, policy=policy.default).get_body(("plain",)).get_content()
        for m in smtp.messages
    ]
    assert "-- \r\nアクメ サポート窓口" in texts[0]
    assert "-- \r\nAcme Support" in texts[1]
