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

from typing import TYPE_CHECKING, Any, ClassVar

from madoguchi.connectors import health
from madoguchi.connectors.base import OutboundMessage, PermanentError, SendResult, register
from madoguchi.connectors.facebook import graph
from madoguchi.connectors.facebook.graph import GraphError
from madoguchi.connectors.instagram.client import InstagramClient
from madoguchi.connectors.models import ChannelAccount

if TYPE_CHECKING:
    from madoguchi.inbox.models import Conversation, Message

MAX_COMMENT = 2200
MAX_DM_BYTES = 1000


def _raw(account: ChannelAccount, external_id: str) -> dict[str, Any]:
    from madoguchi.inbox.models import Message

    if not external_id:
        return {}
    raw = Message.objects.filter(channel_account=account, external_id=external_id).values_list("raw", flat=True).first()
    return raw or {}


def _stored(account: ChannelAccount, external_id: str) -> Message | None:
    from madoguchi.inbox.models import Message

    if not external_id:
        return None
    return Message.objects.select_related("identity__contact").filter(channel_account=account, external_id=external_id).first()


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


class InstagramAdapter:
    def composer_hints(self, conversation: Conversation) -> dict[str, Any]:
        """The limit of this conversation (a comment's 2,200 characters or a DM's 1,000 bytes)
        and when the 24-hour reply window of a DM closes (None on comments); on a comment, the
        choice of a public reply or the one private reply in Instagram Direct."""
        from django.utils.translation import gettext as _

        if conversation.thread_key.startswith("dm:"):  # as inbound threads direct messages
            return {"max_length": MAX_DM_BYTES, "counting": "bytes", "window_closes_at": graph.messaging_window(conversation)}
        hints: dict[str, Any] = {"max_length": MAX_COMMENT, "counting": "chars", "window_closes_at": None}
        comment = graph.answered_item(conversation)
        if private_target(comment) is not None:
            assert comment is not None
            hints["reply_modes"] = graph.reply_modes(conversation, comment, _("Reply privately in Instagram Direct"))
        return hints

    kind: ClassVar[str] = "instagram"

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        text = message.text.strip()
        if not text:
            raise PermanentError("Instagram: only text replies are supported; this message has no text")
        ig_user_id = str((account.config or {}).get("ig_user_id", ""))
        if not ig_user_id:
            raise PermanentError("Instagram: the account has no ig_user_id configured")
        check_length(text, public=message.public)
        graph.check_rate_limit(account)  # a remembered limit: wait without calling
        comment = None if message.public else _stored(account, message.in_reply_to)
        if message.public:
            raw = _raw(account, message.in_reply_to)
            with InstagramClient(account) as client:
                try:
                    if raw.get("mention"):
                        if not raw.get("comment_id"):
                            raise PermanentError("Instagram: a mention in a caption cannot be answered through the API; comment on the post in the app")
                        external_id = client.reply_to_mention(ig_user_id, str(raw["comment_id"]), str(raw.get("media_id", "")), text)
                    else:
                        target = str(raw.get("reply_target") or message.in_reply_to)
                        if not target:
                            raise PermanentError("Instagram: no comment to reply to")
                        external_id = self._already_posted(client, ig_user_id, target, text, message.idempotency_key) or client.reply_to_comment(target, text)
                except GraphError as exc:
                    raise graph.failure(account, exc) from exc
                graph.note_usage(account, client)
        elif comment is not None and (recipient := private_target(comment)):
            with InstagramClient(account) as client:
                external_id = graph.send_private_reply(account, client, ig_user_id, recipient, comment, text, message.idempotency_key)
        elif comment is not None and comment.public:
            raise PermanentError("Instagram: a mention on someone else's media cannot be answered privately")
        else:
            person = graph.dm_recipient(message)
            if not person:
                raise PermanentError("Instagram: no recipient for this direct message")
            graph.check_window(account, message.thread_id or f"dm:{person}")
            with InstagramClient(account) as client:
                try:
                    external_id = client.send_message(ig_user_id, person, text)
                except GraphError as exc:
                    raise graph.failure(account, exc, what="the message") from exc
                graph.note_usage(account, client)
        health.do_record_channel_ok(account, sent=True)
        return SendResult(external_id)

    def _already_posted(self, client: InstagramClient, ig_user_id: str, target: str, text: str, key: str) -> str:
        """On a retry, the id of our identical reply if an earlier attempt did post it."""
        if not graph.previous_attempts(key):
            return ""
        for reply in client.replies(target):
            if str((reply.get("from") or {}).get("id", "")) == ig_user_id and reply.get("text") == text:
                return str(reply["id"])
        return ""

    def max_length(self, account: ChannelAccount) -> int | None:
        # Without a conversation, the tighter of the two; composer_hints gives each its own.
        return MAX_DM_BYTES


adapter = register(InstagramAdapter())
