"""Instagram replies out: comment replies, mention replies, and direct messages.

Documentation (November 2026): see client.py for the endpoints and facebook/graph.py for errors.
- A public answer to a comment on our media is `POST /{comment-id}/replies` on its top-level
  comment; an answer to a mention (a comment on someone else's media) is
  `POST /{ig-user-id}/mentions {comment_id, media_id, message}`. Comments hold 2,200 characters.
- A private answer is a message with `messaging_type: RESPONSE` inside the 24-hour window; the
  text holds at most 1,000 bytes of UTF-8 (about 330 Japanese characters).
- A private reply answers a comment on our media once, in Instagram Direct, within 7 days of it
  (`recipient: {"comment_id"}`, see facebook/graph.py); the commenter's id is already their
  messaging id, so their answer's `dm:` conversation belongs to the same contact. Mentions (on
  other people's media) get none.
- Idempotency: as on Facebook (facebook/outbound.py), the returned id is recorded, and a retried
  comment reply first looks for our identical reply under the same comment.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar

from madoguchi.connectors.base import OutboundMessage, PermanentError, register
from madoguchi.connectors.facebook import graph
from madoguchi.connectors.instagram.client import InstagramClient
from madoguchi.connectors.models import ChannelAccount

if TYPE_CHECKING:
    from madoguchi.inbox.models import Conversation, Message

MAX_COMMENT = 2200
MAX_DM_BYTES = 1000


def check_length(text: str, *, public: bool) -> None:
    """PermanentError when the text is over the limit of a comment (characters) or a DM (bytes)."""
    if public and len(text) > MAX_COMMENT:
        raise PermanentError(f"Instagram comments hold at most {MAX_COMMENT:,} characters")
    if not public and len(text.encode()) > MAX_DM_BYTES:
        raise PermanentError("Instagram direct messages hold at most 1,000 bytes (about 330 Japanese characters)")


def private_target(comment: Message | None) -> dict[str, str] | None:
    """How the Send API addresses a private reply to this inbound item: a comment on our media
    by its id; None for mentions (on other people's media) and direct messages."""
    if comment is None or not comment.public or not comment.external_id:
        return None
    raw = comment.raw or {}
    return {"comment_id": comment.external_id} if raw.get("media") and not raw.get("mention") else None


class InstagramAdapter(graph.MetaAdapter):
    kind: ClassVar[str] = "instagram"
    client_class = InstagramClient

    def composer_hints(self, conversation: Conversation) -> dict[str, Any]:
        """The limit of this conversation (a comment's 2,200 characters or a DM's 1,000 bytes)
        and when the 24-hour reply window of a DM closes (None on comments); on a comment, the
        choice of a public reply or the one private reply in Instagram Direct."""
        if conversation.thread_key.startswith("dm:"):  # as inbound threads direct messages
            return {"max_length": MAX_DM_BYTES, "counting": "bytes", "window_closes_at": graph.messaging_window(conversation)}
        hints = {"max_length": MAX_COMMENT, "counting": "chars", "window_closes_at": None, **self.private_reply_hints(conversation)}
        if hints.get("reply_modes"):  # the private reply is a direct message
            hints["mode_limits"] = {"private": (MAX_DM_BYTES, "bytes")}
        return hints

    def private_label(self) -> str:
        from django.utils.translation import gettext as _

        return _("Reply privately in Instagram Direct")

    def private_target(self, comment: Message | None) -> dict[str, str] | None:
        return private_target(comment)

    def owner_id(self, account: ChannelAccount) -> str:
        ig_user_id = str((account.config or {}).get("ig_user_id", ""))
        if not ig_user_id:
            raise PermanentError("Instagram: the account has no ig_user_id configured")
        return ig_user_id

    def check_text(self, text: str, *, public: bool) -> None:
        check_length(text, public=public)

    def reply_publicly(self, account: ChannelAccount, client: InstagramClient, owner_id: str, message: OutboundMessage, text: str) -> str:
        """A reply under our media's comment, or the mentions endpoint for a mention elsewhere."""
        stored = graph.stored_item(account, message.in_reply_to)
        raw = (stored.raw if stored is not None else None) or {}
        if raw.get("mention"):
            if not raw.get("comment_id"):
                raise PermanentError("Instagram: a mention in a caption cannot be answered through the API; comment on the post in the app")
            return client.reply_to_mention(owner_id, str(raw["comment_id"]), str(raw.get("media_id", "")), text)
        target = str(raw.get("reply_target") or message.in_reply_to)
        if not target:
            raise PermanentError("Instagram: no comment to reply to")
        return graph.own_earlier_reply(message.idempotency_key, functools.partial(client.replies, target), owner_id, text, "text") or client.reply_to_comment(target, text)

    def max_length(self, account: ChannelAccount) -> int | None:
        # Without a conversation, the tighter of the two; composer_hints gives each its own.
        return MAX_DM_BYTES


adapter = register(InstagramAdapter())
