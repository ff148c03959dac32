"""Inbound mail: raw RFC 5322 bytes into an `InboundItem`, a bounce, or an auto-reply; then ingest.

Parsing uses the standard library's `email` package with the modern policy. Everything that
decodes text goes through `charsets.decode`, which survives the encodings Japanese mail really
arrives in (see PLATFORMS.md, Email).

Threading (RFC 5322 §3.6.4): `reply_to` is In-Reply-To, then References newest first; the
conversation token `[#123]` that our outgoing subjects carry is the fallback for clients that drop
those headers. A mail with neither starts a new conversation (its root Message-ID is the
conversation's thread key), as mail users expect: a new subject is a new ticket.

Auto-replies (Auto-Submitted, Precedence: bulk/junk/auto_reply, X-Autoreply…) are quarantined
with their reason, not ingested: an out-of-office answer to our reply would otherwise reopen the
conversation and could start a mail loop with another robot. Bounces (DSN, RFC 3464) mark the
outbound message they bounce as failed, with the server's reason.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import logging
import re
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Literal

from django.conf import settings
from django.db import DatabaseError

from madoguchi.connectors.base import InboundAttachment, InboundAuthor, InboundItem
from madoguchi.connectors.email import charsets, mailthread, quoting
from madoguchi.connectors.models import ChannelAccount
from madoguchi.ingest.actions import do_ingest, do_quarantine
from madoguchi.ingest.models import Quarantine

logger = logging.getLogger(__name__)

_MSGID_RE = re.compile(r"<([^<>\s]{1,250})>")
MAX_TEXT = 100_000
MAX_HTML = 1_000_000
MAX_ATTACHMENTS = 20


class MalformedMail(ValueError):
    """The bytes are not a mail we can make sense of; the reason says why."""


@dataclass
class Bounce:
    """A delivery status notification about one of our messages."""

    original_message_id: str
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # e.g. 5.1.1
    recipient: str
    diagnostic: str

    @property
    def reason(self) -> str:
        parts = [p for p in (self.status, self.diagnostic) if p]
        text = " ".join(parts) or "delivery failed"
        return f"bounced for {self.recipient}: {text}" if self.recipient else f"bounced: {text}"


@dataclass
class ParsedMail:
    """What a raw mail turned out to be."""

    kind: Literal["message", "auto_reply", "bounce"]
    item: InboundItem
    auto_reason: str = ""
    bounce: Bounce | None = None
    notes: list[str] = field(default_factory=list)


# --- headers ---------------------------------------------------------------------------------


def _raw_header(msg: Message, name: str) -> str:
    """A header's raw value as text: 8-bit bytes (surrogate-escaped by the parser) decoded."""
    for key, value in msg.raw_items() if isinstance(msg, EmailMessage) else msg.items():
        if key.lower() == name.lower():
            value = str(value)
            if any("\udc80" <= ch <= "\udcff" for ch in value):
                value = charsets.decode(value.encode("ascii", "surrogateescape"), None)
            return value
    return ""


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words with our charset fallbacks; unfold."""
    value = re.sub(r"\r?\n[ \t]*", " ", value)
    if "=?" not in value:
        return value.strip()
    try:
        parts = decode_header(value)
    except Exception:  # a broken encoded-word: show it as it came
        return value.strip()
    out = []
    for data, label in parts:
        if isinstance(data, str):
            out.append(data)
        elif label is None:
            out.append(data.decode("raw-unicode-escape", errors="replace"))
        else:
            out.append(charsets.decode(data, label))
    return "".join(out).strip()


def header(msg: Message, name: str) -> str:
    """A header decoded for people: encoded-words and 8-bit bytes turned into text."""
    return decode_words(_raw_header(msg, name))


def message_ids(value: str) -> list[str]:
    """The message ids in a Message-ID / In-Reply-To / References value, without angle brackets."""
    ids = _MSGID_RE.findall(value)
    if not ids:
        # Some clients drop the brackets: take the tokens that look like ids.
        ids = [t.strip("<>,;") for t in value.split() if "@" in t and len(t) <= 250]
    seen: set[str] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def _address(msg: Message, name: str) -> tuple[str, str]:
    """(display name, address) of a single-address header; the name decoded."""
    raw = re.sub(r"\r?\n[ \t]*", " ", _raw_header(msg, name))
    display, addr = email.utils.parseaddr(raw)
    return decode_words(display), addr.strip()


def _addresses(msg: Message, name: str) -> list[str]:
    raw = re.sub(r"\r?\n[ \t]*", " ", _raw_header(msg, name))
    return [a for _, a in email.utils.getaddresses([raw]) if a][:50]


def _date(msg: Message) -> dt.datetime | None:
    raw = _raw_header(msg, "Date")
    if not raw:
        return None
    try:
        value = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


# --- bodies ----------------------------------------------------------------------------------


class _TextFromHtml(HTMLParser):
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "pre", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("script", "style", "head", "title"):
            self.skip += 1
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body, for previews and language detection."""
    parser = _TextFromHtml()
    try:
        parser.feed(html)
        parser.close()
    except Exception:
        return re.sub(r"<[^>]*>", " ", html)
    text = "".join(parser.out)
    text = re.sub(r"[ \t\u3000]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    # An RFC 2231 parameter (charset*=) comes back as a (charset, language, value) tuple.
    charset = part.get_param("charset")
    label = email.utils.collapse_rfc2231_value(charset) if isinstance(charset, tuple) else charset
    text = charsets.decode(payload, label or None)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    if name and any("\udc80" <= ch <= "\udcff" for ch in name):
        name = charsets.decode(name.encode("ascii", "surrogateescape"), None)
    name = decode_words(name) if "=?" in name else name
    # A file name is only a label: never a path.
    name = re.sub(r"[\x00-\x1f/\\]", "_", name).strip(" .")
    return name[:255]


def _is_attachment(part: Message, ctype: str) -> bool:
    # Raw header text: the modern policy's header objects cost a full parse on every access.
    disposition = _raw_header(part, "Content-Disposition").split(";")[0].strip().lower()
    if disposition == "attachment":
        return True
    if ctype in ("text/plain", "text/html"):
        return bool(disposition == "inline" and part.get_filename())
    return True


_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "application/pdf": ".pdf",
    "message/rfc822": ".eml",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
}


