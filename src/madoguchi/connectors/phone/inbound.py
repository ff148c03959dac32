"""Phone calls into the inbox: call events from a telephony provider, and calls agents log.

Call events (`POST /connectors/phone/<account id>/events/`) are JSON, one call per request:

    {"id": "CA5f1e…", "type": "voicemail", "direction": "inbound",
     "from": "+81312345678", "to": "+81120000000", "caller_name": "佐藤 結衣",
     "started_at": "2026-11-23T09:12:00+09:00", "duration": 33,
     "recording_url": "https://…/RE….mp3", "transcript": "…", "language": "ja"}

the common ground of what voice platforms report for a call or voicemail (Twilio's recording and
transcription callbacks: https://www.twilio.com/docs/api/voice/recording-transcription; Gorgias'
VoiceCallRecording: https://developers.gorgias.com/reference/voice-call-recordings), which a
provider-side function or the provider's webhook mapping fills in.

Signed like Stripe's webhooks (https://stripe.com/docs/webhooks/signatures#verify-manually):
`Madoguchi-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>` with the
account's `secrets["webhook_secret"]`; several v1 values are allowed while a secret is rotated, and
a timestamp more than five minutes away from our clock is refused, so a captured request cannot be
replayed later. Idempotent on the event id: a provider's retry changes nothing.

A voicemail or a call becomes a message from the caller (a new conversation, or the caller's
open one on this line), with the transcript as its text and a link to the recording; a call we
made ("direction": "outbound") becomes our outbound message there, recorded as already said. Recording
links must be http(s): anything else (javascript:, data:, file:) is refused with 400.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import html
import re
import time
import unicodedata
import uuid
from typing import Literal

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from madoguchi.accounts.models import User
from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.connectors.health import do_record_channel_ok
from madoguchi.connectors.models import ChannelAccount, ChannelKind
from madoguchi.contacts.actions import IdentityTaken, do_add_identity, do_get_or_create_identity
from madoguchi.contacts.models import Contact, Identity
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Conversation, Message
from madoguchi.ingest.actions import do_ingest

SIGNATURE_HEADER = "Madoguchi-Signature"
TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 1024 * 1024


class PhoneError(ValueError):
    """A call that cannot be recorded; the message says why, for the person who sent it."""


class SignatureError(Exception):
    """A call event whose signature is missing (401) or wrong or stale (403)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def normalize_number(value: str) -> str:
    """A phone number as we key identities on it: '+' and digits only ('０３-1234-5678' works)."""
    value = unicodedata.normalize("NFKC", value or "").strip()
    if any(c in value for c in "\r\n\x00"):
        raise PhoneError(_("A phone number must be on one line."))
    digits = re.sub(r"[\s\-().\u2010-\u2015\u30fc]", "", value)
    if not re.fullmatch(r"\+?\d{3,20}", digits):
        raise PhoneError(_("“%(number)s” is not a phone number.") % {"number": value[:40]})
    return digits


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value a provider sends for a body."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: str, body: bytes, header: str, now: float | None = None) -> None:
    """Raise SignatureError unless `header` signs `body` with `secret`, within the tolerance."""
    if not header.strip():
        raise SignatureError(f"missing {SIGNATURE_HEADER} header", 401)
    parts: dict[str, list[str]] = {}
    for element in header.split(","):
        key, sep, value = element.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError(f"{SIGNATURE_HEADER} has no timestamp (t=)", 401) from None
    signatures = parts.get("v1", [])
    if not signatures:
        raise SignatureError(f"{SIGNATURE_HEADER} has no v1 signature", 401)
    if not secret:
        raise SignatureError("this phone line has no webhook secret configured", 403)
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise SignatureError("signature does not match the body", 403)
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_SECONDS:
        raise SignatureError("timestamp is more than 5 minutes away from our clock", 403)


