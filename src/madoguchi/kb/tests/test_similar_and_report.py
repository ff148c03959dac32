"""Similar earlier conversations, the managers' report, FAQ candidates, diffs, feeds and social tips."""

from __future__ import annotations

import datetime as dt
from xml.etree import ElementTree

import pytest
from django.utils import timezone

from madoguchi.conftest import csrf_post
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Conversation, Message, Outbox
from madoguchi.kb import actions, queries, tasks
from madoguchi.kb.models import (
    Article,
    ArticleDay,
    ArticleStatus,
    ConversationDoc,
    SearchLog,
    SocialPost,
)

BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone) Safari"}
ATOM = "{http://www.w3.org/2005/Atom}"
pytestmark = pytest.mark.django_db


def resolved(cast, question: str, answer: str, *, account=None, customer: str = "cust-1", name: str = "Yui Sato") -> Conversation:
    conv = cast.inbound(question, account=account, customer=customer, name=name).message.conversation
    author = cast.agent_b if account is not None and account.workspace_id != cast.ws.pk else cast.agent
    inbox_actions.do_reply(conv, author=author, text=answer)
    return inbox_actions.do_set_status(conv, "resolved", actor=author)


def index_conversations() -> None:
    tasks.run_periodic.call()
    tasks.embed_conversations.call()


# -- similar conversations --------------------------------------------------------------------


def test_the_panel_shows_similar_resolved_conversations_of_the_workspace_only(cast, client_for):
    resolved(cast, "返品の送料は誰が負担しますか？", "Yui Sato様、返品の送料は当社が負担します。着払いでお送りください。")
    resolved(cast, "返品の送料は誰が負担しますか？", "Beta の社内だけの回答です。", account=cast.account_b, customer="b-1")
    resolved(cast, "営業時間を教えてください", "平日9時から18時までです。", customer="cust-2")
    index_conversations()
    assert ConversationDoc.objects.count() == 3
    conv = cast.inbound("返品するときの送料は誰が負担しますか", customer="cust-3").message.conversation
    html = client_for(cast.agent).get(f"/kb/suggest/{conv.pk}/").content.decode()
    earlier = html.split("Similar earlier conversations")[1]
    assert "返品の送料は当社が負担します" in earlier and "Insert answer" in earlier
    assert "Yui Sato" not in earlier  # anonymized when indexed
    assert "Beta の社内だけの回答" not in html and "平日9時" not in earlier


def test_articles_far_from_the_message_are_left_out_of_the_panel(cast, client_for):
    actions.do_create_article(cast.ws, title="返品したい商品があります", body="30日以内なら返品できます。", status=ArticleStatus.PUBLISHED)
    tasks.embed_articles.call(cast.ws.pk)
    near = cast.inbound("返品したい商品があります", customer="c-near").message.conversation
    far = cast.inbound("駐車場はありますか", customer="c-far").message.conversation
    assert "返品したい商品があります" in client_for(cast.agent).get(f"/kb/suggest/{near.pk}/").content.decode()
    html = client_for(cast.agent).get(f"/kb/suggest/{far.pk}/").content.decode()
    assert "返品したい商品があります" not in html and "No matching articles." in html


def test_the_current_conversation_is_not_suggested_to_itself(cast):
    conv = resolved(cast, "領収書を発行してもらえますか", "マイページから領収書をダウンロードできます。")
    index_conversations()
    assert queries.similar_conversations(cast.ws.pk, "領収書を発行してもらえますか", exclude=conv.pk) == []
    assert [s.doc.conversation_id for s in queries.similar_conversations(cast.ws.pk, "領収書を発行してもらえますか")] == [conv.pk]


