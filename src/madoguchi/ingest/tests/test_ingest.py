"""The ingest entry point: idempotent, threads correctly, quarantines what it cannot take."""

import pytest

from madoguchi.contacts.models import Contact
from madoguchi.inbox.models import Conversation, LiveEvent, Message
from madoguchi.ingest.actions import do_ingest_payload
from madoguchi.ingest.models import Post, Quarantine

pytestmark = pytest.mark.django_db


def test_replayed_item_changes_nothing(cast):
    first = cast.inbound("hello", external_id="dup-1")
    again = cast.inbound("hello", external_id="dup-1")
    assert first.created and not again.created
    assert again.message.pk == first.message.pk
    assert Message.objects.count() == 1 and Conversation.objects.count() == 1


def test_same_external_id_on_another_account_is_a_different_item(cast):
    cast.inbound("a", external_id="same")
    cast.inbound("b", external_id="same", account=cast.account_b)
    assert Message.objects.count() == 2


def test_reply_chain_threads_into_the_parent_conversation(cast):
    parent = cast.inbound("q", customer="a", external_id="p1")
    child = cast.inbound("follow-up", customer="a", external_id="c1", reply_to=["p1"])
    assert child.message.conversation_id == parent.message.conversation_id


def test_platform_thread_id_threads_and_new_thread_starts_new_conversation(cast):
    a = cast.inbound("1", customer="z", thread_id="T-1")
    b = cast.inbound("2", customer="z", thread_id="T-1")
    c = cast.inbound("3", customer="z", thread_id="T-2")
    assert a.message.conversation_id == b.message.conversation_id != c.message.conversation_id


def test_recent_open_conversation_of_the_same_identity_is_continued(cast):
    a = cast.inbound("1", customer="w")
    b = cast.inbound("2", customer="w")
    assert a.message.conversation_id == b.message.conversation_id
    assert Contact.objects.filter(workspace=cast.ws).count() == 1


def test_public_item_is_also_captured_as_a_post(cast):
    result = cast.inbound("@acme my order is late", public=True)
    post = Post.objects.get()
    assert post.conversation_id == result.message.conversation_id


def test_stream_route_only_captures_a_post(cast):
    result = cast.inbound("acme phones are great", route="stream", public=True)
    assert result.post is not None and result.message is None
    assert not Conversation.objects.exists()


def test_invalid_payload_is_quarantined_with_the_reason(cast):
    result = do_ingest_payload(cast.account, {"external_id": "", "text": "x"})
    assert result.quarantine is not None
    q = Quarantine.objects.get()
    assert "external_id" in q.reason and "author" in q.reason
    assert q.workspace_id == cast.ws.pk


def test_malformed_json_is_quarantined(cast):
    result = do_ingest_payload(cast.account, b"{not json")
    assert "not valid JSON" in result.quarantine.reason


def test_oversized_attachment_is_quarantined_not_dropped(cast, settings):
    settings.ATTACHMENT_MAX_BYTES = 10
    result = do_ingest_payload(
        cast.account,
        {"external_id": "big", "author": {"external_id": "u"}, "text": "see file",
         "attachments": [{"filename": "a.bin", "content": "x" * 100}]},
    )
    assert result.quarantine is not None and "a.bin" in result.quarantine.reason
    assert not Message.objects.exists()


def test_inbound_html_is_sanitized(cast):
    result = cast.inbound("x", html='<p onclick="evil()">hi<script>alert(1)</script><a href="javascript:x">l</a></p>')
    html = result.message.html
    assert "script" not in html and "onclick" not in html and "javascript:" not in html and "hi" in html


def test_ingest_publishes_a_live_event(cast):
    result = cast.inbound("live")
    event = LiveEvent.objects.filter(kind="message.created").last()
    assert event.conversation_id == result.message.conversation_id and event.workspace_id == cast.ws.pk


def test_message_after_resolution_within_the_window_reopens_the_conversation(cast):
    from madoguchi.inbox import actions
    from madoguchi.inbox.models import Status

    conv = cast.inbound("1", customer="r").message.conversation
    actions.do_set_status(conv, Status.RESOLVED, actor=cast.agent)
    again = cast.inbound("2", customer="r")
    assert again.message.conversation_id == conv.pk
    conv.refresh_from_db()
    assert conv.status == Status.OPEN


def test_an_attachment_that_is_a_decompression_bomb_is_quarantined_and_nothing_is_written(cast, settings, tmp_path):
    import struct

    from madoguchi.connectors.base import InboundAttachment
    from madoguchi.ingest.models import Quarantine

    settings.MEDIA_ROOT = str(tmp_path)
    bomb = b"\x1f\x8b\x08\x00" + b"\0" * 12 + struct.pack("<I", 4_000_000_000)
    result = cast.inbound(
        "see the logs",
        attachments=[
            InboundAttachment(filename="ok.txt", content_type="text/plain", content=b"fine"),
            InboundAttachment(filename="logs.gz", content_type="application/gzip", content=bomb),
        ],
    )
    assert result.quarantine is not None and "logs.gz" in result.quarantine.reason
    assert Quarantine.objects.count() == 1
    assert not any(tmp_path.rglob("*.txt"))  # the first attachment was not written either
