"""`do_ingest_posts` (batches, for firehoses and replay) leaves exactly what `do_ingest` item by item leaves."""

import datetime as dt

import pytest
from django.db import IntegrityError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.contacts.models import Contact, Identity
from madoguchi.inbox.models import Conversation, Message
from madoguchi.ingest import actions as ingest
from madoguchi.ingest.actions import do_ingest, do_ingest_posts
from madoguchi.ingest.models import Post
from madoguchi.listening.actions import do_import_rules, forget_compiled_rules

RULES = """
rules:
  - name: own account
    accounts: ["@acme_support"]
  - name: phones
    any_of: [アイフォン, iphone, "au"]
    none_of: [求人]
  - name: fiber
    all_of: [acme, fiber]
    languages: [en]
"""

WHEN = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def _fresh_compiled_rules():
    forget_compiled_rules()
    yield
    forget_compiled_rules()


def item(ext, text, author="fan1", *, followers=None, route="stream", public=True, name="", **raw):
    return InboundItem(
        external_id=ext,
        author=InboundAuthor(external_id=author, handle=author, display_name=name, followers=followers),
        text=text,
        created_at=WHEN - dt.timedelta(minutes=1),
        public=public,
        route=route,
        raw=raw,
    )


def mixed_batch() -> list[InboundItem]:
    return [
        item("r1", "my iphone screen is dim", "repeater"),
        item("r2", "my iphone screen is dim", "repeater"),
        item("r3", "my iphone screen is dim", "repeater"),  # a third post in a day: more urgent
        item("p1", "ｱｲﾌｫﾝが朝から繋がらない。障害？", followers=5000, verified=True),
        item("p2", "In August I ate lunch"),  # no rule: dropped
        item("p3", "アイフォン販売の求人です"),  # excluded
        item("p4", "acme fiber is down again", "angry", followers=10),
        item("p5", "acmeのfiber遅い"),  # English-only rule
        item("p6", "acme fiber down AGAIN!!! third time", "angry", followers=12),  # repeats, profile change
        item("m1", "@acme_support my order never came", "angry"),  # mention: a conversation
        item("m2", "@acme_support thanks for the quick fix", "happy"),  # a mention by someone new
        item("p11", "iphone works again", "happy"),  # after their mention: a repeat
        item("p7", "acme fiber still down, unacceptable", "angry", name="Angry Person"),
        item("p1", "ｱｲﾌｫﾝが朝から繋がらない。障害？"),  # a second delivery in the same batch
        item("s1", "【当選】アイフォン16が当たりました！→ http://example.com/x 今すぐクリック", "bot"),
        item("p8", "iPhone\x00 au shop was great, thanks!", "fan2"),  # a NUL in the text
        item("dm1", "hello, I need help with my au bill", "fan2", route="conversation", public=False),
        item("p9", "au の電波が弱い", "old-fan", followers=99),
        item("p10", "my iphone is fine", "fan3", lang="en"),
    ]


def seed(account: ChannelAccount) -> None:
    """State from before the batch: a known poster, a stored post and a message the batch repeats."""
    do_ingest(account, item("p0", "au shop again", "old-fan", followers=50))
    do_ingest(account, item("p9b", "au shop again and again", "old-fan", followers=50))
    do_ingest(account, item("p4", "acme fiber is down again", "angry", followers=10))  # p4 arrives again


def snapshot(workspace_id: int, results) -> dict:
    """Everything the two paths must agree on, without primary keys."""

    def post_row(p: Post):
        return (
            p.external_id, p.text, p.url, p.language, p.status, p.kind, p.urgency, p.sentiment, p.influence,
            p.priority, p.matched_rule.name if p.matched_rule_id else None, p.identity.external_id,
            p.contact.name, p.created_at, p.raw, p.conversation_id is not None,
        )

    posts = Post.objects.filter(workspace_id=workspace_id).select_related("identity", "contact", "matched_rule")
    identities = Identity.objects.filter(workspace_id=workspace_id).select_related("contact")
    return {
        "results": [
            (r.created, r.dropped, r.post.external_id if r.post else None, r.message.external_id if r.message else None)
            for r in results
        ],
        "posts": sorted(post_row(p) for p in posts),
        "identities": sorted(
            (x.kind, x.external_id, x.handle, x.display_name, x.followers, x.language, x.contact.name, x.contact.email)
            for x in identities
        ),
        "contacts": Contact.objects.filter(workspace_id=workspace_id).count(),
        "conversations": sorted(
            (c.contact.name, c.status, c.messages.count()) for c in Conversation.objects.filter(workspace_id=workspace_id)
        ),
        "messages": sorted(Message.objects.filter(workspace_id=workspace_id).values_list("external_id", "text")),
    }