def test_conversation_indexing_is_incremental_and_follows_a_new_answer(cast):
    conv = resolved(cast, "配送状況を知りたいです", "追跡番号から確認できます。")
    assert actions.do_index_resolved_conversations() == 1
    assert actions.do_index_resolved_conversations() == 0  # nothing new
    inbox_actions.do_set_status(conv, "open", actor=cast.agent)
    inbox_actions.do_reply(conv, author=cast.agent, text="配送状況はマイページの注文履歴で確認できます。")
    inbox_actions.do_set_status(conv, "resolved", actor=cast.agent)
    assert actions.do_index_resolved_conversations() == 1
    doc = ConversationDoc.objects.get(conversation=conv)
    assert doc.version == 2 and "注文履歴" in doc.answer


def test_the_indexer_reads_live_events_from_a_cursor_and_backfill_finds_older_ones(cast):
    from django.core.management import call_command

    from madoguchi.inbox.models import LiveEvent
    from madoguchi.kb.models import KbCursor

    old = resolved(cast, "支払い方法を変えたい", "マイページで変更できます。")
    LiveEvent.objects.update(created_at=timezone.now() - dt.timedelta(hours=1))
    assert actions.do_index_resolved_conversations() == 1
    assert KbCursor.objects.get().value == LiveEvent.objects.order_by("-pk").first().pk  # settled: not read again
    ConversationDoc.objects.all().delete()
    assert actions.do_index_resolved_conversations() == 0  # behind the cursor
    resolved(cast, "Beta の質問", "Beta の回答", account=cast.account_b, customer="b-2")
    call_command("kb", "index-conversations", workspace="Acme")
    assert list(ConversationDoc.objects.values_list("conversation_id", flat=True)) == [old.pk]


def test_a_conversation_without_our_answer_is_not_indexed(cast):
    conv = cast.inbound("ありがとうございました").message.conversation
    inbox_actions.do_set_status(conv, "resolved", actor=cast.agent)
    assert actions.do_index_resolved_conversations() == 0


# -- learning from use ------------------------------------------------------------------------


def test_inserting_an_article_is_counted_and_becomes_a_ranking_bonus(cast, client_for):
    a = actions.do_create_article(cast.ws, title="返品の方法", body="マイページから", status=ArticleStatus.PUBLISHED)
    res = csrf_post(client_for(cast.agent), f"/kb/a/{a.pk}/used/")
    assert res.status_code == 204 and ArticleDay.objects.get(article=a).inserts == 1
    assert queries.article_priors(cast.ws.pk)[a.pk] > 0
    assert csrf_post(client_for(cast.agent_b), f"/kb/a/{a.pk}/used/").status_code == 404


def test_helpful_votes_raise_and_unhelpful_votes_lower_the_prior(cast):
    good = actions.do_create_article(cast.ws, title="good", status=ArticleStatus.PUBLISHED)
    bad = actions.do_create_article(cast.ws, title="bad", status=ArticleStatus.PUBLISHED)
    for i in range(5):
        actions.do_vote(good, visitor=f"v{i}", helpful=True)
        actions.do_vote(bad, visitor=f"v{i}", helpful=False)
    priors = queries.article_priors(cast.ws.pk)
    assert priors[good.pk] > 0 > priors[bad.pk]


# -- searches with no good result -------------------------------------------------------------


def test_help_site_searches_are_logged_by_normalized_query_without_bots(cast, client):
    actions.do_create_article(cast.ws, title="パスワードを忘れました", body="再設定メールを送れます。", status=ArticleStatus.PUBLISHED)
    url = f"/help/{cast.brand.pk}/search/"
    client.get(url, {"q": "Gift  Wrapping"}, **BROWSER)
    client.get(url, {"q": "gift wrapping!"}, **BROWSER)
    client.get(url, {"q": "gift wrapping"}, HTTP_USER_AGENT="Googlebot/2.1")
    client.get(url, {"q": "gift wra", "partial": "1"}, **BROWSER)  # instant results while typing
    client.get(url, {"q": "gift wrapping", "partial": "1", "log": "1"}, **BROWSER)  # typing paused
    client.get(url, {"q": "パスワードを忘れました"}, **BROWSER)
    row = SearchLog.objects.get(query="gift wrapping")
    assert (row.searches, row.no_good, row.source) == (3, 3, "help")
    assert SearchLog.objects.get(query="パスワードを忘れました").no_good == 0
    assert SearchLog.objects.count() == 2


