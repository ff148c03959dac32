"""Lexical BM25F, dense cosine and their fusion over one set of documents.

Lexical: BM25F (Robertson & Zaragoza) over two fields; the title/question counts more than the
body/answer, because a customer's words look like the question far more than like the answer.
Each posting stores its whole term contribution without the idf, so a query is a few numpy
additions per query term: 10,000 articles search in about a millisecond.

Dense: cosine between the query embedding and each article's vector, the normalized mean of two
passage embeddings: the question alone, and the question with the start of the answer
(`document_vectors`). On both evaluation sets the mean beat either text alone. Articles whose
vector is not computed yet simply have no dense score: lexical search works the moment they are
added.

Fusion: each signal's scores over its top candidates are standardized (z-scores), so a signal
whose best document stands far above the rest says so, and a flat, unsure list barely moves the
ranking. Plain reciprocal-rank fusion throws that away and lets a weak signal pull a confident
one down (the issue measured it making English worse).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from madoguchi.kb.search.analysis import PASSAGE_CHARS, index_terms, passage_text

Mode = Literal["lexical", "dense", "hybrid"]


def vector_key(embedder) -> str:
    """What stored vectors are keyed by: the model and the recipe, so a change of either re-embeds."""
    return f"{embedder.name}:title+answer{PASSAGE_CHARS}-mean"


def document_vectors(embedder, docs: list[tuple[str, str]]) -> np.ndarray:
    """One L2-normalized vector per (title, body): the mean of the title's and the passage's."""
    if not docs:
        return np.zeros((0, getattr(embedder, "dim", 0)), dtype=np.float32)
    titles = embedder.embed([t for t, _b in docs], kind="passage")
    passages = embedder.embed([passage_text(t, b) for t, b in docs], kind="passage")
    return mean_vectors(titles, passages)


def mean_vectors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    both = a + b
    norms = np.linalg.norm(both, axis=1, keepdims=True)
    return (both / np.where(norms == 0, 1, norms)).astype(np.float32)


# dense_baseline: below this many vectors the median is the few articles themselves, not
# "unrelated"; above the sample size a sample is as good and cheaper.
BASELINE_MIN_VECTORS = 30
BASELINE_SAMPLE = 1024


@dataclass(frozen=True)
class Doc:
    """One searchable article: its id, its question/title, its answer/body and its language."""

    id: int | str
    title: str
    body: str
    lang: str = ""


@dataclass
class Hit:
    id: int | str
    score: float
    lexical: float = 0.0
    dense: float = 0.0


@dataclass
class _Entry:
    doc: Doc
    title_tf: Counter
    body_tf: Counter
    title_len: int
    body_len: int


@dataclass
class Params:
    """Ranking knobs, chosen on general grounds and checked on both evaluation sets."""

    k1: float = 1.2
    title_weight: float = 2.0
    body_weight: float = 1.0
    title_b: float = 0.5
    body_b: float = 0.75
    # Character bigrams count this much relative to whole words (0 turns them off).
    bigram_weight: float = 0.3
    # Bigrams found in more than this share of documents are skipped at query time: their idf
    # is near zero, and their long postings were most of the ranking time at 10,000 articles.
    bigram_max_df: float = 1.0
    # How far each standardized signal counts in the fusion.
    lexical_weight: float = 1.0
    dense_weight: float = 1.0
    candidates: int = 100
    fusion: Literal["z", "rrf"] = "z"


@dataclass
class _Lexical:
    """Postings over slots; a replaced or removed document's slot is masked, not rewritten."""

    ids: list  # slot → document id (None once removed)
    avg_t: float = 1.0
    avg_b: float = 1.0
    postings: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    slot_of: dict = field(default_factory=dict)
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    changed: int = 0  # slots added or masked since the last full build


