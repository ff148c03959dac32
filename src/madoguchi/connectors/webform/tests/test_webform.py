"""The contact form: hosted and embedded, spam quarantined, each submission a conversation,
a confirmation mail in the visitor's language, and our answers sent by email."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext
from django_tasks_db.models import DBTaskResult

from madoguchi.conftest import csrf_post
from madoguchi.connectors.email import inbound as email_inbound
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webform import tasks
from madoguchi.connectors.webform.fake import FormVisitor
from madoguchi.contacts.models import Identity
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Conversation, Delivery, Message
from madoguchi.inbox.tasks import deliver_outbox
from madoguchi.ingest.models import Quarantine

pytestmark = pytest.mark.django_db

CATEGORIES = [
    {"name": "Billing", "ja": "お支払い", "en": "Billing"},
    {"name": "Returns", "ja": "返品・交換", "en": "Returns"},
]


@pytest.fixture
def form(cast) -> ChannelAccount:
    cache.clear()  # the per-address submission counts of earlier tests
    return ChannelAccount.objects.create(
        workspace=cast.ws,
        brand=cast.brand,
        kind="webform",
        name="Acme contact form",
        config={"categories": CATEGORIES, "from_address": "support@acme.example"},
    )


def run_confirmations() -> list[dict]:
    """Run the queued confirmation tasks, as a worker would."""
    results = []
    for row in DBTaskResult.objects.filter(task_path__endswith="webform.tasks.send_confirmation"):
        results.append(tasks.send_confirmation.call(*row.args_kwargs["args"]))
        row.delete()
    return results


def submit(cast, django_capture_on_commit_callbacks, **fields):
    with django_capture_on_commit_callbacks(execute=True):
        return FormVisitor(cast.brand.pk, lang=fields.pop("lang", "ja")).submit(**fields)


def test_the_form_is_served_per_brand_in_japanese_and_english(cast, form) -> None:
    ja = Client().get(f"/connectors/webform/{cast.brand.pk}/?lang=ja").content.decode()
    assert '<html lang="ja">' in ja and "返品・交換" in ja
    assert 'name="website"' in ja and 'name="token"' in ja and 'autocomplete="email"' in ja
    en = Client().get(f"/connectors/webform/{cast.brand.pk}/?lang=en").content.decode()
    assert '<html lang="en">' in en and "Contact us" in en and "Returns" in en
    assert Client().get(f"/connectors/webform/{cast.ws_b.pk + 10_000}/").status_code == 404


def test_a_brand_without_an_active_form_has_none(cast, form) -> None:
    form.is_active = False
    form.save()
    assert Client().get(f"/connectors/webform/{cast.brand.pk}/").status_code == 404


def test_a_submission_becomes_a_conversation_with_a_confirmation_in_japanese(
    cast, form, django_capture_on_commit_callbacks
) -> None:
    photo = SimpleUploadedFile(
        "箱.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, content_type="image/png"
    )
    response = submit(
        cast,
        django_capture_on_commit_callbacks,
        category="Returns",
        files=[photo],
        message="届いた箱が潰れていました。\n交換できますか？",
    )
    assert response.status_code == 200
    conversation = Conversation.objects.get(channel_account=form)
    assert f"#{conversation.pk}" in response.content.decode()
    assert conversation.subject == "返品について" and conversation.language == "ja"
    assert [label.name for label in conversation.labels.all()] == ["Returns"]
    message = conversation.messages.get()
    assert message.text == "届いた箱が潰れていました。\n交換できますか？"
    assert [a.filename for a in message.attachments.all()] == ["箱.png"]
    assert message.raw["category"] == "Returns" and message.raw["email"] == "yui@example.com"
    # One contact behind a form identity and an email identity of the same address.
    kinds = Identity.objects.filter(contact=conversation.contact).values_list("kind", flat=True)
    assert sorted(kinds) == ["email", "webform"]
    assert conversation.contact.email == "yui@example.com"

    assert run_confirmations() == [{"sent": "yui@example.com"}]
    [confirmation] = mail.outbox
    assert confirmation.to == ["yui@example.com"]
    with translation.override("ja"):  # whatever the Japanese catalogue says today
        greeting = gettext("Dear %(name)s,") % {"name": "佐藤 結衣"}
        received = gettext("We received your message: %(subject)s") % {"subject": "返品について"}
    assert confirmation.subject == f"{received} [#{conversation.pk}]"
    assert f"#{conversation.pk}" in confirmation.body and greeting in confirmation.body
    assert confirmation.extra_headers["In-Reply-To"] == f"<{message.external_id}>"
    assert confirmation.extra_headers["Auto-Submitted"] == "auto-replied"


def test_the_confirmation_is_in_english_for_the_english_form(
    cast, form, django_capture_on_commit_callbacks
) -> None:
    submit(
        cast,
        django_capture_on_commit_callbacks,
        lang="en",
        category="Billing",
        name="Ann Lee",
        subject="Invoice",
        message="Where is my invoice?",
    )
    run_confirmations()
    [confirmation] = mail.outbox
    assert confirmation.subject.startswith("We received your message: Invoice")
    assert "Dear Ann Lee," in confirmation.body


def test_submitting_the_same_page_twice_stores_it_once(cast, form) -> None:
    visitor = FormVisitor(cast.brand.pk)
    token = visitor.token(seconds_taken=30)
    for _ in range(2):
        assert visitor.submit(category="Billing", token=token).status_code == 200
    assert Message.objects.filter(channel_account=form).count() == 1


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ({"honeypot": "https://cheap-pills.example"}, "honeypot"),
        ({"seconds_taken": 0}, "after it was shown"),
        ({"token": "forged:token:value"}, "forged"),
        ({"token": ""}, "missing"),
    ],
)
def test_spam_is_quarantined_with_its_reason_not_dropped(cast, form, how, reason) -> None:
    response = FormVisitor(cast.brand.pk).submit(category="Billing", **how)
    assert response.status_code == 200  # a robot sees the usual thank-you page
    assert not Message.objects.filter(channel_account=form).exists()
    [kept] = Quarantine.objects.filter(channel_account=form)
    assert reason in kept.reason and "返品について" in kept.payload


@pytest.mark.parametrize("field", ["name", "email", "subject"])
def test_a_header_injection_attempt_is_refused_with_a_clear_error(cast, form, field) -> None:
    values = {field: "x@example.com\r\nBcc: victims@example.net"}
    response = FormVisitor(cast.brand.pk, lang="en").submit(category="Billing", **values)
    assert response.status_code == 400
    assert "line breaks are not allowed" in response.content.decode()
    assert not Message.objects.filter(channel_account=form).exists()
    [kept] = Quarantine.objects.filter(channel_account=form)
    assert "header injection" in kept.reason and "Bcc: victims@example.net" in kept.payload


def test_missing_fields_and_oversized_or_too_many_files_are_explained(cast, form) -> None:
    form.config.update(max_attachments=1, max_attachment_bytes=1000)
    form.save()
    visitor = FormVisitor(cast.brand.pk, lang="en")
    big = SimpleUploadedFile("big.pdf", b"0" * 2000, content_type="application/pdf")
    page = visitor.submit(category="Billing", files=[big]).content.decode()
    assert "big.pdf is too large" in page and 'aria-invalid="true"' in page
    two = [SimpleUploadedFile(f"{n}.txt", b"x") for n in "ab"]
    assert (
        "Attach at most 1 files." in visitor.submit(category="Billing", files=two).content.decode()
    )
    response = visitor.submit(email="not-an-address", message="")
    assert response.status_code == 400 and 'role="alert"' in response.content.decode()
    assert not Message.objects.filter(channel_account=form).exists()
    assert not Quarantine.objects.exists()  # a person's mistakes are not spam


def test_the_embeddable_form_can_be_framed_only_by_the_configured_sites(cast, form) -> None:
    response = Client().get(f"/connectors/webform/{cast.brand.pk}/embed/?lang=ja")
    assert response.status_code == 200 and "X-Frame-Options" not in response
    assert "help-search" not in response.content.decode()  # no help-site chrome in the iframe
    assert "X-Frame-Options" in Client().get(f"/connectors/webform/{cast.brand.pk}/")
    form.config["embed_origins"] = ["https://www.acme.example"]
    form.save()
    response = Client().get(f"/connectors/webform/{cast.brand.pk}/embed/")
    assert response["Content-Security-Policy"] == "frame-ancestors 'self' https://www.acme.example"


def test_an_embedded_submission_works_without_cookies(cast, form) -> None:
    response = FormVisitor(cast.brand.pk, embed=True).submit(category="Billing")
    assert response.status_code == 200 and "#" in response.content.decode()
    assert Message.objects.filter(channel_account=form).count() == 1


def test_the_help_site_links_to_the_form_only_when_the_brand_has_one(cast) -> None:
    url = f"/help/{cast.brand.pk}/"
    link = f'href="/connectors/webform/{cast.brand.pk}/'
    assert link not in Client().get(url).content.decode()
    ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="webform", name="Form")
    assert link in Client().get(url).content.decode()


def test_a_later_mail_from_the_same_address_lands_with_the_same_contact(
    cast, form, django_capture_on_commit_callbacks
) -> None:
    submit(cast, django_capture_on_commit_callbacks, category="Billing")
    mailbox = ChannelAccount.objects.create(
        workspace=cast.ws,
        brand=cast.brand,
        kind="email",
        name="support@acme.example",
        config={"address": "support@acme.example"},
    )
    raw = (
        "From: Yui <YUI@example.com>\r\nTo: support@acme.example\r\nSubject: hello\r\n"
        "Message-ID: <later@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nまた質問です"
    ).encode()
    outcome = email_inbound.receive(mailbox, raw)
    later = Message.objects.get(pk=outcome.message_id)
    first = Message.objects.get(channel_account=form)
    assert later.conversation.contact_id == first.conversation.contact_id


def test_an_agents_reply_goes_out_by_email_threaded_on_the_submission(
    cast, form, django_capture_on_commit_callbacks
) -> None:
    submit(cast, django_capture_on_commit_callbacks, category="Billing")
    run_confirmations()
    conversation = Conversation.objects.get(channel_account=form)
    submission = conversation.messages.get()
    reply = inbox_actions.do_reply(conversation, author=cast.agent, text="確認いたします。")
    assert deliver_outbox.call(reply.outbox.pk) == "sent"
    answer = mail.outbox[-1]
    assert answer.to == ["yui@example.com"]
    assert answer.subject == f"Re: 返品について [#{conversation.pk}]"
    assert answer.extra_headers["In-Reply-To"] == f"<{submission.external_id}>"
    assert answer.extra_headers["References"] == f"<{submission.external_id}>"
    wire = message_from_bytes(answer.message().as_bytes(), policy=policy.default)
    assert "確認いたします。" in wire.get_body(("plain",)).get_content()
    reply.refresh_from_db()
    assert reply.delivery == Delivery.SENT
    assert f"<{reply.external_id}>" == answer.extra_headers["Message-ID"]


@pytest.mark.slow
def test_with_a_brand_mailbox_replies_leave_through_its_smtp_server(
    cast, form, django_capture_on_commit_callbacks
) -> None:
    from madoguchi.connectors.email.fake import SmtpServer

    submit(cast, django_capture_on_commit_callbacks, category="Billing")
    conversation = Conversation.objects.get(channel_account=form)
    with SmtpServer() as smtp:
        ChannelAccount.objects.create(
            workspace=cast.ws,
            brand=cast.brand,
            kind="email",
            name="support@acme.example",
            config={
                "address": "support@acme.example",
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "smtp_security": "none",
                "smtp_timeout": 30,
            },
        )
        reply = inbox_actions.do_reply(conversation, author=cast.agent, text="承知しました。")
        assert deliver_outbox.call(reply.outbox.pk) == "sent"
    [received] = smtp.messages
    wire = message_from_bytes(received.content, policy=policy.default)
    assert received.rcpt_tos == ["yui@example.com"]
    assert wire["In-Reply-To"] == f"<{conversation.messages.first().external_id}>"


def test_the_settings_page_with_the_embed_snippet_is_for_admins_of_the_workspace(
    cast, form, client_for
) -> None:
    url = f"/connectors/webform/{form.pk}/settings/"
    page = client_for(cast.admin).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/connectors/webform/{cast.brand.pk}/embed/?lang=ja" in html and "&lt;iframe" in html
    assert client_for(cast.agent).get(url).status_code == 403
    assert client_for(cast.agent_b).get(url).status_code in (403, 404)


def test_the_form_refuses_other_methods(cast, form, client_for) -> None:
    response = csrf_post(client_for(cast.agent), f"/connectors/webform/{cast.brand.pk}/", {})
    assert response.status_code == 400  # an empty post: errors, nothing stored
    assert Client().put(f"/connectors/webform/{cast.brand.pk}/").status_code == 405


def _answered(cast, form, capture) -> tuple[Conversation, Message, ChannelAccount]:
    """A form submission answered by an agent through Django's mail backend, and the mailbox."""
    submit(cast, capture, category="Billing")
    conversation = Conversation.objects.get(channel_account=form)
    reply = inbox_actions.do_reply(conversation, author=cast.agent, text="確認いたします。")
    deliver_outbox.call(reply.outbox.pk)
    reply.refresh_from_db()
    mailbox = ChannelAccount.objects.create(
        workspace=cast.ws,
        brand=cast.brand,
        kind="email",
        name="support@acme.example",
        config={"address": "support@acme.example"},
    )
    return conversation, reply, mailbox