def test_logged_queries_lose_personal_data(cast):
    actions.do_log_search(cast.ws.pk, "agent", "refund for yui@example.com order #A12345", good=False, quality=0.1)
    query = SearchLog.objects.get().query
    assert "yui@example.com" not in query and "a12345" not in query


def test_managers_see_the_report_and_agents_do_not(cast, client_for):
    bad = actions.do_create_article(cast.ws, title="解約の手続き", body="古い手順", status=ArticleStatus.PUBLISHED)
    Article.objects.filter(pk=bad.pk).update(views=100)
    actions.do_vote(bad, visitor="v1", helpful=False, comment="手順が違いました")
    actions.do_log_search(cast.ws.pk, "help", "ギフト包装", good=False, quality=0.2)
    actions.do_log_search(cast.ws_b.pk, "help", "beta だけの検索", good=False, quality=0.2)
    page = client_for(cast.manager).get("/kb/report/").content.decode()
    assert page.index("Read a lot, helps little") < page.index("Searches with no good result")
    assert "手順が違いました" in page and "ギフト包装" in page and "beta だけの検索" not in page
    assert client_for(cast.agent).get("/kb/report/").status_code == 403


def test_trends_compare_the_last_7_and_30_days_with_the_days_before(cast):
    a = actions.do_create_article(cast.ws, title="trend", status=ArticleStatus.PUBLISHED)
    today = timezone.now().date()
    for days_ago, views in [(0, 6), (3, 4), (10, 5), (20, 5), (40, 10)]:
        ArticleDay.objects.create(article=a, day=today - dt.timedelta(days=days_ago), views=views)
    actions.do_record_view(a)  # today's row gets one more
    [stats] = queries.article_stats(cast.ws.pk)
    assert (stats.views_7, stats.views_prev_7, stats.views_30, stats.views_prev_30) == (11, 5, 21, 10)
    assert stats.trend_7 == 120 and stats.trend_30 == 110


# -- FAQ candidates ---------------------------------------------------------------------------


def test_repeated_questions_without_an_article_become_faq_candidates(cast, client_for):
    for i in range(3):
        resolved(cast, "ポイントの有効期限はいつまでですか", f"ポイントは付与から1年間有効です。({i})", customer=f"c{i}")
    resolved(cast, "住所を変更したい", "マイページで変更できます。", customer="c9")
    index_conversations()
    [candidate] = queries.faq_candidates(cast.ws.pk)
    assert candidate.size == 3 and "ポイント" in candidate.center.question
    page = client_for(cast.manager).get("/kb/report/").content.decode()
    assert "FAQ candidates" in page and "ポイントの有効期限" in page
    res = csrf_post(client_for(cast.manager), f"/kb/candidates/{candidate.center.conversation_id}/draft/")
    draft = Article.objects.get(source_conversation_id=candidate.center.conversation_id)
    assert res.status_code == 302 and draft.status == ArticleStatus.DRAFT and "ポイント" in draft.title
    assert csrf_post(client_for(cast.agent), f"/kb/candidates/{candidate.center.conversation_id}/draft/").status_code == 403


def test_a_question_an_article_answers_is_no_candidate(cast):
    for i in range(3):
        resolved(cast, "ポイントの有効期限はいつまでですか", "1年間です。", customer=f"c{i}")
    actions.do_create_article(cast.ws, title="ポイントの有効期限はいつまでですか", body="1年間です。", status=ArticleStatus.PUBLISHED)
    tasks.embed_articles.call(cast.ws.pk)
    index_conversations()
    assert queries.faq_candidates(cast.ws.pk) == []