class SearchIndex:
    """An in-memory index of documents; add/remove are cheap, the lexical part is rebuilt lazily."""

    def __init__(self, embedder=None, params: Params | None = None) -> None:
        self.embedder = embedder
        self.params = params or Params()
        self._entries: dict[int | str, _Entry] = {}
        self._vectors: dict[int | str, np.ndarray] = {}
        self._lexical: _Lexical | None = None
        self._dense: tuple[list, np.ndarray] | None = None
        # Per-document additive score (in z-score units) learned from use: helpful votes and
        # agents inserting the article into replies (kb.queries.article_priors).
        self.priors: dict = {}
        self._masks: dict[tuple, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._entries)

    # -- building ---------------------------------------------------------------------------

    def add(self, docs: list[Doc], tokens: list[tuple[list[str], list[str]]] | None = None) -> None:
        """Add or replace documents; `tokens` (title, body terms per doc) skips re-analysis."""
        lex = self._lexical
        for i, doc in enumerate(docs):
            title_terms, body_terms = tokens[i] if tokens is not None else (index_terms(doc.title), index_terms(doc.body))
            entry = _Entry(doc, Counter(title_terms), Counter(body_terms), len(title_terms), len(body_terms))
            self._entries[doc.id] = entry
            if lex is not None:
                self._mask(lex, doc.id)
                self._append(lex, entry)
        # A few changes go into the live postings (publishing one article costs milliseconds);
        # after many, one full build refreshes average lengths and drops masked slots.
        if lex is not None and lex.changed > max(50, len(lex.ids) // 5):
            self._lexical = None
        self._dense = None
        self._masks = {}

    def remove(self, ids: list) -> None:
        lex = self._lexical
        for doc_id in ids:
            self._entries.pop(doc_id, None)
            self._vectors.pop(doc_id, None)
            if lex is not None:
                self._mask(lex, doc_id)
        self._dense = None
        self._masks = {}

    @staticmethod
    def _mask(lex: _Lexical, doc_id) -> None:
        slot = lex.slot_of.pop(doc_id, None)
        if slot is not None:
            lex.alive[slot] = False
            lex.ids[slot] = None
            lex.changed += 1

    def _values(self, lex: _Lexical, e: _Entry) -> dict[str, float]:
        """Each term's BM25F contribution for one document (without the idf)."""
        p = self.params
        norm_t = 1 - p.title_b + p.title_b * e.title_len / lex.avg_t
        norm_b = 1 - p.body_b + p.body_b * e.body_len / lex.avg_b
        out = {}
        for term in e.title_tf.keys() | e.body_tf.keys():
            tf = p.title_weight * e.title_tf.get(term, 0) / norm_t + p.body_weight * e.body_tf.get(term, 0) / norm_b
            out[term] = tf * (p.k1 + 1) / (p.k1 + tf)
        return out

    def _append(self, lex: _Lexical, e: _Entry) -> None:
        slot = len(lex.ids)
        lex.ids.append(e.doc.id)
        lex.slot_of[e.doc.id] = slot
        lex.alive = np.append(lex.alive, True)
        lex.changed += 1
        for term, value in self._values(lex, e).items():
            docs, vals = lex.postings.get(term, (np.zeros(0, np.int32), np.zeros(0, np.float32)))
            lex.postings[term] = (np.append(docs, np.int32(slot)), np.append(vals, np.float32(value)))

    def set_vectors(self, vectors: dict) -> None:
        """Attach passage embeddings (L2-normalized rows) to documents by id."""
        for doc_id, vec in vectors.items():
            self._vectors[doc_id] = np.asarray(vec, dtype=np.float32)
        self._dense = None
        self._masks = {}

    def coverage(self, doc_id, query_terms: set[str]) -> float:
        """The share of the query's words (analyser terms, not bigrams) found in the document:
        a corpus-independent sign that a match is real (BM25 scores depend on corpus size)."""
        entry = self._entries.get(doc_id)
        words = {t for t in query_terms if not t.startswith("#")}
        if entry is None or not words:
            return 0.0
        return sum(1 for t in words if t in entry.title_tf or t in entry.body_tf) / len(words)

    def has_vectors(self) -> bool:
        return bool(self._vectors)

    def missing_vectors(self) -> list[Doc]:
        return [e.doc for doc_id, e in self._entries.items() if doc_id not in self._vectors]

    def _build_lexical(self) -> _Lexical:
        entries = list(self._entries.values())
        n = len(entries)
        lex = _Lexical(ids=[e.doc.id for e in entries], alive=np.ones(n, dtype=bool))
        lex.slot_of = {doc_id: i for i, doc_id in enumerate(lex.ids)}
        if not n:
            return lex
        lex.avg_t = max(sum(e.title_len for e in entries) / n, 1.0)
        lex.avg_b = max(sum(e.body_len for e in entries) / n, 1.0)
        rows: dict[str, tuple[list[int], list[float]]] = {}
        for i, e in enumerate(entries):
            for term, value in self._values(lex, e).items():
                docs, vals = rows.setdefault(term, ([], []))
                docs.append(i)
                vals.append(value)
        for term, (docs, vals) in rows.items():
            lex.postings[term] = (np.asarray(docs, dtype=np.int32), np.asarray(vals, dtype=np.float32))
        return lex

    def _build_dense(self) -> tuple[list, np.ndarray]:
        ids = [doc_id for doc_id in self._entries if doc_id in self._vectors]
        if not ids:
            return ids, np.zeros((0, 1), dtype=np.float32)
        return ids, np.stack([self._vectors[i] for i in ids])

    # -- searching --------------------------------------------------------------------------

    def lexical_scores(self, query: str) -> tuple[list, np.ndarray]:
        if self._lexical is None:
            self._lexical = self._build_lexical()
        lex = self._lexical
        n = len(lex.ids)
        scores = np.zeros(n, dtype=np.float32)
        for term, qtf in Counter(index_terms(query)).items():
            posting = lex.postings.get(term)
            if posting is not None:
                df = len(posting[0])  # masked slots still count until the next full build
                if term[0] == "#" and df > self.params.bigram_max_df * n:
                    continue
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                weight = self.params.bigram_weight if term[0] == "#" else 1.0
                scores[posting[0]] += weight * idf * posting[1] * (1 + 0.5 * (qtf - 1))
        if lex.changed:
            scores[~lex.alive] = 0.0
        return lex.ids, scores

    def dense_scores(self, query: str, query_vector: np.ndarray | None = None) -> tuple[list, np.ndarray]:
        if self._dense is None:
            self._dense = self._build_dense()
        ids, matrix = self._dense
        if not ids or (self.embedder is None and query_vector is None):
            return [], np.zeros(0, dtype=np.float32)
        if query_vector is None:
            query_vector = self.embedder.embed([query], kind="query")[0]
        # einsum, not `@`: a matrix-vector product through OpenBLAS starts its thread pool, and on
        # a busy machine waiting for those threads took 15-30 ms where one core needs about 1 ms
        # for 10,000 × 384 (bench/README.md, kb section).
        return ids, np.einsum("ij,j->i", matrix, np.asarray(query_vector, dtype=np.float32))

    def dense_baseline(self, query_vector: np.ndarray) -> float | None:
        """The median cosine between this query and the articles: what "unrelated" looks like
        for this query, model and corpus. e5's cosines sit in a narrow band (unrelated texts near
        0.83, paraphrases near 0.92), so whether a match stands out says more than its cosine.
        None when there are too few vectors for a median to mean anything."""
        if self._dense is None:
            self._dense = self._build_dense()
        ids, matrix = self._dense
        if len(ids) < BASELINE_MIN_VECTORS:
            return None
        step = max(1, len(ids) // BASELINE_SAMPLE)  # evenly spaced rows: 0.1 ms at 10,000 articles
        return float(np.median(np.einsum("ij,j->i", matrix[::step], np.asarray(query_vector, dtype=np.float32))))

    def search(
        self,
        query: str,
        limit: int = 10,
        *,
        lang: str = "",
        mode: Mode = "hybrid",
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """The best `limit` documents for `query`, best first (optionally only one language)."""
        if not query.strip() or not self._entries:
            return []
        lists: list[tuple[str, list, np.ndarray]] = []
        if mode in ("lexical", "hybrid"):
            ids, scores = self.lexical_scores(query)
            lists.append(("lexical", ids, scores))
        if mode in ("dense", "hybrid"):
            ids, scores = self.dense_scores(query, query_vector)
            if len(ids):
                lists.append(("dense", ids, scores))
        return self._fuse(lists, limit, lang)

    def _lang_mask(self, ids: list, lang: str) -> np.ndarray:
        """Which slots of a list hold documents in `lang` (or of no language), cached per list."""
        key = (id(ids), len(ids), lang)
        mask = self._masks.get(key)
        if mask is None:
            entries = self._entries
            mask = np.fromiter(
                (i is not None and i in entries and entries[i].doc.lang in (lang, "") for i in ids), dtype=bool, count=len(ids)
            )
            if len(self._masks) > 16:
                self._masks.clear()
            self._masks[key] = mask
        return mask

    def _fuse(self, lists: list[tuple[str, list, np.ndarray]], limit: int, lang: str = "") -> list[Hit]:
        p = self.params
        fused: dict = {}
        raw: dict[str, dict] = {}
        for name, ids, scores in lists:
            if lang:
                scores = np.where(self._lang_mask(ids, lang), scores, -np.inf)
            k = min(p.candidates, len(ids))
            top = np.argpartition(-scores, k - 1)[:k] if k < len(ids) else np.arange(len(ids))
            top = top[np.isfinite(scores[top])]
            if name == "lexical":
                top = top[scores[top] > 0]
            if not len(top):
                continue
            top_scores = scores[top].astype(np.float64)
            raw[name] = {ids[i]: float(s) for i, s in zip(top, top_scores, strict=True)}
            weight = p.lexical_weight if name == "lexical" else p.dense_weight
            if len(lists) == 1:
                contrib = top_scores
                floor = 0.0
            elif p.fusion == "rrf":
                order = np.argsort(-top_scores)
                contrib = np.empty_like(top_scores)
                contrib[order] = 1.0 / (60 + np.arange(1, len(order) + 1))
                floor = 0.0
                weight = 1.0
            else:
                std = top_scores.std() or 1.0
                contrib = (top_scores - top_scores.mean()) / std
                floor = float(contrib.min())
            for i, c in zip(top, contrib, strict=True):
                fused.setdefault(ids[i], {})[name] = (weight * c, weight * floor)
            raw.setdefault(name + ":floor", {})["v"] = weight * floor
        names = [n for n in raw if not n.endswith(":floor")]
        hits = []
        for doc_id, parts in fused.items():
            score = 0.0
            for name in names:
                if name in parts:
                    score += parts[name][0]
                else:
                    score += raw[name + ":floor"]["v"]
            score += self.priors.get(doc_id, 0.0)
            hits.append(
                Hit(doc_id, score, raw.get("lexical", {}).get(doc_id, 0.0), raw.get("dense", {}).get(doc_id, 0.0))
            )
        hits.sort(key=lambda h: -h.score)
        return hits[:limit]
