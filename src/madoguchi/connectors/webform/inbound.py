"""A contact form submission into the inbox: spam checks, the customer's identity, ingest.

Each submission is a conversation of its own (a new form is a new question, as with a new mail
subject). The customer is identified by the email address they typed: the form identity and an
email identity for the same address belong to one contact, so mail they send us later (or their
answer to our reply, which goes out by email) lands with the same person.

Spam is quarantined with its reason, never silently dropped: a filled honeypot, a form sent
faster than a person can type (a signed render time, `min_fill_seconds`, default 3), a missing,
forged or day-old token, or line breaks in one-line fields (a mail header injection attempt).

Idempotent: the signed token carries a nonce that becomes the message's external id, so a
double click or a browser's resubmission stores the submission once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from dataclasses import dataclass, field

from django.core import signing
from django.db import transaction
from django.utils import timezone

from madoguchi.connectors.base import InboundAttachment, InboundAuthor, InboundItem
from madoguchi.connectors.models import ChannelAccount, ChannelKind
from madoguchi.contacts.actions import IdentityTaken, do_add_identity, do_get_or_create_identity
from madoguchi.contacts.models import Identity
from madoguchi.inbox import actions as inbox_actions
from madoguchi.ingest.actions import do_ingest, do_quarantine

logger = logging.getLogger(__name__)

DEFAULT_MIN_FILL_SECONDS = 3
TOKEN_MAX_AGE = dt.timedelta(days=1)


@dataclass
class Submission:
    """What a visitor sent, already validated by the form."""

    name: str
    email: str
    subject: str
    message: str
    language: str
    category: str = ""
    attachments: list[InboundAttachment] = field(default_factory=list)
    nonce: str = ""
    page: str = ""  # hosted or embedded, and the referring page if the browser sent one


@dataclass
class Outcome:
    """What became of one submission."""

    result: str  # "created", "duplicate" or "quarantined"
    conversation_id: int | None = None
    message_id: int | None = None
    reason: str = ""


def _signer(account: ChannelAccount) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=f"madoguchi.webform.{account.pk}")


def new_token(account: ChannelAccount) -> str:
    """The hidden token of a freshly rendered form: a nonce, signed with the render time."""
    return _signer(account).sign(secrets.token_hex(12))


def read_token(account: ChannelAccount, token: str) -> tuple[str, float]:
    """(nonce, seconds since the form was rendered); signing.BadSignature if forged or expired."""
    signer = _signer(account)
    nonce = signer.unsign(token, max_age=TOKEN_MAX_AGE)
    _, ts, _ = token.rsplit(":", 2)  # value:timestamp:signature, checked just above
    rendered = signing.b62_decode(ts)
    return nonce, timezone.now().timestamp() - rendered


def spam_reason(account: ChannelAccount, honeypot: str, token: str) -> tuple[str, str]:
    """(why this looks like a robot or '', the nonce from the token)."""
    if honeypot.strip():
        return "spam: the hidden honeypot field was filled in", ""
    if not token:
        return "spam: the form token is missing", ""
    try:
        nonce, age = read_token(account, token)
    except signing.SignatureExpired:
        return "spam: the form token is older than a day", ""
    except (signing.BadSignature, ValueError):
        return "spam: the form token is forged or broken", ""
    minimum = float(account.config.get("min_fill_seconds", DEFAULT_MIN_FILL_SECONDS))
    if age < minimum:
        return (
            f"spam: the form was sent {age:.1f} s after it was shown (minimum {minimum:g} s)",
            nonce,
        )
    return "", nonce


def quarantine(account: ChannelAccount, reason: str, data: dict[str, object]) -> Outcome:
    """Keep a refused submission for an admin, with what was typed (file names, not contents)."""
    record = do_quarantine(account, reason, json.dumps(data, ensure_ascii=False, default=str))
    return Outcome("quarantined", reason=record.reason)


def _link_identities(account: ChannelAccount, author: InboundAuthor) -> None:
    """Make the form identity and the email identity of this address one contact.

    A new address gets an email identity (with its contact) first; the missing one of the pair
    then joins that contact. If the pair already sits on two contacts it stays so: merging them
    is a decision for the contacts page.
    """
    ws = account.workspace_id
    existing = {
        i.kind: i
        for i in Identity.objects.select_related("contact").filter(
            workspace_id=ws,
            kind__in=(ChannelKind.WEBFORM, ChannelKind.EMAIL),
            external_id=author.external_id,
        )
    }
    if len(existing) == 2:
        return
    if not existing:
        existing[ChannelKind.EMAIL] = do_get_or_create_identity(ws, ChannelKind.EMAIL, author)
    contact = next(iter(existing.values())).contact
    for kind in (ChannelKind.WEBFORM, ChannelKind.EMAIL):
        if kind not in existing:
            try:
                do_add_identity(contact, kind, author)
            except IdentityTaken:  # a racing submission tied it to another contact: keep both
                logger.info("webform: %s identity of %s is on another contact", kind, contact.pk)


def message_domain(account: ChannelAccount) -> str:
    """The domain of our Message-IDs for this form: the brand mailbox's, or the form's sender."""
    from madoguchi.connectors.webform.queries import sender_address

    return sender_address(account).rpartition("@")[2] or "madoguchi.invalid"


def to_item(account: ChannelAccount, submission: Submission) -> InboundItem:
    """The normalized item for a submission. Its external id is shaped like a Message-ID, so
    our emailed replies can name it in In-Reply-To / References and mail clients thread them."""
    address = submission.email.strip()
    author = InboundAuthor(
        external_id=address.lower(),
        handle=address,
        display_name=submission.name,
        email=address,
        language=submission.language,
    )
    external_id = f"webform-{submission.nonce}@{message_domain(account)}"
    return InboundItem(
        external_id=external_id,
        author=author,
        text=submission.message.replace("\r\n", "\n"),
        subject=submission.subject,
        created_at=timezone.now(),
        thread_id=external_id,  # a new thread: every submission is a conversation of its own
        attachments=submission.attachments,
        raw={
            "form": "webform",
            "category": submission.category,
            "form_language": submission.language,
            "name": submission.name,
            "email": address,
            "page": submission.page[:500],
            "references": [external_id],
        },
    )


def receive(account: ChannelAccount, submission: Submission) -> Outcome:
    """Store a submission as a new conversation and queue the confirmation mail."""
    if not submission.nonce:
        submission.nonce = secrets.token_hex(12)
    item = to_item(account, submission)
    _link_identities(account, item.author)
    result = do_ingest(account, item)
    if result.quarantine is not None:
        return Outcome("quarantined", reason=result.quarantine.reason)
    message = result.message
    assert message is not None
    if not result.created:
        return Outcome("duplicate", message.conversation_id, message.pk)
    if submission.category:
        inbox_actions.do_set_labels(message.conversation, [submission.category])

    def queue_confirmation() -> None:
        from madoguchi.connectors.webform.tasks import send_confirmation

        try:
            send_confirmation.enqueue(message.pk)
        except Exception:  # the submission is stored; only the courtesy mail is lost
            logger.exception("could not queue the confirmation of message %s", message.pk)

    transaction.on_commit(queue_confirmation)
    return Outcome("created", message.conversation_id, message.pk)