def test_threshold_clustering_groups_close_rows():
    import numpy as np

    rows = np.array([[1, 0], [0.99, 0.141], [0.98, 0.199], [0, 1]], dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    clusters = queries.cluster_vectors(rows, 0.95)
    assert sorted(map(sorted, clusters)) == [[0, 1, 2], [3]]


# -- version diff -----------------------------------------------------------------------------


def test_the_version_diff_is_escaped_and_workspace_scoped(cast, client_for):
    a = actions.do_create_article(cast.ws, title="手順", body="line one\nline two")
    actions.do_update_article(a, author=cast.agent, body="line one\n<script>alert(1)</script>")
    html = client_for(cast.agent).get(f"/kb/a/{a.pk}/diff/").content.decode()
    body = html.split('id="body-diff"')[1]
    assert '<div class="del">line two</div>' in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert" not in html
    rows = queries.version_diff("返品は14日以内\n同じ行", "返品は30日以内\n同じ行\n新しい行")
    assert rows == [
        ("-", [(False, "返品は"), (True, "14"), (False, "日以内")]),
        ("+", [(False, "返品は"), (True, "30"), (False, "日以内")]),
        (" ", [(False, "同じ行")]),
        ("+", [(False, "新しい行")]),
    ]
    assert client_for(cast.agent_b).get(f"/kb/a/{a.pk}/diff/").status_code == 404
    assert client_for(cast.agent).get(f"/kb/a/{a.pk}/diff/?from=9&to=2").status_code == 404


# -- feeds ------------------------------------------------------------------------------------


def test_atom_feeds_per_brand_and_category_are_valid(cast, client):
    billing = actions.do_create_category(cast.ws, "請求")
    other = actions.do_create_category(cast.ws, "その他")
    actions.do_create_article(cast.ws, title="請求書 <b>PDF</b>", body="**太字**", category=billing, status=ArticleStatus.PUBLISHED)
    actions.do_create_article(cast.ws, title="その他の質問", category=other, status=ArticleStatus.PUBLISHED)
    actions.do_create_article(cast.ws, title="下書き", category=billing)
    res = client.get(f"/help/{cast.brand.pk}/c/{billing.pk}/feed.atom")
    assert res["Content-Type"].startswith("application/atom+xml")
    root = ElementTree.fromstring(res.content)
    for parent in [root, *root.findall(f"{ATOM}entry")]:  # RFC 4287: id, title, updated
        assert all(parent.find(f"{ATOM}{tag}") is not None and parent.find(f"{ATOM}{tag}").text for tag in ("id", "title", "updated"))
    assert root.find(f"{ATOM}author/{ATOM}name").text == cast.brand.name
    [entry] = root.findall(f"{ATOM}entry")
    assert entry.find(f"{ATOM}title").text == "請求書 <b>PDF</b>"
    assert entry.find(f"{ATOM}content").get("type") == "html" and "<strong>太字</strong>" in entry.find(f"{ATOM}content").text
    assert len(ElementTree.fromstring(client.get(f"/help/{cast.brand.pk}/feed.atom").content).findall(f"{ATOM}entry")) == 2
    other_brand = cast.account_b.brand
    assert client.get(f"/help/{other_brand.pk}/c/{billing.pk}/feed.atom").status_code == 404


# -- social tips ------------------------------------------------------------------------------


@pytest.fixture
def x_account(cast):
    from madoguchi.connectors.models import ChannelAccount

    return ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="Acme on X", handle="acme")


