"""Articles: workflow, versions, import/export, Save as FAQ, background embedding, search."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from madoguchi.inbox import actions as inbox_actions
from madoguchi.kb import actions, queries
from madoguchi.kb.anonymize import anonymize
from madoguchi.kb.models import Article, ArticleStatus, ArticleVector, KbState
from madoguchi.kb.tasks import embed_articles

FIXTURE = Path(__file__).parent / "fixtures" / "faq.jsonl"
pytestmark = pytest.mark.django_db


def _import(cast) -> actions.ImportResult:
    return actions.do_import(cast.ws, actions.parse_rows(FIXTURE.read_bytes(), FIXTURE.name))


def test_an_agent_proposes_and_a_manager_publishes(cast):
    article = actions.do_create_article(cast.ws, title="返品について", body="30日以内", author=cast.agent)
    actions.do_set_status(article, ArticleStatus.REVIEW, actor=cast.agent)
    with pytest.raises(actions.KbError):
        actions.do_set_status(article, ArticleStatus.PUBLISHED, actor=cast.agent)
    actions.do_set_status(article, ArticleStatus.PUBLISHED, actor=cast.manager)
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED and article.reviewer == cast.manager
    with pytest.raises(actions.KbError):
        actions.do_set_status(article, ArticleStatus.REVIEW, actor=cast.manager)


def test_edits_keep_history_and_an_old_version_can_be_restored(cast):
    article = actions.do_create_article(cast.ws, title="Refunds", body="first text", author=cast.agent)
    actions.do_update_article(article, author=cast.manager, body="second text")
    actions.do_update_article(article, author=cast.manager, tags=["billing"])  # no new version
    assert [v.number for v in article.versions.all()] == [2, 1]
    actions.do_restore_version(article, 1, actor=cast.manager)
    article.refresh_from_db()
    assert article.body == "first text" and article.version == 3


def test_import_is_idempotent_on_external_id_and_lexical_search_works_at_once(cast):
    first = _import(cast)
    assert (first.created, first.errors) == (7, [])
    again = _import(cast)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 7)
    results = queries.search(cast.ws.pk, "返品できますか", limit=3)
    assert results[0].article.external_id == "ja-1"
    assert Article.objects.get(external_id="ja-1").category.parent.name == "注文"


def test_import_reports_bad_rows_and_keeps_the_good_ones(cast):
    data = (
        b'{"external_id": "ok", "title": "Fine", "body": "yes"}\n'
        b"not json\n"
        b'{"title": "no id"}\n'
        b'{"external_id": "empty", "title": ""}\n'
        b"[1, 2]\n"
    )
    result = actions.do_import(cast.ws, actions.parse_rows(data, "x.jsonl"))
    assert result.created == 1
    assert [line for line, _msg in result.errors] == [2, 3, 4, 5]


def test_csv_import_accepts_question_and_answer_columns(cast):
    data = "external_id,question,answer,category,language\nq1,送料はいくらですか,500円です,配送,ja\n".encode()
    result = actions.do_import(cast.ws, actions.parse_rows(data, "faq.csv"))
    assert result.created == 1
    assert Article.objects.get(external_id="q1").title == "送料はいくらですか"


def test_a_csv_saved_by_excel_in_shift_jis_is_imported(cast):
    data = "external_id,question,answer,category,language\nq1,送料はいくらですか,全国一律５００円です。,配送,ja\n".encode("cp932")
    result = actions.do_import(cast.ws, actions.parse_rows(data, "faq.csv"))
    assert (result.created, result.errors) == (1, [])
    assert Article.objects.get(external_id="q1").body == "全国一律５００円です。"


def test_a_csv_without_the_needed_columns_is_refused_once_with_the_columns_it_has(cast):
    data = "ID番号,質問,回答\n1,送料は？,500円です\n2,返品は？,14日以内\n".encode()
    result = actions.do_import(cast.ws, actions.parse_rows(data, "faq.csv"))
    assert result.created == 0 and len(result.errors) == 1
    line, message = result.errors[0]
    assert line == 1 and "ID番号, 質問, 回答" in message and "external_id" in message


def test_a_file_that_is_not_text_is_refused_with_one_error(cast):
    result = actions.do_import(cast.ws, actions.parse_rows(bytes(range(128, 256)) * 4, "faq.csv"))
    assert (result.created, len(result.errors)) == (0, 1)
    result = actions.do_import(cast.ws, actions.parse_rows("{}".encode("utf-16"), "faq.jsonl"))
    assert (result.created, len(result.errors)) == (0, 1)


def test_the_import_command_and_export_round_trip(cast, tmp_path, capsys):
    call_command("kb", "import", str(FIXTURE), workspace="Acme")
    out = tmp_path / "out.jsonl"
    call_command("kb", "export", str(out), workspace="Acme")
    assert "created 7" in capsys.readouterr().out
    again = actions.do_import(cast.ws, actions.parse_rows(out.read_bytes(), out.name))
    assert again.unchanged == 7


def test_workspaces_do_not_see_each_others_articles(cast):
    _import(cast)
    assert queries.search(cast.ws_b.pk, "返品") == []


def test_anonymize_removes_contact_details():
    text = "佐藤様、注文番号: AB-123456 の件です。連絡先は yui@example.com / 090-1234-5678、@yui_s まで。Dear John Smith, thanks"
    clean = anonymize(text, ["Yui Sato"])
    for secret in ("佐藤", "AB-123456", "yui@example.com", "090-1234-5678", "@yui_s", "John"):
        assert secret not in clean
    assert "お客様" in anonymize("お客様のご注文")


def test_save_as_faq_drafts_an_anonymized_article_linked_to_the_conversation(cast):
    conv = cast.inbound("注文番号 12345678 を返品したいです。yui@example.com", name="Yui Sato").message.conversation
    inbox_actions.do_reply(conv, author=cast.agent, text="Yui Sato様、マイページから返品できます。")
    article = actions.do_save_conversation_as_faq(conv, actor=cast.agent)
    assert article.status == ArticleStatus.DRAFT and article.source_conversation_id == conv.pk
    assert "12345678" not in article.title and "yui@example.com" not in article.title
    assert "Yui" not in article.body and "マイページから返品できます" in article.body


def test_a_japanese_faq_draft_gets_japanese_placeholders(cast):
    conv = cast.inbound("注文番号 A-123456 の商品を返品したいです", name="Yui Sato").message.conversation
    inbox_actions.do_reply(conv, author=cast.agent, text="ご注文番号 A-123456 の返品を承りました。090-1234-5678 までお電話ください。")
    article = actions.do_save_conversation_as_faq(conv, actor=cast.agent)
    assert "［注文番号］" in article.title and "［電話番号］" in article.body
    assert "[" not in article.title + article.body and article.language == "ja"
    assert anonymize("Order number 12345 ships today.", lang="en") == "[order number] ships today."


def test_background_embedding_records_progress_and_feeds_dense_search(cast):
    _import(cast)
    result = embed_articles.call(cast.ws.pk)
    assert result == {"embedded": 7, "total": 7}
    state = KbState.objects.get(workspace=cast.ws)
    assert (state.embed_done, state.embed_total) == (7, 7)
    assert ArticleVector.objects.count() == 7
    assert embed_articles.call(cast.ws.pk)["embedded"] == 0  # nothing stale
    hits = queries.search_index(cast.ws.pk).search("パスワード忘れ", mode="dense")
    assert hits and hits[0].dense > 0


def test_publishing_updates_search_without_rebuilding_from_scratch(cast):
    _import(cast)
    queries.search(cast.ws.pk, "返品")
    article = actions.do_create_article(cast.ws, title="ポイントの有効期限", body="1年です", status=ArticleStatus.PUBLISHED)
    assert queries.search(cast.ws.pk, "ポイント")[0].article == article
    actions.do_set_status(article, ArticleStatus.ARCHIVED, actor=cast.manager)
    assert all(r.article != article for r in queries.search(cast.ws.pk, "ポイント"))


def test_an_import_queues_one_embedding_pass_not_one_per_row(cast, django_capture_on_commit_callbacks, monkeypatch):
    from madoguchi.kb import tasks

    queued = []
    monkeypatch.setattr(tasks, "enqueue_embedding", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        _import(cast)
    assert queued == [cast.ws.pk]
    assert KbState.objects.get(workspace=cast.ws).index_version == 1
