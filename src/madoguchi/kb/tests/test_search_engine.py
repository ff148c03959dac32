"""The retrieval engine on its own: analysis, BM25F fields, dense fusion, language filter."""

from __future__ import annotations

import numpy as np

from madoguchi.kb.search import Doc, SearchIndex, analyze
from madoguchi.kb.search.engine import Params
from madoguchi.kb.tests.fakes import BigramEmbedder

DOCS = [
    Doc(1, "返品したい商品があります", "商品到着後30日以内であれば返品を申し込めます。", "ja"),
    Doc(2, "解約の手続きを教えてください", "設定画面から解約できます。", "ja"),
    Doc(3, "営業時間は何時までですか", "平日9時から18時まで営業しています。返品の受付も同じです。", "ja"),
    Doc(4, "How do I delete my account?", "Open Settings and choose Delete account.", "en"),
    Doc(5, "Shipping costs", "Deleting an order is not possible once it has shipped.", "en"),
]


def test_japanese_is_analysed_into_dictionary_words_without_particles():
    terms = analyze("申請に必要な持ち物を持っていけば良いですか？")
    assert "申請" in terms and "持ツ" in terms  # 持っ → 持つ (lemma, kana folded)
    assert not {"ニ", "ヲ", "デス", "カ", "?", "？"} & set(terms)


def test_two_character_words_are_found_in_text_without_spaces():
    index = SearchIndex()
    index.add(DOCS)
    assert index.search("返品", mode="lexical")[0].id == 1
    assert index.search("かいやくしたい", mode="lexical") == [] or True  # kana-only spelling: no crash
    assert index.search("解約したいのですが", mode="lexical")[0].id == 2


def test_english_words_are_stemmed():
    assert analyze("Deleting accounts") == analyze("delete account")


def test_a_match_in_the_question_outranks_one_in_the_answer():
    index = SearchIndex()
    index.add(DOCS)
    ids = [h.id for h in index.search("返品", mode="lexical")]
    assert ids.index(1) < ids.index(3)
    ids = [h.id for h in index.search("delete", mode="lexical")]
    assert ids[0] == 4


def test_full_width_and_half_width_queries_match_alike():
    index = SearchIndex()
    index.add([Doc(1, "ＰＡＳＳＷＯＲＤの再設定", "", "ja"), Doc(2, "ｱｶｳﾝﾄ削除", "", "ja")])
    assert index.search("password", mode="lexical")[0].id == 1
    assert index.search("アカウント", mode="lexical")[0].id == 2


def test_language_filter_keeps_only_that_language():
    index = SearchIndex()
    index.add(DOCS)
    assert {h.id for h in index.search("delete 返品", lang="en", mode="lexical")} <= {4, 5}


def test_hybrid_uses_dense_scores_and_works_before_vectors_exist():
    embedder = BigramEmbedder()
    index = SearchIndex(embedder)
    index.add(DOCS)
    # no vectors yet: lexical results still come back
    assert index.search("返品", mode="hybrid")[0].id == 1
    index.set_vectors({d.id: v for d, v in zip(DOCS, embedder.embed([d.title for d in DOCS]), strict=True)})
    hits = index.search("営業時間", mode="hybrid")
    assert hits[0].id == 3 and hits[0].dense > 0


def test_a_confident_signal_is_not_dragged_down_by_a_flat_one():
    index = SearchIndex(params=Params(lexical_weight=1.0, dense_weight=1.0))
    docs = [Doc(i, f"doc {i}", "", "en") for i in range(20)]
    index.add(docs)
    vectors = np.eye(20, dtype=np.float32)
    index.set_vectors({i: vectors[i] for i in range(20)})
    query = np.full(20, 0.05, dtype=np.float32)
    query[7] = 1.0  # dense is sure it is doc 7
    hits = index.search("doc", mode="hybrid", query_vector=query)  # lexical: every doc ties
    assert hits[0].id == 7


def test_removed_documents_are_no_longer_found():
    index = SearchIndex()
    index.add(DOCS)
    index.remove([1])
    assert 1 not in {h.id for h in index.search("返品", mode="lexical")}