def test_on_approval_a_tip_waits_for_a_manager_then_goes_to_the_outbox(cast, client_for, x_account):
    actions.do_set_social_posting(cast.brand, "approval")
    a = actions.do_create_article(cast.ws, title="返品は30日以内にどうぞ", body="...", brand=cast.brand)
    actions.do_set_status(a, ArticleStatus.PUBLISHED, actor=cast.manager)
    post = SocialPost.objects.get(article=a)
    assert post.status == "proposed" and post.account == x_account and f"/help/a/{a.pk}/" in post.text
    assert Message.objects.filter(channel_account=x_account).count() == 0
    assert csrf_post(client_for(cast.agent), f"/kb/social/{post.pk}/", {"decision": "approve"}).status_code == 403
    csrf_post(client_for(cast.manager), f"/kb/social/{post.pk}/", {"decision": "approve"})
    post.refresh_from_db()
    message = Message.objects.get(pk=post.message_id)
    assert post.status == "posted" and message.public and message.direction == "out" and message.reply_to_external_id == ""
    assert Outbox.objects.filter(message=message).exists() and message.conversation.status == "resolved"


def test_automatic_posting_posts_once_per_account(cast, x_account):
    actions.do_set_social_posting(cast.brand, "auto")
    a = actions.do_create_article(cast.ws, title="新しいヒント", brand=cast.brand)
    actions.do_set_status(a, ArticleStatus.PUBLISHED, actor=cast.manager)
    actions.do_set_status(a, ArticleStatus.DRAFT, actor=cast.manager)
    actions.do_set_status(a, ArticleStatus.PUBLISHED, actor=cast.manager)
    assert SocialPost.objects.get(article=a).status == "posted"
    assert Message.objects.filter(channel_account=x_account, public=True).count() == 1
    b = actions.do_create_article(cast.ws, title="二つ目", brand=cast.brand)
    actions.do_set_status(b, ArticleStatus.PUBLISHED, actor=cast.manager)
    assert Conversation.objects.filter(channel_account=x_account).count() == 1  # one "own posts" thread


def test_no_tips_when_posting_is_off_or_for_another_workspaces_accounts(cast, x_account):
    a = actions.do_create_article(cast.ws, title="off", brand=cast.brand)
    actions.do_set_status(a, ArticleStatus.PUBLISHED, actor=cast.manager)
    assert not SocialPost.objects.exists()
    assert actions.social_accounts(a) == [x_account]


# -- start-up ---------------------------------------------------------------------------------


def test_warming_builds_the_indexes_before_the_first_search(cast):
    actions.do_create_article(cast.ws, title="返品の方法", status=ArticleStatus.PUBLISHED)
    resolved(cast, "領収書がほしい", "マイページから出せます。")
    actions.do_index_resolved_conversations()
    assert not queries._indexes
    tasks.warm_indexes()
    assert {("a", cast.ws.pk), ("c", cast.ws.pk)} <= set(queries._indexes)
    index = queries._indexes[("a", cast.ws.pk)][1]
    assert queries.search_index(cast.ws.pk) is index and index._lexical is not None  # postings built


def test_query_embeddings_are_cached(cast, monkeypatch):
    from madoguchi.text import embeddings

    embedder = embeddings.get_embedder()
    calls = []
    original = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda texts, kind="passage": calls.append(texts) or original(texts, kind))
    queries.query_vector("返品したい")
    queries.query_vector("返品したい")
    assert calls == [["返品したい"]]


def test_an_approved_tip_is_posted_on_x_as_a_standalone_post(cast, client_for):
    """End to end through the outbox and the X adapter, against the local X fake."""
    from madoguchi.connectors.models import ChannelAccount
    from madoguchi.connectors.x.fake import FakeX
    from madoguchi.inbox.tasks import deliver_outbox

    fake = FakeX().start()
    try:
        config, secrets = fake.account_settings()
        account = ChannelAccount.objects.create(
            workspace=cast.ws, brand=cast.brand, kind="x", name="@AcmeSupport", handle="AcmeSupport", config=config, secrets=secrets
        )
        actions.do_set_social_posting(cast.brand, "auto")
        a = actions.do_create_article(cast.ws, title="返品は到着から30日以内に申し込めます", body="マイページから。", brand=cast.brand)
        actions.do_set_status(a, ArticleStatus.PUBLISHED, actor=cast.manager)
        post = SocialPost.objects.get(article=a, account=account)
        assert deliver_outbox.call(Outbox.objects.get(message_id=post.message_id).pk) == "sent"
        [tweet] = fake.posted
        assert tweet["in_reply_to_tweet_id"] in ("", None) and tweet["text"].startswith("返品は到着から30日以内")
        assert tweet["text"].endswith(f"/help/a/{a.pk}/")
    finally:
        fake.stop()