@dataclass
class _Bodies:
    text: str = ""
    html: str = ""
    attachments: list[InboundAttachment] = field(default_factory=list)
    dropped: list[dict[str, object]] = field(default_factory=list)


def _walk(msg: Message, bodies: _Bodies, max_attachment: int, depth: int = 0) -> None:
    if depth > 30:
        raise MalformedMail("MIME structure nested more than 30 levels deep")
    ctype = msg.get_content_type()
    if msg.is_multipart() and ctype != "message/rfc822":
        payload = msg.get_payload()
        if not isinstance(payload, list):
            return
        for sub in payload:
            if isinstance(sub, Message):
                _walk(sub, bodies, max_attachment, depth + 1)
        return
    if ctype == "message/rfc822" or not _is_attachment(msg, ctype):
        if ctype == "message/rfc822":
            _attach_forwarded(msg, bodies, max_attachment)
            return
        if ctype == "text/html":
            if not bodies.html:
                bodies.html = _part_text(msg)
        elif not bodies.text:
            bodies.text = _part_text(msg)
        elif not _raw_header(msg, "Content-Disposition"):
            # A second plain part without a disposition (some clients split around an image).
            bodies.text += "\n" + _part_text(msg)
        return
    if ctype.startswith("multipart/"):
        return
    content = msg.get_payload(decode=True)
    if not isinstance(content, bytes):
        content = b""
    name = (
        _filename(msg)
        or f"attachment-{len(bodies.attachments) + 1}{_EXTENSIONS.get(ctype, '.bin')}"
    )
    _add_attachment(bodies, name, ctype, content, max_attachment)


def _attach_forwarded(msg: Message, bodies: _Bodies, max_attachment: int) -> None:
    """A forwarded mail (message/rfc822) is kept whole as an .eml attachment."""
    inner = msg.get_payload()
    inner_msg = inner[0] if isinstance(inner, list) and inner else None
    subject = header(inner_msg, "Subject") if isinstance(inner_msg, Message) else ""
    name = (
        _filename(msg)
        or (re.sub(r"[\x00-\x1f/\\:*?\"<>|]", "_", subject)[:200] or "forwarded") + ".eml"
    )
    try:
        content = (
            inner_msg.as_bytes(policy=policy.compat32) if isinstance(inner_msg, Message) else b""
        )
    except Exception:
        content = str(inner_msg).encode("utf-8", "replace")
    _add_attachment(bodies, name, "message/rfc822", content, max_attachment)


def _add_attachment(
    bodies: _Bodies, name: str, ctype: str, content: bytes, max_attachment: int
) -> None:
    if len(content) > max_attachment or len(bodies.attachments) >= MAX_ATTACHMENTS:
        why = "too large" if len(content) > max_attachment else "too many attachments"
        bodies.dropped.append({"filename": name, "size": len(content), "reason": why})
        return
    bodies.attachments.append(
        InboundAttachment(filename=name or "attachment", content_type=ctype[:255], content=content)
    )


# --- auto-replies and bounces ----------------------------------------------------------------

_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?reply|auto(matic)? response|out of (the )?office|自動応答|自動返信|不在通知)\b",
    re.IGNORECASE,
)


