"""Reactions, edits, deletions and follows are kept, never dropped, even out of order."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from madoguchi.connectors.base import InboundAuthor, InboundEvent
from madoguchi.inbox.models import LiveEvent, Message, MessageEvent
from madoguchi.ingest.actions import do_ingest_event

AUTHOR = InboundAuthor(external_id="cust-1", handle="cust-1", display_name="Yui Sato")


def _event(kind: str, target: str = "", **extra: object) -> InboundEvent:
    return InboundEvent(
        external_id=f"{kind}-{target}-{len(extra)}-{extra.get('emoji', '')}",
        kind=kind,  # type: ignore[arg-type]
        author=AUTHOR,
        target_external_id=target,
        created_at=extra.pop("created_at", timezone.now()),  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def test_reaction_is_kept_on_the_message_it_reacts_to(cast):
    message = cast.inbound("品切れですか？", external_id="m1").message
    record = do_ingest_event(cast.account, _event("reaction", "m1", emoji="👍"))
    assert record.message_id == message.pk and record.emoji == "👍"
    assert LiveEvent.objects.filter(kind="message.updated", conversation_id=message.conversation_id).exists()


def test_duplicate_event_delivery_is_ignored(cast):
    cast.inbound("hello", external_id="m1")
    first = do_ingest_event(cast.account, _event("reaction", "m1", emoji="❤"))
    again = do_ingest_event(cast.account, _event("reaction", "m1", emoji="❤"))
    assert first.pk == again.pk and MessageEvent.objects.count() == 1


def test_edit_changes_the_text_and_keeps_the_original_for_audit(cast):
    cast.inbound("My order 123 is late", external_id="m1")
    record = do_ingest_event(cast.account, _event("edit", "m1", text="My order 124 is late"))
    message = Message.objects.get(external_id="m1")
    assert message.text == "My order 124 is late" and message.edited_at is not None
    assert record.previous_text == "My order 123 is late"


def test_deleted_message_is_marked_and_its_text_kept(cast):
    cast.inbound("please call me on 090-0000-0000", external_id="m1")
    do_ingest_event(cast.account, _event("delete", "m1"))
    message = Message.objects.get(external_id="m1")
    assert message.deleted_at is not None and "090" in message.text


def test_event_that_arrives_before_its_message_is_applied_when_the_message_comes(cast):
    early = timezone.now() + dt.timedelta(seconds=1)
    do_ingest_event(cast.account, _event("edit", "m9", text="edited first", created_at=early))
    do_ingest_event(cast.account, _event("reaction", "m9", emoji="😡"))
    message = cast.inbound("original", external_id="m9").message
    message.refresh_from_db()
    assert message.text == "edited first"
    assert set(message.events.values_list("kind", flat=True)) == {"edit", "reaction"}


def test_follow_is_recorded_on_the_customer_without_opening_a_conversation(cast):
    record = do_ingest_event(cast.account, _event("follow"))
    assert record.message is None and record.identity.external_id == "cust-1"
    assert not Message.objects.exists()


def test_second_workspace_never_sees_the_event(cast):
    cast.inbound("hello", external_id="m1")
    do_ingest_event(cast.account_b, _event("reaction", "m1", emoji="👍"))
    assert MessageEvent.objects.get().message is None


def test_conversation_shows_reactions_edits_and_deletion(cast, client_for):
    message = cast.inbound("original text", external_id="m1").message
    do_ingest_event(cast.account, _event("reaction", "m1", emoji="👍"))
    do_ingest_event(cast.account, _event("edit", "m1", text="new text"))
    do_ingest_event(cast.account, _event("delete", "m1"))
    page = client_for(cast.agent).get(f"/inbox/c/{message.conversation_id}/").content.decode()
    assert "👍" in page and "new text" in page and "original text" in page
    assert "Deleted by the author" in page and "Edited" in page


# --- captured public posts (listening stream items have no message) ---------------------------


def _stream_post(cast, text: str, external_id: str = "p1"):
    from madoguchi.ingest.models import Post

    cast.inbound(text, route="stream", public=True, external_id=external_id)
    return Post.objects.get(external_id=external_id)


def test_an_edit_changes_a_captured_post_and_keeps_its_text_on_the_event(cast):
    from madoguchi.ingest.models import Post

    _stream_post(cast, "acme phones break")
    record = do_ingest_event(cast.account, _event("edit", "p1", text="acme phones are fine"))
    post = Post.objects.get(external_id="p1")
    assert post.text == "acme phones are fine" and post.edited_at == record.created_at
    assert record.previous_text == "acme phones break" and record.message is None


def test_a_deleted_post_is_marked_and_keeps_its_text(cast):
    from madoguchi.ingest.models import Post

    _stream_post(cast, "acme phones break")
    do_ingest_event(cast.account, _event("delete", "p1"))
    post = Post.objects.get(external_id="p1")
    assert post.deleted_at is not None and post.text == "acme phones break"


def test_an_older_edit_arriving_late_does_not_undo_a_newer_one_on_a_post(cast):
    from madoguchi.ingest.models import Post

    _stream_post(cast, "v1")
    now = timezone.now()
    do_ingest_event(cast.account, _event("edit", "p1", text="v3", created_at=now))
    do_ingest_event(cast.account, _event("edit", "p1", text="v2", created_at=now - dt.timedelta(minutes=1)))
    assert Post.objects.get(external_id="p1").text == "v3"


def test_an_edit_before_its_post_is_applied_when_the_post_is_captured(cast):
    early = timezone.now() + dt.timedelta(seconds=1)
    do_ingest_event(cast.account, _event("edit", "p7", text="edited first", created_at=early))
    do_ingest_event(cast.account, _event("delete", "p7", created_at=early))
    post = _stream_post(cast, "original", external_id="p7")
    assert post.text == "edited first" and post.edited_at == early and post.deleted_at == early
    assert MessageEvent.objects.get(kind="edit").previous_text == "original"


def test_a_public_item_edits_both_its_message_and_its_post(cast):
    from madoguchi.ingest.models import Post

    cast.inbound("@acme where is my order", public=True, external_id="m1")
    record = do_ingest_event(cast.account, _event("edit", "m1", text="@acme found it, thanks"))
    assert Message.objects.get(external_id="m1").text == "@acme found it, thanks"
    assert Post.objects.get(external_id="m1").text == "@acme found it, thanks"
    assert record.previous_text == "@acme where is my order"


def test_an_event_of_another_workspace_leaves_the_post_alone(cast):
    from madoguchi.ingest.models import Post

    _stream_post(cast, "acme phones break")
    do_ingest_event(cast.account_b, _event("delete", "p1"))
    assert Post.objects.get(external_id="p1").deleted_at is None


def test_the_listening_stream_shows_edited_and_deleted_posts(cast, client_for):
    _stream_post(cast, "acme phones break", external_id="p1")
    _stream_post(cast, "acme support is slow", external_id="p2")
    do_ingest_event(cast.account, _event("edit", "p1", text="acme phones are fine"))
    page = client_for(cast.agent).get("/listening/?view=all").content.decode()
    assert "acme phones are fine" in page and page.count(">Edited<") == 1
    assert "Deleted by the author" not in page
    do_ingest_event(cast.account, _event("delete", "p2"))
    page = client_for(cast.agent).get("/listening/?view=all").content.decode()
    assert page.count("Deleted by the author") == 1 and "acme support is slow" in page
