"""Replies on a web form conversation go out by email: the adapter the outbox calls for "webform".

The form asked for the customer's email address, so that is where our answer goes. Through the
brand's email account when it has one (the same SMTP session, threading headers and signature as
any mail reply: `connectors.email.outbound`), else through Django's mail backend (EMAIL_* settings)
with the same Message-ID, In-Reply-To and References, so the customer's mail client shows the
confirmation and every answer as one thread.

The confirmation mail (`confirmation_mail`) is sent by `tasks.send_confirmation` through Django's
mail backend, in the language the form was shown in, with the conversation's reference number.
"""

from __future__ import annotations

import smtplib
from email.utils import formataddr
from typing import ClassVar

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import translation
from django.utils.translation import gettext as _

from madoguchi.connectors.base import (
    OutboundMessage,
    PermanentError,
    SendResult,
    TemporaryError,
    adapter_for,
    register,
)
from madoguchi.connectors.email import mailthread
from madoguchi.connectors.email.outbound import html_part, message_id_for, reply_subject
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webform import queries
from madoguchi.inbox.models import Message


def _one_line(value: str) -> str:
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def _check_recipient(recipient: str) -> None:
    if "@" not in recipient or any(c in recipient for c in "\r\n<>,"):
        raise PermanentError(f"not an email address: {recipient!r}")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _send_django(mail: EmailMultiAlternatives) -> None:
    """Send through Django's backend; SMTP refusals become Temporary/PermanentError."""
    try:
        mail.send()
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        error = f"SMTP recipient refused: {code} {_text(text)}"
        raise (TemporaryError(error) if 400 <= code < 500 else PermanentError(error)) from exc
    except smtplib.SMTPResponseException as exc:
        error = f"SMTP error: {exc.smtp_code} {_text(exc.smtp_error)}"
        raise (
            TemporaryError(error) if 400 <= exc.smtp_code < 500 else PermanentError(error)
        ) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise TemporaryError(f"mail server unreachable: {exc}") from exc


def build_reply(account: ChannelAccount, message: OutboundMessage) -> EmailMultiAlternatives:
    """An agent's reply as a Django mail from the form's sender, threaded on the submission."""
    _check_recipient(message.recipient)
    context = mailthread.reply_context(account, message.idempotency_key, message.in_reply_to)
    address = queries.sender_address(account)
    headers = {"Message-ID": f"<{message_id_for(message.idempotency_key, address)}>"}
    if context.in_reply_to:
        headers["In-Reply-To"] = f"<{context.in_reply_to}>"
        headers["References"] = " ".join(f"<{r}>" for r in context.references)
    text = message.text.replace("\r\n", "\n")
    signature = str(account.config.get("signature") or "").strip()
    if signature:
        text = f"{text.rstrip()}\n\n-- \n{signature}\n"
    mail = EmailMultiAlternatives(
        subject=reply_subject(message.subject, context.conversation_id),
        body=text,
        from_email=formataddr((_one_line(queries.sender_name(account)), address)),
        to=[message.recipient],
        headers=headers,
    )
    mail.attach_alternative(html_part(text, context.language), "text/html")
    for filename, content_type, content in message.attachments:
        mail.attach(filename, content, content_type or "application/octet-stream")
    return mail


def confirmation_mail(message: Message) -> EmailMultiAlternatives:
    """The "we received your message" mail, in the form's language, with the reference number."""
    account = message.channel_account
    assert account is not None
    conversation = message.conversation
    raw = message.raw or {}
    recipient = str(raw.get("email") or "")
    _check_recipient(recipient)
    language = str(raw.get("form_language") or conversation.language or settings.LANGUAGE_CODE)
    address = queries.sender_address(account)
    submission_id = message.external_id or ""
    with translation.override(language):
        reference = f"#{conversation.pk}"
        subject = _("We received your message: %(subject)s") % {
            "subject": _one_line(conversation.subject)[:150]
        }
        lines = [
            _("Dear %(name)s,") % {"name": _one_line(str(raw.get("name") or ""))},
            "",
            _(
                "Thank you for contacting %(brand)s. We have received your message and a member of "
                "our team will answer you by email."
            )
            % {"brand": account.brand.name},
            "",
            _("Your reference number: %(reference)s") % {"reference": reference},
            _("Please quote it if you contact us again about this matter."),
            "",
            "---- " + _("Your message") + " ----",
            conversation.subject,
            "",
            message.text,
        ]
    body = "\n".join(lines)
    domain = address.rpartition("@")[2] or "madoguchi.invalid"
    headers = {
        "Message-ID": f"<confirm-{submission_id.partition('@')[0]}@{domain}>",
        "Auto-Submitted": "auto-replied",  # RFC 3834: no robot answers this
    }
    if submission_id:
        headers["In-Reply-To"] = f"<{submission_id}>"
        headers["References"] = f"<{submission_id}>"
    mail = EmailMultiAlternatives(
        subject=f"{subject} {mailthread.token(conversation.pk)}",
        body=body,
        from_email=formataddr((_one_line(queries.sender_name(account)), address)),
        to=[recipient],
        headers=headers,
    )
    mail.attach_alternative(html_part(body, language), "text/html")
    return mail


def send_confirmation(message: Message) -> str:
    """Send the confirmation for one submission; returns the address it went to."""
    mail = confirmation_mail(message)
    _send_django(mail)
    return mail.to[0]


class WebformAdapter:
    """Answers web form customers by email."""

    kind: ClassVar[str] = "webform"

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        mailbox = queries.brand_mailbox(account)
        if mailbox is not None:
            return adapter_for(mailbox).send(mailbox, message)
        mail = build_reply(account, message)
        _send_django(mail)
        return SendResult(external_id=mail.extra_headers["Message-ID"].strip("<>"))

    def max_length(self, account: ChannelAccount) -> int | None:
        return None


adapter = register(WebformAdapter())