def test_a_tip_on_mastodon_is_public_and_mentions_nobody(cast):
    from madoguchi.connectors.mastodon.fake import FakeMastodon
    from madoguchi.connectors.models import ChannelAccount
    from madoguchi.inbox.tasks import deliver_outbox

    fake = FakeMastodon().start()
    try:
        config, secrets = fake.account_settings()
        account = ChannelAccount.objects.create(
            workspace=cast.ws, brand=cast.brand, kind="mastodon", name="@acme", handle="acme", config=config, secrets=secrets
        )
        actions.do_set_social_posting(cast.brand, "auto")
        a = actions.do_create_article(cast.ws, title="営業時間は平日9時から18時です", brand=cast.brand)
        actions.do_set_status(a, ArticleStatus.PUBLISHED, actor=cast.manager)
        post = SocialPost.objects.get(article=a, account=account)
        assert deliver_outbox.call(Outbox.objects.get(message_id=post.message_id).pk) == "sent"
        [status] = fake.posted
        assert status["visibility"] == "public" and not status["in_reply_to_id"]
        assert status["status"].startswith("営業時間は平日9時から18時です") and "@" not in status["status"]
    finally:
        fake.stop()


@pytest.mark.parametrize(("argv", "warms"), [(["madoguchi", "serve"], True), (["madoguchi", "worker"], True), (["madoguchi", "migrate"], False), (["pytest"], False)])
def test_serve_and_worker_warm_the_indexes_in_the_background(monkeypatch, argv, warms):
    import sys
    import threading

    from django.apps import apps

    started = []

    class Timer:
        def __init__(self, delay, target):
            self.target, self.daemon = target, False

        def start(self):
            started.append((self.target, self.daemon))

    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(threading, "Timer", Timer)
    apps.get_app_config("kb").ready()
    assert started == ([(tasks.warm_in_background, True)] if warms else [])


def test_a_best_result_that_does_not_stand_out_from_the_corpus_is_no_good_result(cast):
    """With enough articles, a match is judged against the query's median cosine to all of them:
    a closest article that is no closer than the rest does not count as an answer."""
    topics = ["返品", "解約", "配送", "請求", "ログイン", "パスワード", "ポイント", "領収書", "障害", "営業時間"]
    for topic in topics:
        for kind in ("方法", "期限", "料金", "窓口"):
            actions.do_create_article(cast.ws, title=f"{topic}の{kind}", body=f"{topic}の{kind}のご案内。", status=ArticleStatus.PUBLISHED)
    tasks.embed_articles.call(cast.ws.pk)
    queries.search(cast.ws.pk, "ギフト包装はできますか", log="help")
    queries.search(cast.ws.pk, "返品の期限を教えて", log="help")
    assert SearchLog.objects.get(query="ギフト包装はできますか").no_good == 1
    assert SearchLog.objects.get(query="返品の期限を教えて").no_good == 0


def test_an_agent_looking_up_a_draft_is_not_a_search_without_answer(cast, client_for):
    actions.do_create_article(cast.ws, title="ギフト包装の料金", body="下書き中")  # a draft, not published
    client = client_for(cast.agent)
    client.get("/kb/", {"q": "ギフト包装"})  # the draft has the words: no gap to report
    client.get("/kb/", {"q": "ポイントの有効期限"})  # nothing at all: a gap
    assert list(SearchLog.objects.values_list("query", "source")) == [("ポイントの有効期限", "agent")]