def auto_reply_reason(msg: Message) -> str:
    """Why this mail is machine-made (RFC 3834 and the headers robots really send), or ''."""
    auto = header(msg, "Auto-Submitted").lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto}"
    precedence = header(msg, "Precedence").lower()
    if precedence in ("bulk", "junk", "auto_reply", "auto-reply"):
        return f"Precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if header(msg, name):
            return f"{name}: {header(msg, name)}"
    suppress = header(msg, "X-Auto-Response-Suppress").lower()
    if "oof" in suppress or "autoreply" in suppress or suppress == "all":
        return f"X-Auto-Response-Suppress: {suppress}"
    if _AUTO_SUBJECT.match(header(msg, "Subject")):
        return f"automatic reply subject: {header(msg, 'Subject')[:80]}"
    return ""


def _bounce(msg: Message) -> Bounce | None:
    """The DSN (RFC 3464) in a multipart/report, if this is one."""
    if msg.get_content_type() != "multipart/report":
        return None
    if (msg.get_param("report-type") or "").lower() != "delivery-status":  # type: ignore[union-attr]
        return None
    action = status = recipient = diagnostic = original = ""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            blocks = part.get_payload()
            if not isinstance(blocks, list):
                blocks = []
            for block in (
                blocks[1:] or blocks
            ):  # the first block is per-message, the rest per-recipient
                if not isinstance(block, Message):
                    continue
                action = action or header(block, "Action").lower()
                status = status or header(block, "Status")
                recipient = recipient or header(block, "Final-Recipient").split(";")[-1].strip()
                diagnostic = (
                    diagnostic or header(block, "Diagnostic-Code").split(";", 1)[-1].strip()
                )
        elif ctype in (
            "message/rfc822",
            "message/global",
            "text/rfc822-headers",
            "message/rfc822-headers",
        ):
            inner: object
            if ctype.startswith("text/") or ctype == "message/rfc822-headers":
                headers_bytes = part.get_payload(decode=True)
                inner = BytesParser(policy=policy.default).parsebytes(
                    headers_bytes if isinstance(headers_bytes, bytes) else b"", headersonly=True
                )
            else:
                payload = part.get_payload()
                inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message) and not original:
                ids = message_ids(_raw_header(inner, "Message-ID"))
                original = ids[0] if ids else ""
    return Bounce(original, action or "failed", status, recipient[:254], diagnostic[:1000])


# --- the whole message -----------------------------------------------------------------------


def parse(raw: bytes, *, max_attachment_bytes: int | None = None) -> ParsedMail:
    """Parse a raw mail; raises MalformedMail with a reason a person can act on."""
    max_attachment = max_attachment_bytes or settings.ATTACHMENT_MAX_BYTES
    if not raw.strip():
        raise MalformedMail("empty message")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        return _parse(msg, raw, max_attachment)
    except MalformedMail:
        raise
    except (RecursionError, MemoryError):
        raise MalformedMail("MIME structure too deep or too large to parse") from None
    except Exception as exc:
        raise MalformedMail(f"unparseable mail: {type(exc).__name__}: {exc}") from exc


