"""Sending replies by SMTP: the adapter the outbox calls for channel kind "email".

Account settings (`ChannelAccount.config`; passwords in `secrets`):

    address, from_name        the mailbox we write from
    smtp_host, smtp_port      port defaults: 465 for "tls", 587 for "starttls", 25 for "none"
    smtp_security             "starttls" (default), "tls" (implicit TLS), "none" (loopback only)
    smtp_username             secrets["smtp_password"]; no login when empty
    smtp_timeout              seconds, default 30
    tls_ca_file               a CA bundle for a private mail server's certificate
    signature                 appended below the reply after the "-- " separator
    signatures                {"ja": "...", "en": "..."}: per conversation language, else `signature`

Threading (RFC 5322 §3.6.4): In-Reply-To is the customer's message we answer, References its
References plus it. The Message-ID is made from the outbox idempotency key, so a resend after a
lost connection carries the same Message-ID and the customer's client shows one mail, not two.
The subject carries the conversation token `[#id]` for clients that drop those headers.

SMTP replies (RFC 5321 §4.2.1): 4xx is transient → TemporaryError (the outbox retries); 5xx is
permanent → PermanentError with the server's text, which the agent sees on the failed message.
An authentication failure (535) is the mailbox's settings, not this message: it is retried, so
the queued replies go out once an admin fixes the password.
"""

from __future__ import annotations

import html
import smtplib
import socket
import ssl
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import ClassVar

from madoguchi.connectors.base import (
    OutboundMessage,
    PermanentError,
    SendResult,
    TemporaryError,
    register,
)
from madoguchi.connectors.email import mailthread
from madoguchi.connectors.models import ChannelAccount

# 7bit transfer encodings (base64 / quoted-printable) pass every relay unchanged; the subject
# and names become UTF-8 encoded-words, which every Japanese mail client in use displays.
SEND_POLICY = policy.SMTP.clone(cte_type="7bit")
_PORTS = {"tls": 465, "starttls": 587, "none": 25}


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "madoguchi.invalid"


def message_id_for(idempotency_key: str, address: str) -> str:
    """Our Message-ID (without angle brackets) for an outbox row: stable across resends."""
    return f"{idempotency_key}@{_domain(address)}"


def _clean(value: str) -> str:
    """A header value on one line: a CR or LF in a subject must never start a new header."""
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def reply_subject(subject: str, conversation_id: int | None) -> str:
    """'Re: <subject> [#id]', without stacking Re: prefixes or tokens."""
    subject = _clean(subject)
    base = " ".join(mailthread.TOKEN_RE.sub("", subject).split())
    low = base.lower()
    if not (low.startswith("re:") or base.startswith("Re：") or base.startswith("RE：")):
        base = f"Re: {base}" if base else "Re:"
    if conversation_id:
        base = f"{base} {mailthread.token(conversation_id)}"
    return base[:900]


def html_part(text: str, language: str) -> str:
    paragraphs = "".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in block.split("\n")) + "</p>\n"
        for block in text.split("\n\n")
        if block.strip()
    )
    lang = html.escape(language or "und")
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"></head>'
        f'<body style="font-family: sans-serif">\n{paragraphs}</body></html>\n'
    )


def build_message(account: ChannelAccount, message: OutboundMessage) -> EmailMessage:
    """The MIME message for a reply: text and HTML alternatives, attachments, threading headers."""
    config = account.config
    address = str(config.get("address") or account.handle or "")
    if "@" not in address:
        raise PermanentError("this mailbox has no sending address (config 'address')")
    if "@" not in message.recipient or any(c in message.recipient for c in "\r\n<>,"):
        raise PermanentError(f"not an email address: {message.recipient!r}")
    context = mailthread.reply_context(account, message.idempotency_key, message.in_reply_to)
    text = message.text.replace("\r\n", "\n")
    by_language = config.get("signatures") if isinstance(config.get("signatures"), dict) else {}
    language = (context.language or "").split("-")[0].lower()
    signature = str(by_language.get(language) or config.get("signature") or "")
    signature = signature.replace("\r\n", "\n").strip()
    if signature:
        text = f"{text.rstrip()}\n\n-- \n{signature}\n"
    # U+FF5E (cp932's wave dash) and friends are fine in UTF-8; no ISO-2022-JP, so nothing is lost.
    msg = EmailMessage(policy=SEND_POLICY)
    msg["From"] = formataddr((_clean(str(config.get("from_name") or "")), address))
    msg["To"] = message.recipient
    msg["Subject"] = reply_subject(message.subject, context.conversation_id)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = f"<{message_id_for(message.idempotency_key, address)}>"
    if context.in_reply_to:
        msg["In-Reply-To"] = f"<{context.in_reply_to}>"
        msg["References"] = " ".join(f"<{r}>" for r in context.references)
    msg["MIME-Version"] = "1.0"
    msg.set_content(text, charset="utf-8")
    msg.add_alternative(html_part(text, context.language), subtype="html", charset="utf-8")
    for filename, content_type, content in message.attachments:
        maintype, _, subtype = (content_type or "application/octet-stream").partition("/")
        msg.add_attachment(
            content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=filename,
        )
    return msg


