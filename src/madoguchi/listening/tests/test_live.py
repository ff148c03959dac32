"""Captured posts are announced on the live bus after commit, one event per transaction, for the stream's pill."""

from django.utils import timezone

from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.inbox.models import LiveEvent
from madoguchi.ingest.actions import do_ingest, do_ingest_posts


def stream_item(ext: str, text: str, author: str = "fan") -> InboundItem:
    return InboundItem(
        external_id=ext, author=InboundAuthor(external_id=author, handle=author), text=text,
        created_at=timezone.now(), public=True, route="stream",
    )


def captured_events(ws):
    return list(LiveEvent.objects.filter(workspace=ws, kind="listening.captured").values_list("data", flat=True))


def test_a_batch_is_announced_once_without_mentions_and_noise(cast, rules, django_capture_on_commit_callbacks):
    batch = [
        stream_item("a", "アイフォンが圏外のまま。障害？"),
        stream_item("b", "my iphone is great"),
        stream_item("c", "@acme_support my order never came", "other"),  # a mention: a conversation
        stream_item("d", "【当選】アイフォンが当たりました→ http://example.com/x 今すぐクリック", "bot"),  # spam
        stream_item("e", "lunch"),  # no rule
    ]
    with django_capture_on_commit_callbacks(execute=True):
        do_ingest_posts(cast.account, batch)
    assert captured_events(cast.ws) == [{"count": 2, "urgent": 1}]
    assert captured_events(cast.ws_b) == []


def test_a_post_stored_item_by_item_is_announced_too(cast, rules, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        do_ingest(cast.account, stream_item("z", "iphone question"))
    assert captured_events(cast.ws) == [{"count": 1, "urgent": 0}]


def test_nothing_is_announced_before_commit(cast, rules):
    do_ingest_posts(cast.account, [stream_item("y", "iphone question")])
    assert captured_events(cast.ws) == []