def test_the_customers_mail_answer_continues_the_form_conversation(
    cast, form, django_capture_on_commit_callbacks
) -> None:
    conversation, reply, mailbox = _answered(cast, form, django_capture_on_commit_callbacks)
    raw = (
        "From: Yui <yui@example.com>\r\nTo: support@acme.example\r\n"
        f"Subject: Re: 返品について [#{conversation.pk}]\r\nMessage-ID: <answer@example.com>\r\n"
        f"In-Reply-To: <{reply.external_id}>\r\nReferences: <{reply.external_id}>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nありがとうございます。"
    ).encode()
    message = Message.objects.get(pk=email_inbound.receive(mailbox, raw).message_id)
    assert message.conversation_id == conversation.pk
    assert not Conversation.objects.filter(channel_account=mailbox).exists()


def test_someone_else_citing_our_message_id_gets_a_conversation_of_their_own(
    cast, form, django_capture_on_commit_callbacks
) -> None:
    conversation, reply, mailbox = _answered(cast, form, django_capture_on_commit_callbacks)
    raw = (
        "From: Mallory <mallory@example.net>\r\nTo: support@acme.example\r\nSubject: Re: x\r\n"
        f"Message-ID: <forged@example.net>\r\nIn-Reply-To: <{reply.external_id}>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nlet me in"
    ).encode()
    message = Message.objects.get(pk=email_inbound.receive(mailbox, raw).message_id)
    assert message.conversation_id != conversation.pk
    assert message.conversation.channel_account == mailbox


def test_a_bounce_of_our_answer_marks_it_failed(
    cast, form, django_capture_on_commit_callbacks
) -> None:
    conversation, reply, mailbox = _answered(cast, form, django_capture_on_commit_callbacks)
    dsn = (
        "From: MAILER-DAEMON@mx.example.com\r\nTo: support@acme.example\r\n"
        "Subject: Undelivered Mail\r\nMessage-ID: <dsn1@mx.example.com>\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
        "Final-Recipient: rfc822; yui@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{reply.external_id}>\r\n\r\n--b--\r\n"
    ).encode()
    assert email_inbound.receive(mailbox, dsn).result == "bounce"
    reply.refresh_from_db()
    assert reply.delivery == Delivery.FAILED and "5.1.1" in reply.delivery_error


def test_a_flood_from_one_address_is_refused_with_429(cast, form) -> None:
    form.config["max_per_ip_per_hour"] = 2
    form.save()
    codes = [
        FormVisitor(cast.brand.pk, lang="en").submit(category="Billing").status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    assert Message.objects.filter(channel_account=form).count() == 2
    page = FormVisitor(cast.brand.pk, lang="en").submit(category="Billing").content.decode()
    assert "Too many messages" in page