def _tls_context(account: ChannelAccount) -> ssl.SSLContext:
    ca_file = account.config.get("tls_ca_file")
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()


def _reply_text(code: int, text: bytes | str) -> str:
    body = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(body.split())}"


def _classify(code: int, text: bytes | str, what: str) -> Exception:
    reason = f"SMTP {what}: {_reply_text(code, text)}"
    if 400 <= code < 500:
        return TemporaryError(reason)
    return PermanentError(reason)


def _session(account: ChannelAccount, action: Callable[[smtplib.SMTP], object]) -> None:
    """Connect, secure, log in, run `action`; SMTP failures become Temporary/PermanentError."""
    config = account.config
    host = str(config.get("smtp_host") or "")
    if not host:
        raise PermanentError("this mailbox has no SMTP server configured (config 'smtp_host')")
    security = str(config.get("smtp_security") or "starttls")
    port = int(config.get("smtp_port") or _PORTS.get(security, 587))
    timeout = float(config.get("smtp_timeout") or 30)
    try:
        if security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=_tls_context(account)
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if security == "starttls":
                smtp.starttls(context=_tls_context(account))
            username = str(config.get("smtp_username") or "")
            if username:
                smtp.login(username, str(account.secrets.get("smtp_password") or ""))
            action(smtp)
    except smtplib.SMTPAuthenticationError as exc:
        raise TemporaryError(
            f"SMTP login refused: {_reply_text(exc.smtp_code, exc.smtp_error)}"
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        raise _classify(code, text, "recipient refused") from exc
    except smtplib.SMTPSenderRefused as exc:
        raise _classify(exc.smtp_code, exc.smtp_error, "sender refused") from exc
    except smtplib.SMTPDataError as exc:
        raise _classify(exc.smtp_code, exc.smtp_error, "message refused") from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise TemporaryError(f"SMTP server does not support what the settings ask: {exc}") from exc
    except smtplib.SMTPConnectError as exc:
        raise TemporaryError(
            f"SMTP server refused the connection: {_reply_text(exc.smtp_code, exc.smtp_error)}"
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise _classify(exc.smtp_code, exc.smtp_error, "error") from exc
    except socket.gaierror as exc:
        raise TemporaryError(f"SMTP server name {host!r} does not resolve: {exc}") from exc
    except ssl.SSLError as exc:
        raise TemporaryError(f"TLS with {host}:{port} failed: {exc}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TemporaryError(f"SMTP connection to {host}:{port} failed: {exc}") from exc


def check(account: ChannelAccount) -> str:
    """The "test connection" check: connect, TLS, log in; the error names the step that failed."""
    _session(account, lambda smtp: smtp.noop())
    return f"SMTP: connected to {account.config.get('smtp_host')} and logged in"


class EmailAdapter:
    """Delivers outbox replies over SMTP."""

    kind: ClassVar[str] = "email"

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        msg = build_message(account, message)
        _session(account, lambda smtp: smtp.send_message(msg))
        address = str(account.config.get("address") or account.handle)
        return SendResult(external_id=message_id_for(message.idempotency_key, address))

    def max_length(self, account: ChannelAccount) -> int | None:
        return None


adapter = register(EmailAdapter())
