"""Facebook replies out: public answers as comment replies, private ones through Messenger.

Documentation (November 2026), see client.py for the endpoints and graph.py for errors:
- A public answer replies to the customer's comment (`POST /{comment-id}/comments`); Facebook
  threads comments one level deep, so an answer to a reply goes under its top-level comment (the
  inbound item keeps that id as `reply_target`). An answer to a visitor post comments on the post.
- A private answer is a Messenger message with `messaging_type: RESPONSE`, allowed only within 24
  hours of the customer's last message; after that we fail it with a clear reason before calling.
- A private reply answers a comment (or a visitor post) once, in Messenger, within 7 days of it
  (graph.py): the agent chooses it in the composer ("Reply privately"); the reply is then a
  non-public message answering a comment, sent to `recipient: {"comment_id"}` (`{"post_id"}`).
  The answer's `recipient_id` (the person's Messenger id, not the commenter's id) is linked to
  the commenter's contact, so their Messenger answer, in its own `dm:` conversation, is listed
  beside the comment's conversation.
- Text limits: Messenger text messages hold 2,000 characters
  (https://developers.facebook.com/docs/messenger-platform/reference/send-api/#message); comments
  are much longer (8,000), the composer shows the 2,000 that fits both.
- Idempotency: the Graph API has no idempotency key. The returned comment or message id is
  recorded as the reply's external id. When the outbox retries a comment reply (an earlier attempt
  failed, perhaps by a timeout after Facebook had accepted it), we first look for a comment of the
  page with the same text under the same target and take its id instead of posting again.
  Messenger offers no such lookup that is cheap and reliable, so a Messenger send that timed out
  after delivery may, rarely, be sent twice.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar

from madoguchi.connectors.base import OutboundMessage, PermanentError, register
from madoguchi.connectors.facebook import graph
from madoguchi.connectors.facebook.client import FacebookClient
from madoguchi.connectors.facebook.inbound import POST_ITEMS
from madoguchi.connectors.models import ChannelAccount

if TYPE_CHECKING:
    from madoguchi.inbox.models import Conversation, Message

MAX_TEXT = 2000


def reply_target(account: ChannelAccount, in_reply_to: str) -> str:
    """The object to comment on when answering the item `in_reply_to` (its top-level comment)."""
    from madoguchi.inbox.models import Message

    raw = (
        Message.objects.filter(channel_account=account, external_id=in_reply_to).values_list("raw", flat=True).first()
        if in_reply_to
        else None
    )
    return str((raw or {}).get("reply_target") or in_reply_to)


def private_target(comment: Message | None) -> dict[str, str] | None:
    """How the Send API addresses a private reply to this inbound item: a comment by its id, a
    visitor post by its id; None for anything else (Messenger messages, reactions)."""
    if comment is None or not comment.public or not comment.external_id:
        return None
    item = str((comment.raw or {}).get("item", ""))
    if item == "comment":
        return {"comment_id": comment.external_id}
    return {"post_id": comment.external_id} if item in POST_ITEMS else None


class FacebookAdapter(graph.MetaAdapter):
    kind: ClassVar[str] = "facebook"
    client_class = FacebookClient
    direct_message = "Messenger message"

    def composer_hints(self, conversation: Conversation) -> dict[str, Any]:
        """When Messenger's 24-hour reply window closes (None on public comments); on a comment,
        the choice of a public reply or the one private reply in Messenger."""
        return {"window_closes_at": graph.messaging_window(conversation), **self.private_reply_hints(conversation)}

    def private_label(self) -> str:
        from django.utils.translation import gettext as _

        return _("Reply privately in Messenger")

    def private_target(self, comment: Message | None) -> dict[str, str] | None:
        return private_target(comment)

    def owner_id(self, account: ChannelAccount) -> str:
        return str((account.config or {}).get("page_id") or "me")

    def check_text(self, text: str, *, public: bool) -> None:
        if len(text) > MAX_TEXT:
            raise PermanentError(f"Facebook replies hold at most {MAX_TEXT} characters")

    def reply_publicly(self, account: ChannelAccount, client: FacebookClient, owner_id: str, message: OutboundMessage, text: str) -> str:
        target = reply_target(account, message.in_reply_to)
        if not target:
            raise PermanentError("Facebook: no comment or post to reply to")
        page_id = str((account.config or {}).get("page_id", ""))
        return graph.own_earlier_reply(message.idempotency_key, functools.partial(client.comments, target), page_id, text, "message") or client.reply_to_comment(target, text)

    def max_length(self, account: ChannelAccount) -> int | None:
        return MAX_TEXT


adapter = register(FacebookAdapter())