def test_batch_path_leaves_what_the_item_by_item_path_leaves(cast):
    one_by_one = ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="X")
    batched = ChannelAccount.objects.create(workspace=cast.ws_b, brand=cast.ws_b.brands.first(), kind="x", name="X")
    for account in (one_by_one, batched):
        do_import_rules(account.workspace, RULES)
        seed(account)

    expected = snapshot(cast.ws.pk, [do_ingest(one_by_one, i) for i in mixed_batch()])
    got = snapshot(cast.ws_b.pk, do_ingest_posts(batched, mixed_batch()))

    assert got == expected
    # The batch did something worth comparing: captures, drops, a repeat-raised urgency, a mention.
    assert [r[:2] for r in got["results"]].count((True, False)) >= 6
    assert [r[:2] for r in got["results"]].count((False, True)) == 3
    urgency = {p[0]: p[6] for p in got["posts"]}
    assert urgency["r3"] == urgency["r1"] + 1
    assert len(got["conversations"]) == 3
    # Replaying the same batch changes nothing.
    again = do_ingest_posts(batched, mixed_batch())
    assert not any(r.created for r in again)
    assert snapshot(cast.ws_b.pk, again)["posts"] == got["posts"]


def test_a_batch_stores_captured_posts_with_few_queries(cast, django_assert_max_num_queries):
    account = ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="X")
    do_import_rules(cast.ws, RULES)
    batch = [item(f"q{i}", f"my iphone number {i} is slow", f"user{i % 40}", followers=i) for i in range(200)]
    batch += [item(f"n{i}", "nothing to see here") for i in range(800)]
    with django_assert_max_num_queries(16):
        results = do_ingest_posts(account, batch)
    assert sum(r.created for r in results) == 200
    assert Identity.objects.filter(workspace=cast.ws, kind="x").count() == 40


def test_batch_without_rules_captures_every_stream_item(cast):
    account = ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="X")
    results = do_ingest_posts(account, [item("a", "anything at all"), item("b", "またエラー", "fan9")])
    assert [r.created for r in results] == [True, True]
    assert sorted(Post.objects.filter(workspace=cast.ws).values_list("language", flat=True)) == ["en", "ja"]


def test_a_race_on_insert_falls_back_to_item_by_item(cast, monkeypatch):
    account = ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="X")
    do_import_rules(cast.ws, RULES)
    calls = []

    def racing(*args, **kwargs):
        calls.append(1)
        raise IntegrityError("another worker stored it first")

    monkeypatch.setattr(ingest, "_store_posts", racing)
    results = do_ingest_posts(account, [item("r1", "iphone broke"), item("r2", "lunch")])
    assert calls and [r.created for r in results] == [True, False]
    assert Post.objects.filter(channel_account=account).count() == 1


def test_a_batch_of_another_workspace_sees_nothing_of_ours(cast):
    ours = ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="X")
    theirs = ChannelAccount.objects.create(workspace=cast.ws_b, brand=cast.ws_b.brands.first(), kind="x", name="X")
    do_import_rules(cast.ws, RULES)
    do_ingest_posts(ours, [item("z1", "iphone broke", "shared-author")])
    # Beta has no rules (captures everything) and its own identity for the same platform user.
    result = do_ingest_posts(theirs, [item("z1", "iphone broke", "shared-author")])[0]
    assert result.created and result.post.workspace_id == cast.ws_b.pk
    assert result.post.identity.workspace_id == cast.ws_b.pk
    assert Identity.objects.filter(external_id="shared-author").count() == 2


def test_queries_grow_only_with_the_insert_chunks(cast):
    from django.db import connection

    account = ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="X")
    do_import_rules(cast.ws, RULES)
    do_ingest_posts(account, [item("warm", "iphone")])  # compiles the rules
    batch = [item(f"l{i}", f"iphone {i}", f"author{i}") for i in range(300)]
    with CaptureQueriesContext(connection) as ctx:
        do_ingest_posts(account, batch)
    # Item by item this is about 8 queries a post (2,400); SQLite caps the parameters of one
    # INSERT, so the bulk inserts come in a few chunks.
    assert len(ctx) <= 25
    assert Post.objects.filter(channel_account=account).count() == 301