def _parse(msg: EmailMessage, raw: bytes, max_attachment: int) -> ParsedMail:
    for defect in msg.defects:
        name = type(defect).__name__
        if name in (
            "NoBoundaryInMultipartDefect",
            "StartBoundaryNotFoundDefect",
            "MissingHeaderBodySeparatorDefect",
        ):
            raise MalformedMail(f"broken MIME structure: {name}")
    for part in msg.walk():
        for defect in part.defects:
            if type(defect).__name__ in (
                "NoBoundaryInMultipartDefect",
                "StartBoundaryNotFoundDefect",
            ):
                raise MalformedMail(
                    f"broken MIME structure in a {part.get_content_type()} part: {type(defect).__name__}"
                )
    name, addr = _address(msg, "From")
    if not addr or "@" not in addr or len(addr) > 254 or any(c.isspace() for c in addr):
        sender = _raw_header(msg, "From")
        raise MalformedMail(
            f"no usable sender address in From: {sender[:200]!r}" if sender else "no From header"
        )
    # One line: a CR or LF smuggled in through an encoded-word must never reach a header we write.
    subject = " ".join(header(msg, "Subject").split())
    name = " ".join(name.split())
    ids = message_ids(_raw_header(msg, "Message-ID"))
    if ids and len(ids[0]) <= 250:
        external_id = ids[0]
    else:
        # No Message-ID: a hash of the bytes is stable across refetches, so ingest stays idempotent.
        external_id = f"sha256-{hashlib.sha256(raw).hexdigest()[:40]}@madoguchi.invalid"
    in_reply_to = message_ids(_raw_header(msg, "In-Reply-To"))
    references = message_ids(_raw_header(msg, "References"))
    reply_to: list[str] = []
    for mid in in_reply_to + list(reversed(references)):
        if mid not in reply_to and mid != external_id:
            reply_to.append(mid)
    reply_to = reply_to[:100]
    token = mailthread.TOKEN_RE.search(subject)
    thread_root = references[0] if references else (in_reply_to[0] if in_reply_to else external_id)

    bodies = _Bodies()
    _walk(msg, bodies, max_attachment)
    text = (bodies.text or (html_to_text(bodies.html) if bodies.html else "")).strip()
    notes = []
    for d in bodies.dropped:
        notes.append(f"[attachment not kept: {d['filename']} ({d['size']} bytes, {d['reason']})]")
    if notes:
        text = (text + "\n\n" + "\n".join(notes)).strip()
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 40] + "\n[message shortened]"
    html = bodies.html if len(bodies.html) <= MAX_HTML else ""
    item = InboundItem(
        external_id=external_id,
        author=InboundAuthor(
            external_id=addr.lower()[:255],
            handle=addr[:255],
            display_name=name[:255],
            email=addr[:254],
        ),
        text=text,
        html=html,
        subject=subject[:500],
        created_at=_date(msg),
        reply_to=reply_to,
        thread_id=thread_root[:255],
        attachments=bodies.attachments,
        raw={
            "message_id": external_id,
            "in_reply_to": in_reply_to[:10],
            "references": references[-30:],
            "from": addr,
            "to": _addresses(msg, "To"),
            "cc": _addresses(msg, "Cc"),
            "reply_to_address": _address(msg, "Reply-To")[1],
            "conversation_token": int(token.group(1)) if token else None,
            "dropped_attachments": bodies.dropped,
            # Where quoted history or the signature begins: folded away in the conversation.
            "fold": quoting.fold_info(text),
        },
    )
    bounce = _bounce(msg)
    if bounce is not None:
        return ParsedMail("bounce", item, bounce=bounce, notes=notes)
    auto = auto_reply_reason(msg)
    if auto:
        return ParsedMail("auto_reply", item, auto_reason=auto, notes=notes)
    return ParsedMail("message", item, notes=notes)


# --- into the inbox --------------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of one received mail."""

    result: Literal["created", "duplicate", "quarantined", "bounce", "auto_reply"]
    detail: str = ""
    message_id: int | None = None


def receive(account: ChannelAccount, raw: bytes) -> Outcome:
    """Take one raw mail for an email ChannelAccount into the inbox; never raises on bad mail.

    Database errors propagate (the caller retries later without losing its place); everything
    wrong with the mail itself ends in quarantine with the reason.
    """
    try:
        parsed = parse(raw, max_attachment_bytes=account.config.get("max_attachment_bytes"))
    except MalformedMail as exc:
        digest = hashlib.sha256(raw).hexdigest()[:16]
        _quarantine_once(account, f"malformed mail ({digest}): {exc}", raw)
        return Outcome("quarantined", str(exc))
    mid = parsed.item.external_id
    try:
        if parsed.kind == "bounce":
            assert parsed.bounce is not None
            if mailthread.mark_bounced(account, parsed.bounce):
                return Outcome("bounce", parsed.bounce.reason)
            _quarantine_once(
                account,
                f"bounce <{mid}> for a message we did not send: {parsed.bounce.reason}",
                raw,
            )
            return Outcome("quarantined", "unknown bounce")
        if parsed.kind == "auto_reply":
            reason = (
                f"auto-reply <{mid}>, not ingested so it cannot start a loop ({parsed.auto_reason})"
            )
            _quarantine_once(account, reason, raw)
            return Outcome("auto_reply", parsed.auto_reason)
        form = mailthread.form_account_for_reply(account, parsed.item)
        if form is not None:  # an answer to our mail about a web form conversation
            result = do_ingest(form, parsed.item)
        else:
            result = do_ingest(account, mailthread.with_token_fallback(account, parsed.item))
    except DatabaseError:
        raise
    except Exception as exc:  # a bug or a surprise in one mail must not block the mailbox
        logger.exception("email ingest failed for account %s", account.pk)
        do_quarantine(account, f"could not ingest mail: {type(exc).__name__}: {exc}", raw)
        return Outcome("quarantined", str(exc))
    if result.quarantine is not None:
        return Outcome("quarantined", result.quarantine.reason)
    return Outcome(
        "created" if result.created else "duplicate",
        message_id=result.message.pk if result.message else None,
    )


def _quarantine_once(account: ChannelAccount, reason: str, raw: bytes) -> None:
    """Quarantine a mail once: a refetch (new UIDVALIDITY, a replayed POST) adds no duplicate."""
    if not Quarantine.objects.filter(channel_account=account, reason=reason[:5000]).exists():
        do_quarantine(account, reason, raw)
