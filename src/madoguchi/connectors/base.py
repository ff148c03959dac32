"""The channel adapter protocol and the normalized inbound item.

Every connector turns what its platform sends into an `InboundItem` and hands it to
`madoguchi.ingest.actions.do_ingest`; every reply leaves through the outbox, which calls the
adapter's `send`. Platform quirks stay inside the adapter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from madoguchi.connectors.models import ChannelAccount


def _drop_nul(value: Any) -> Any:
    """NUL characters carry nothing a person reads, and PostgreSQL text cannot hold them."""
    return value.replace("\x00", "") if isinstance(value, str) else value


def _check_aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("created_at must carry a time zone")
    return value


class InboundAuthor(BaseModel):
    """Who wrote an inbound item, as the platform describes them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _drop_nul(value)

    external_id: str = Field(min_length=1, max_length=255)
    handle: str = Field(default="", max_length=255)
    display_name: str = Field(default="", max_length=255)
    avatar_url: str = Field(default="", max_length=1000)
    email: str = Field(default="", max_length=254)
    followers: int | None = Field(default=None, ge=0)
    language: str = Field(default="", max_length=16)


class InboundAttachment(BaseModel):
    """A file that came with an inbound item; `content` is the raw bytes (base64 in JSON, so a
    quarantined item with a binary attachment can still be kept as JSON)."""

    model_config = ConfigDict(extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=255)
    content: bytes


class InboundItem(BaseModel):
    """One normalized inbound item: what every adapter produces and `do_ingest` consumes.

    `route`: "conversation" puts the item in the inbox (DMs, mentions, mail); "stream" only
    captures it as a public Post for the listening team to triage.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _drop_nul(value)

    external_id: str = Field(min_length=1, max_length=255)
    author: InboundAuthor
    text: str = Field(default="", max_length=100_000)
    html: str = Field(default="", max_length=1_000_000)
    subject: str = Field(default="", max_length=500)
    created_at: dt.datetime | None = None
    # Threading: ids of the items this one replies to (nearest first), and a platform thread id.
    reply_to: list[str] = Field(default_factory=list, max_length=100)
    thread_id: str = Field(default="", max_length=255)
    public: bool = False
    url: str = Field(default="", max_length=1000)
    route: Literal["conversation", "stream"] = "conversation"
    language: str = Field(default="", max_length=16)
    attachments: list[InboundAttachment] = Field(default_factory=list, max_length=20)
    raw: dict[str, Any] = Field(default_factory=dict)

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        return _check_aware(value)


EventKind = Literal["reaction", "unreaction", "edit", "delete", "follow", "unfollow", "read"]


class InboundEvent(BaseModel):
    """Something that happened to an earlier item, or between the customer and the account: a
    reaction, an edit, a deletion, a follow or unfollow, a read mark. Never dropped: handed to
    `madoguchi.ingest.actions.do_ingest_event`, which keeps it on the message it targets (or on
    the customer's identity when there is no message), even if it arrives before that message.

    `external_id` identifies the event itself (duplicate deliveries are ignored);
    `target_external_id` is the external id of the item it concerns (empty for follow/unfollow).
    An edit carries the new `text`/`html`; the original stays on the event for audit.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _drop_nul(value)

    external_id: str = Field(min_length=1, max_length=255)
    kind: EventKind
    author: InboundAuthor
    target_external_id: str = Field(default="", max_length=255)
    emoji: str = Field(default="", max_length=64)  # reaction: the emoji or the platform's name
    text: str = Field(default="", max_length=100_000)
    html: str = Field(default="", max_length=1_000_000)
    created_at: dt.datetime | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        return _check_aware(value)


@dataclass
class OutboundMessage:
    """What the outbox asks an adapter to deliver."""

    idempotency_key: str
    text: str
    recipient: str  # the platform id of the customer identity
    in_reply_to: str = ""  # external id of the item being answered
    thread_id: str = ""
    public: bool = False
    subject: str = ""
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)


@dataclass
class SendResult:
    external_id: str


class TemporaryError(Exception):
    """The platform may accept this later (timeouts, 5xx, rate limits): retry with backoff."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """The platform will never accept this (deleted post, blocked user): fail the message."""


class Adapter(Protocol):
    """What every channel connector provides."""

    kind: ClassVar[str]

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult: ...

    def max_length(self, account: ChannelAccount) -> int | None: ...


_ADAPTERS: dict[str, Adapter] = {}


def register(adapter: Adapter) -> Adapter:
    _ADAPTERS[adapter.kind] = adapter
    return adapter


def adapter_for(account: ChannelAccount) -> Adapter:
    """The adapter that sends for this account; raises PermanentError for a kind without one.

    A simulated account (the demo's X, LINE or mail accounts) delivers through the internal
    channel, so the whole reply path runs without a real platform behind it.
    """
    from madoguchi.connectors import registry  # noqa: F401  (imports every adapter once)

    kind = "internal" if account.config.get("simulated") else account.kind
    try:
        return _ADAPTERS[kind]
    except KeyError:
        raise PermanentError(f"no connector can send on channel kind {kind!r}") from None