class CallEvent(BaseModel):
    """One call or voicemail as a telephony provider reports it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=200)
    type: Literal["call", "voicemail", "missed_call"] = "call"
    direction: Literal["inbound", "outbound"] = "inbound"
    from_number: str = Field(alias="from", min_length=1, max_length=64)
    to_number: str = Field(default="", alias="to", max_length=64)
    caller_name: str = Field(default="", max_length=255)
    started_at: dt.datetime | None = None
    duration: int = Field(default=0, ge=0, le=86_400)
    recording_url: str = Field(default="", max_length=2000)
    transcript: str = Field(default="", max_length=100_000)
    language: str = Field(default="", max_length=16)

    @field_validator("recording_url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if value and not re.match(r"(?i)^https?://[^\s/?#]+", value):
            raise ValueError("must be an http:// or https:// URL")
        if any(c in value for c in "\r\n\t \"'<>"):
            raise ValueError("must not contain spaces, quotes or angle brackets")
        return value

    @field_validator("started_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone (e.g. +09:00 or Z)")
        return value

    @property
    def customer_number(self) -> str:
        return self.from_number if self.direction == "inbound" else self.to_number


def parse_event(body: bytes) -> CallEvent:
    """The call event in a request body; PhoneError with a clear reason when it is not one."""
    try:
        event = CallEvent.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PhoneError(f"not a call event: {problems}") from None
    if not event.customer_number:
        raise PhoneError("not a call event: an outbound call needs 'to'")
    event.from_number = normalize_number(event.from_number)
    if event.to_number:
        event.to_number = normalize_number(event.to_number)
    return event


def _duration(seconds: int) -> str:
    minutes, secs = divmod(max(0, seconds), 60)
    return f"{minutes}:{secs:02d}"


def describe(
    *, kind: str, direction: str, number: str, duration: int, summary: str, recording_url: str = ""
) -> tuple[str, str]:
    """(text, html) of a call message: what happened, how long, the words, the recording."""
    heading = {
        ("voicemail", "inbound"): _("Voicemail from %(number)s (%(duration)s)"),
        ("missed_call", "inbound"): _("Missed call from %(number)s"),
        ("call", "inbound"): _("Incoming call from %(number)s (%(duration)s)"),
    }.get((kind, direction), _("Outgoing call to %(number)s (%(duration)s)"))
    title = heading % {"number": number, "duration": _duration(duration)}
    text_parts = [title]
    html_parts = [f"<p><strong>{html.escape(title)}</strong></p>"]
    if summary:
        text_parts.append(summary)
        html_parts.append("<p>" + html.escape(summary).replace("\n", "<br>") + "</p>")
    if recording_url:
        label = _("Listen to the recording")
        text_parts.append(f"{label}: {recording_url}")
        html_parts.append(
            f'<p><a href="{html.escape(recording_url)}" rel="noopener noreferrer" '
            f'target="_blank">{html.escape(label)}</a></p>'
        )
    return "\n\n".join(text_parts), "\n".join(html_parts)


def receive_event(account: ChannelAccount, event: CallEvent) -> Message:
    """A provider's call or voicemail into the inbox, once per event id.

    An inbound call is the caller's message. An outbound one is ours, recorded as already said
    (`do_record_outbound`) in the customer's conversation on this line: it is never sent again.
    """
    number = event.customer_number
    text, body_html = describe(
        kind=event.type,
        direction=event.direction,
        number=number,
        duration=event.duration,
        summary=event.transcript,
        recording_url=event.recording_url,
    )
    author = InboundAuthor(external_id=number, handle=number, display_name=event.caller_name[:255])
    raw = {"call": event.model_dump(mode="json", by_alias=True), "source": "provider"}
    if event.direction == "outbound":
        return _record_our_call(
            account,
            author,
            text=text,
            html=body_html,
            agent=None,
            external_id=f"call-{event.id}",
            raw=raw,
            created_at=event.started_at or timezone.now(),
        )
    item = InboundItem(
        external_id=f"call-{event.id}",
        author=author,
        text=text,
        html=body_html,
        language=event.language,
        created_at=event.started_at or timezone.now(),
        raw=raw,
    )
    result = do_ingest(account, item)
    if result.message is None:
        reason = result.quarantine.reason if result.quarantine else "not stored"
        raise PhoneError(f"call event not stored: {reason}")
    return result.message


def _record_our_call(
    account: ChannelAccount,
    author: InboundAuthor,
    *,
    text: str,
    html: str,
    agent: User | None,
    external_id: str,
    raw: dict,
    created_at: dt.datetime,
    identity: Identity | None = None,
) -> Message:
    """A call we made, as an outbound message in the customer's current conversation on this
    line (a new one, "Call to …", when there is none)."""
    stored = Message.objects.filter(channel_account=account, external_id=external_id).first()
    if stored is not None:  # a provider's retry: before opening any conversation
        return stored
    if identity is None:
        identity = do_get_or_create_identity(account.workspace_id, ChannelKind.PHONE, author)
    conversation = _current_conversation(account, identity.contact)
    if conversation is None:
        conversation = inbox_actions.do_create_conversation(
            channel_account=account,
            identity=identity,
            subject=_("Call to %(number)s") % {"number": author.external_id},
            language=identity.contact.language,
            created_at=created_at,
        )
    message = inbox_actions.do_record_outbound(
        conversation,
        author=agent,
        text=text,
        html=html,
        channel_account=account,
        external_id=external_id,
        raw=raw,
        created_at=created_at,
    )
    do_record_channel_ok(account, received=agent is None, reconnect=False)
    return message


# --- calls agents log ------------------------------------------------------------------------


def _identity_for(account: ChannelAccount, contact: Contact, number: str) -> Identity:
    """The contact's identity for this number, added when the contact has none yet.

    A number that already belongs to another contact is refused rather than moved: merging
    two people is a decision for the contacts page.
    """
    author = InboundAuthor(external_id=number, handle=number, display_name=contact.name[:255])
    try:
        return do_add_identity(contact, ChannelKind.PHONE, author)
    except IdentityTaken as exc:
        raise PhoneError(str(exc)) from None


def _current_conversation(account: ChannelAccount, contact: Contact) -> Conversation | None:
    window = timezone.now() - dt.timedelta(hours=settings.THREADING_WINDOW_HOURS)
    return (
        Conversation.objects.filter(
            channel_account=account, contact=contact, last_message_at__gte=window
        )
        .order_by("-last_message_at")
        .first()
    )


def log_call(
    account: ChannelAccount,
    contact: Contact,
    *,
    agent: User,
    direction: Literal["in", "out"],
    number: str,
    duration_seconds: int,
    summary: str,
) -> Message:
    """Record a call an agent had with a contact, in the contact's conversation on this line.

    An incoming call is the customer speaking: a message from them (threaded like any inbound
    item, seen by the agent who took it). An outgoing call is us: an outbound message by the
    agent, recorded as already said (never sent anywhere), which answers the customer like a
    reply does (see inbox.actions.do_record_outbound).
    """
    if contact.workspace_id != account.workspace_id or account.kind != ChannelKind.PHONE:
        raise PhoneError(_("This phone line is not in the contact's workspace."))
    number = normalize_number(number)
    identity = _identity_for(account, contact, number)
    text, body_html = describe(
        kind="call",
        direction="inbound" if direction == "in" else "outbound",
        number=number,
        duration=duration_seconds,
        summary=summary.strip(),
    )
    call = {
        "direction": direction,
        "number": number,
        "duration": duration_seconds,
        "logged_by": agent.pk,
        "source": "agent",
    }
    if direction == "in":
        item = InboundItem(
            external_id=f"logged-call-{uuid.uuid4().hex}",
            author=InboundAuthor(
                external_id=number, handle=number, display_name=contact.name[:255]
            ),
            text=text,
            html=body_html,
            created_at=timezone.now(),
            raw={"call": call},
        )
        result = do_ingest(account, item)
        if result.message is None:
            raise PhoneError(result.quarantine.reason if result.quarantine else "not stored")
        inbox_actions.do_mark_seen(result.message.conversation, agent)
        return result.message
    message = _record_our_call(
        account,
        InboundAuthor(external_id=number, handle=number),
        text=text,
        html=body_html,
        agent=agent,
        external_id=f"logged-call-{uuid.uuid4().hex}",
        raw={"call": call},
        created_at=timezone.now(),
        identity=identity,
    )
    inbox_actions.do_mark_seen(message.conversation, agent)
    return message
