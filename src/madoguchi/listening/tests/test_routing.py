"""Listening decides what ingest does with a public post: capture and triage it, open a conversation, or drop it."""

from django.utils import timezone

from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.ingest.actions import do_ingest
from madoguchi.ingest.models import Post
from madoguchi.listening.actions import do_delete_rule, do_import_rules


def stream_item(text: str, ext: str, *, followers: int | None = None, author: str = "fan1", **raw) -> InboundItem:
    return InboundItem(
        external_id=ext,
        author=InboundAuthor(external_id=author, handle=author, followers=followers),
        text=text,
        created_at=timezone.now(),
        public=True,
        route="stream",
        raw=raw,
    )


def test_keyword_match_is_captured_with_triage_and_rule(cast, rules):
    result = do_ingest(cast.account, stream_item("ｱｲﾌｫﾝが朝から繋がらない。障害？", "p1", followers=5000, verified=True))
    post = result.post
    assert result.created and result.message is None
    assert post.matched_rule.name == "phones"
    assert post.language == "ja"
    assert post.urgency == 2
    assert post.kind in ("complaint", "question")
    assert 30 < post.influence < 60
    assert post.priority >= 2000
    assert post.status == Post.Status.NEW


def test_post_matching_no_rule_is_dropped(cast, rules):
    result = do_ingest(cast.account, stream_item("In August I ate lunch", "p2"))
    assert result.dropped and not result.created
    assert not Post.objects.filter(external_id="p2").exists()


def test_exclusions_and_languages_apply(cast, rules):
    assert do_ingest(cast.account, stream_item("アイフォン販売の求人です", "p3")).dropped
    assert do_ingest(cast.account, stream_item("acme fiber is down again", "p4")).post.matched_rule.name == "fiber"
    assert do_ingest(cast.account, stream_item("acmeのfiber遅い", "p5")).dropped  # the rule is English only


def test_mention_of_own_account_always_becomes_a_conversation(cast, rules):
    result = do_ingest(cast.account, stream_item("@acme_support my order never came", "m1"))
    assert result.message is not None
    assert result.message.conversation.contact_id == result.post.contact_id
    result.post.refresh_from_db()
    assert result.post.conversation_id == result.message.conversation_id
    assert result.post.matched_rule.name == "own account"


def test_spam_is_captured_but_never_reaches_agents(cast, rules):
    text = "【当選】アイフォン16が当たりました！こちらから受け取り手続き→ http://example.com/x 今すぐクリック"
    post = do_ingest(cast.account, stream_item(text, "s1")).post
    assert post.kind == "spam"
    assert post.status == Post.Status.DISMISSED
    assert post.priority == 0


def test_repeated_posts_raise_urgency(cast, rules):
    first = do_ingest(cast.account, stream_item("iphone question about colours?", "r1", author="same")).post
    do_ingest(cast.account, stream_item("iphone question about colours? hello", "r2", author="same"))
    third = do_ingest(cast.account, stream_item("iphone question about colours?", "r3", author="same")).post
    assert third.urgency == min(2, first.urgency + 1)


def test_replayed_post_changes_nothing(cast, rules):
    item = stream_item("iphone broke", "d1")
    assert do_ingest(cast.account, item).created
    again = do_ingest(cast.account, item)
    assert not again.created and again.post is not None
    assert Post.objects.filter(external_id="d1").count() == 1


def test_rule_changes_apply_to_the_next_post_without_restart(cast, rules):
    assert do_ingest(cast.account, stream_item("pixel is nice", "c1")).dropped
    do_import_rules(cast.ws, "rules:\n  - name: pixel\n    any_of: [pixel]\n")
    assert do_ingest(cast.account, stream_item("pixel is nice", "c2")).created
    do_delete_rule(next(r for r in rules if r.name == "phones"))
    assert do_ingest(cast.account, stream_item("iphone again", "c3")).dropped


def test_workspace_without_rules_captures_every_stream_post(cast):
    result = do_ingest(cast.account, stream_item("anything at all", "n1"))
    assert result.created and result.post.kind


def test_rules_of_one_workspace_never_apply_to_another(cast, rules):
    assert do_ingest(cast.account_b, stream_item("In August", "b1")).created  # B has no rules


def test_direct_messages_stay_conversations_whatever_the_rules(cast, rules):
    assert cast.inbound("hello there, unrelated words").message is not None