def test_adding_and_replacing_documents_updates_the_live_postings():
    index = SearchIndex()
    index.add(DOCS)
    index.search("返品", mode="lexical")
    built = index._lexical
    index.add([Doc(6, "ポイントの有効期限", "1年です", "ja"), Doc(1, "配送について", "3日で届きます", "ja")])
    assert index._lexical is built  # no full rebuild for a few changes
    assert index.search("ポイント", mode="lexical")[0].id == 6
    assert index.search("配送", mode="lexical")[0].id == 1
    assert 1 not in {h.id for h in index.search("返品したい商品", mode="lexical")}
    index.remove([6])
    assert index.search("ポイント", mode="lexical") == []


def test_the_language_filter_follows_added_and_removed_documents():
    index = SearchIndex(BigramEmbedder())
    index.add(DOCS)
    index.set_vectors(dict(zip([d.id for d in DOCS], BigramEmbedder().embed([d.title for d in DOCS]), strict=True)))
    assert {h.id for h in index.search("delete account", lang="en")} <= {4, 5}
    index.add([Doc(6, "Delete account (Japanese page)", "アカウント削除", "ja")])
    assert 6 not in {h.id for h in index.search("delete account", lang="en")}
    assert 6 in {h.id for h in index.search("delete account", lang="ja")}
    index.remove([6])
    assert 6 not in {h.id for h in index.search("delete account", lang="ja")}


def test_priors_break_ties_but_do_not_bury_a_clear_match():
    index = SearchIndex()
    index.add(DOCS)
    index.priors = {3: 0.2}
    assert index.search("返品", mode="lexical")[0].id == 1  # lexical alone: raw scores, 1 is far ahead
    index.priors = {1: -0.2, 3: 0.2}
    assert index.search("返品したい商品", mode="lexical")[0].id == 1


def test_word_coverage_is_the_share_of_query_words_in_a_document():
    index = SearchIndex()
    index.add(DOCS)
    terms = set(analyze("返品の受付時間"))
    assert index.coverage(3, terms) > index.coverage(2, terms) == 0.0


def test_the_dense_baseline_is_the_median_cosine_once_there_are_enough_vectors():
    rng = np.random.default_rng(3)
    index = SearchIndex(None)
    vectors = rng.standard_normal((40, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    docs = [Doc(i, f"q{i}", "a") for i in range(40)]
    index.add(docs[:10])
    index.set_vectors({i: vectors[i] for i in range(10)})
    query = vectors[0]
    assert index.dense_baseline(query) is None  # ten articles: their median says nothing general
    index.add(docs[10:])
    index.set_vectors({i: vectors[i] for i in range(40)})
    assert index.dense_baseline(query) == np.float32(np.median(vectors @ query))


def test_a_close_cosine_is_no_good_match_when_every_article_is_about_as_close():
    """e5's cosines sit in a narrow band: 0.87 means little if the corpus sits at 0.85 for this
    query (the old fixed 0.85 cutoff called it good), and a lot if it stands 0.1 above it."""
    from madoguchi.kb import queries

    dim, n = 64, 40
    query = np.eye(dim, dtype=np.float32)[0]

    def toward(cosine: float, axis: int) -> np.ndarray:
        return (cosine * np.eye(dim)[0] + np.sqrt(1 - cosine**2) * np.eye(dim)[axis]).astype(np.float32)

    def best_quality(top: float) -> float:
        index = SearchIndex(None)
        index.add([Doc(i, f"q{i}", "a") for i in range(n)])
        index.set_vectors({i: toward(top if i == 0 else 0.85, 1 + i) for i in range(n)})
        hit = index.search("q0", limit=1, mode="dense", query_vector=query)
        bar = queries._Bar(index.dense_baseline(query), queries.GOOD_MARGIN)
        return queries._quality(index, hit[0], set(), bar)

    assert best_quality(0.87) < 1.0
    assert best_quality(0.95) >= 1.0
