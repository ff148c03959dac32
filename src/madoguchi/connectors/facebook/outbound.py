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

from typing import TYPE_CHECKING, Any, ClassVar

from madoguchi.connectors import health
from madoguchi.connectors.base import OutboundMessage, PermanentError, SendResult, register
from madoguchi.connectors.facebook import graph
from madoguchi.connectors.facebook.client import FacebookClient
from madoguchi.connectors.facebook.graph import GraphError
from madoguchi.connectors.facebook.inbound import POST_ITEMS
from madoguchi.connectors.models import ChannelAccount

if TYPE_CHECKING:
    from madoguchi.inbox.models import Conversation, Message

MAX_TEXT = 2000


def _stored(account: ChannelAccount, external_id: str) -> Message | None:
    from madoguchi.inbox.models import Message

    if not external_id:
        return None
    return Message.objects.select_related("identity__contact").filter(channel_account=account, external_id=external_id).first()


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


class FacebookAdapter:
    def composer_hints(self, conversation: Conversation) -> dict[str, Any]:
        """When Messenger's 24-hour reply window closes (None on public comments); on a comment,
        the choice of a public reply or the one private reply in Messenger."""
        from django.utils.translation import gettext as _

        hints: dict[str, Any] = {"window_closes_at": graph.messaging_window(conversation)}
        comment = graph.answered_item(conversation)
        if private_target(comment) is not None:
            assert comment is not None
            hints["reply_modes"] = graph.reply_modes(conversation, comment, _("Reply privately in Messenger"))
        return hints

    kind: ClassVar[str] = "facebook"

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        text = message.text.strip()
        if not text:
            raise PermanentError("Facebook: only text replies are supported; this message has no text")
        if len(text) > MAX_TEXT:
            raise PermanentError(f"Facebook replies hold at most {MAX_TEXT} characters")
        graph.check_rate_limit(account)  # a remembered limit: wait without calling
        if message.public:
            target = reply_target(account, message.in_reply_to)
            if not target:
                raise PermanentError("Facebook: no comment or post to reply to")
            with FacebookClient(account) as client:
                try:
                    found = self._already_posted(account, client, target, text, message.idempotency_key)
                    external_id = found or client.reply_to_comment(target, text)
                except GraphError as exc:
                    raise graph.failure(account, exc) from exc
                graph.note_usage(account, client)
        elif (comment := _stored(account, message.in_reply_to)) is not None and (recipient := private_target(comment)):
            page_id = str((account.config or {}).get("page_id") or "me")
            with FacebookClient(account) as client:
                external_id = graph.send_private_reply(account, client, page_id, recipient, comment, text, message.idempotency_key)
        else:
            person = graph.dm_recipient(message)
            if not person:
                raise PermanentError("Facebook: no recipient for this Messenger message")
            graph.check_window(account, message.thread_id or f"dm:{person}")
            page_id = str((account.config or {}).get("page_id") or "me")
            with FacebookClient(account) as client:
                try:
                    external_id = client.send_message(page_id, person, text)
                except GraphError as exc:
                    raise graph.failure(account, exc, what="the message") from exc
                graph.note_usage(account, client)
        health.do_record_channel_ok(account, sent=True)
        return SendResult(external_id)

    def _already_posted(self, account: ChannelAccount, client: FacebookClient, target: str, text: str, key: str) -> str:
        """On a retry, the id of our identical reply if an earlier attempt did post it."""
        if not graph.previous_attempts(key):
            return ""
        page_id = str((account.config or {}).get("page_id", ""))
        for comment in client.comments(target):
            if str((comment.get("from") or {}).get("id", "")) == page_id and comment.get("message") == text:
                return str(comment["id"])
        return ""

    def max_length(self, account: ChannelAccount) -> int | None:
        return MAX_TEXT


adapter = register(FacebookAdapter())
