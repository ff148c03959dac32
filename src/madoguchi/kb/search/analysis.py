"""Text analysis for lexical search: Japanese through a morphological analyser, English stemmed.

Japanese: NFKC and case folding, then fugashi (MeCab) with the unidic-lite dictionary that ships
in its wheel; each word becomes its dictionary lemma (持っ → 持つ, 申し込み → 申し込む) folded to
katakana by `text.normalize`, and function words (particles, auxiliary verbs, symbols, light
verbs such as する/いる/ある) are dropped. Words are not split into bigrams: whole words keep
BM25's statistics sharp, and the analyser finds 返品 and 解約 as words.

English (and Latin-script words inside Japanese text): lower-cased words minus stop words,
Snowball (Porter 2) stems, so "deleting accounts" matches "delete account".
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata

import snowballstemmer

from madoguchi.text.normalize import hira_to_kata, normalize, search_tokens

_LATIN_RE = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
_HAS_CJK = re.compile(r"[\u3041-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")

# Parts of speech that carry meaning (unidic pos1); everything else is grammar or punctuation.
_CONTENT_POS = {"名詞", "動詞", "形容詞", "形状詞", "副詞", "接頭辞", "接尾辞", "代名詞", "感動詞"}
# Light words that appear in almost every question and carry no topic.
_JA_STOP = {
    normalize(w)
    for w in (
        "為る 居る 有る 成る 出来る 言う 思う 良い 無い 宜しい 下さい 頂く 致す 御 此れ 其れ 何 方 事 物 所"
        " 何処 如何 どう こう そう ため 等 よう 的 様 さん 知る 教える 分かる 欲しい たい 貰う 来る 行く"
    ).split()
}
_EN_STOP = set(
    "a an and are as at be been but by can could did do does for from had has have how i if in into is it its"
    " me my of on or our should so than that the their them then there these they this to was we were what"
    " when where which who why will with would you your yours am any some just about get got want need".split()
)

_local = threading.local()


def _tagger():  # fugashi taggers are not thread-safe: one per thread
    tagger = getattr(_local, "tagger", None)
    if tagger is None:
        import fugashi

        tagger = _local.tagger = fugashi.Tagger()
    return tagger


@functools.lru_cache(maxsize=50_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


@functools.lru_cache(maxsize=1)
def _stemmer():
    return snowballstemmer.stemmer("english")


def _english(text: str) -> list[str]:
    return [_stem(w) for w in _LATIN_RE.findall(text) if w not in _EN_STOP]


def _japanese(text: str) -> list[str]:
    tokens: list[str] = []
    for word in _tagger()(text):
        surface = word.surface
        if not surface.strip():
            continue
        if surface.isascii():
            tokens.extend(_english(surface))
            continue
        feature = word.feature
        pos1 = feature.pos1
        if pos1 not in _CONTENT_POS:
            continue
        lemma = feature.lemma or surface
        if lemma == "*" or not lemma:
            lemma = surface
        # unidic writes loanwords as "バス-bus": the katakana form is what users type
        lemma = hira_to_kata(lemma.split("-", 1)[0])
        if lemma in _JA_STOP or (feature.pos2 == "非自立可能" and pos1 in ("動詞", "形容詞")):
            continue
        if len(lemma) == 1 and not _HAS_CJK.match(lemma):
            continue
        tokens.append(lemma)
    return tokens


def analyze(text: str) -> list[str]:
    """Index/query terms for `text` in any mix of Japanese and English."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if _HAS_CJK.search(text):
        # The analyser reads hiragana as grammar, so it sees the text before kana folding.
        return _japanese(text)
    return _english(text)


PASSAGE_CHARS = 120


def index_terms(text: str) -> list[str]:
    """Analyser words plus "#"-prefixed character bigrams (`text.normalize.search_tokens`).

    The bigrams are a safety net for words the dictionary splits differently in the question
    and the article (compounds, names, new product words); they count less than whole words.
    """
    return analyze(text) + ["#" + t for t in search_tokens(text)]


def passage_text(title: str, body: str, max_chars: int = PASSAGE_CHARS) -> str:
    """The question plus the start of the answer: the second text embedded for an article.

    Embedding cost grows with length and the question and first sentences carry the topic, so
    long answers are cut (the whole text stays in BM25). See `engine.document_vectors`.
    """
    body = re.sub(r"\s+", " ", body).strip()
    return f"{title}\n{body[:max_chars]}" if body and max_chars > 0 else title
