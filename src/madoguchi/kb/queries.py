"""Reads for the knowledge base: access checks, search through the engine, suggestions, snippets.

Search index lifetime: each process keeps one `SearchIndex` per workspace in memory, tagged with
the workspace's `KbState.index_version` and a cheap aggregate of its published articles. When
either changes, the next search in any process brings its index up to date incrementally: only
new or edited articles are analysed and appended to the postings, removed ones are masked, and
vectors are loaded only for articles that lack one (the background task bumps the counter as it
stores them). This needs no index server and works with several web processes on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Count, F, Max, Prefetch, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from madoguchi.accounts.models import User
from madoguchi.accounts.queries import workspace_id_of
from madoguchi.kb.models import (
    Article,
    ArticleDay,
    ArticleStatus,
    ArticleVector,
    ArticleVersion,
    ArticleVote,
    Category,
    ConversationDoc,
    ImportJob,
    KbState,
    SearchLog,
)
from madoguchi.kb.search import Doc, Hit, SearchIndex, analyze, index_terms, passage_text
from madoguchi.kb.search.engine import vector_key
from madoguchi.text.embeddings import get_embedder

_lock = threading.Lock()
# Keyed by ("a", workspace) for articles and ("c", workspace) for resolved conversations.
_indexes: dict[tuple[str, int], tuple[tuple, SearchIndex]] = {}
_terms: dict[tuple[str, int, int], tuple[list[str], list[str]]] = {}
_versions: dict[tuple[str, int], dict[int, int]] = {}  # {doc id: version} in each index
_query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
_qlock = threading.Lock()
QUERY_CACHE_SIZE = 4096


def access_article(user: User, article_id: int) -> Article:
    """The article if it is in the user's workspace, else 404."""
    article = Article.objects.select_related("category").filter(pk=article_id, workspace_id=workspace_id_of(user)).first()
    if article is None:
        raise Http404
    return article


def access_import(user: User, job_id: int) -> ImportJob:
    """An import job of the user's workspace (without its file), else 404."""
    job = ImportJob.objects.defer("data").filter(pk=job_id, workspace_id=workspace_id_of(user)).first()
    if job is None:
        raise Http404
    return job


def recent_imports(workspace_id: int, limit: int = 5) -> list[ImportJob]:
    return list(ImportJob.objects.defer("data", "errors").filter(workspace_id=workspace_id).order_by("-created_at", "-id")[:limit])


def articles_for(user: User, status: str = "", q: str = "") -> QuerySet[Article]:
    """The articles of the user's workspace, last changed first, in one status and containing `q` if given."""
    qs = Article.objects.filter(workspace_id=workspace_id_of(user)).select_related("category").order_by("-updated_at", "-pk")
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(Q(title__icontains=q) | Q(body__icontains=q))
    return qs


AGENT_SEARCH_QUALITY = 0.5


def find_articles(user: User, q: str, *, status: str = "", limit: int = 50) -> list[Article]:
    """The knowledge base's own search for agents: articles in any status that contain `q`
    (a draft is found by the words of its title), then the published articles the search engine
    ranks for it that are not far off, best first."""
    found = list(articles_for(user, status=status, q=q)[:limit])
    if status not in ("", ArticleStatus.PUBLISHED):
        return found
    seen = {a.pk for a in found}
    # Counted for the managers' "searches with no good result" only when no article, draft or
    # not, has the words: an agent looking up the draft they are writing is not a gap.
    # Near misses are left out as in the suggestions panel; without a vector there is no bar.
    ranked = [
        r.article for r in search(workspace_id_of(user), q, limit=limit, log="" if found else "agent")
        if (r.quality >= AGENT_SEARCH_QUALITY or not r.checked) and r.article.pk not in seen
    ]
    return (found + ranked)[:limit]


def category_path(workspace_id: int) -> dict[int, str]:
    """Every category id of a workspace → "Parent > Child"."""
    cats = {c.pk: c for c in Category.objects.filter(workspace_id=workspace_id)}

    def path(leaf: Category) -> str:
        parts, seen = [], set()
        c: Category | None = leaf
        while c is not None and c.pk not in seen:
            seen.add(c.pk)
            parts.append(c.name)
            c = cats.get(c.parent_id) if c.parent_id else None
        return " > ".join(reversed(parts))

    return {pk: path(c) for pk, c in cats.items()}


def embedding_progress(workspace_id: int) -> tuple[int, int]:
    state = KbState.objects.filter(workspace_id=workspace_id).first()
    return (state.embed_done, state.embed_total) if state else (0, 0)


# -- the index -------------------------------------------------------------------------------


def _embedder_or_none():
    try:
        return get_embedder()
    except Exception:  # a broken model must never break lexical search
        return None


def query_vector(q: str) -> np.ndarray | None:
    """The query's embedding, from a per-process LRU cache (help-site visitors repeat queries,
    and the suggestions panel asks for articles and conversations with the same text)."""
    embedder = _embedder_or_none()
    if embedder is None:
        return None
    key = f"{embedder.name}\0{q}"
    with _qlock:
        vec = _query_vectors.get(key)
        if vec is not None:
            _query_vectors.move_to_end(key)
            return vec
    vec = embedder.embed([q], kind="query")[0]
    with _qlock:
        _query_vectors[key] = vec
        while len(_query_vectors) > QUERY_CACHE_SIZE:
            _query_vectors.popitem(last=False)
    return vec


def _refresh(key: tuple[str, int], version: tuple, rows: Iterable[tuple[int, int, str, str, str]], attach) -> SearchIndex:
    """Bring the cached index `key` up to date: analyse only new or changed documents."""
    with _lock:
        cached = _indexes.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        index = cached[1] if cached is not None else SearchIndex(None)
        known = _versions.setdefault(key, {})
        current = {}
        docs, tokens = [], []
        for pk, ver, title, body, lang in rows:
            current[pk] = ver
            if known.get(pk) == ver:
                continue
            if pk in known:
                _terms.pop((key[0], pk, known[pk]), None)
            terms = _terms.get((key[0], pk, ver)) or (index_terms(title), index_terms(body))
            _terms[(key[0], pk, ver)] = terms
            docs.append(Doc(pk, title, body, lang))
            tokens.append(terms)
        gone = [pk for pk in known if pk not in current]
        index.remove(gone + [d.id for d in docs if d.id in known])
        index.add(docs, tokens)
        for pk in gone:
            _terms.pop((key[0], pk, known[pk]), None)
        _versions[key] = current
        attach(index)
        _indexes[key] = (version, index)
        return index


def search_index(workspace_id: int) -> SearchIndex:
    """This process's index of the workspace's published articles, rebuilt if it is stale."""
    # The counter is bumped after commit; the aggregate also catches changes whose commit hook
    # has not run (and is one indexed query, far cheaper than a search).
    state = KbState.objects.filter(workspace_id=workspace_id).values_list("index_version", flat=True).first() or 0
    agg = Article.objects.filter(workspace_id=workspace_id, status=ArticleStatus.PUBLISHED).aggregate(
        n=Count("pk"), last=Max("updated_at"), top=Max("pk")
    )
    version = (state, agg["n"], agg["last"], agg["top"])
    cached = _indexes.get(("a", workspace_id))
    if cached is not None and cached[0] == version:
        index = cached[1]
        if time.monotonic() - _priors_at.get(workspace_id, 0.0) > PRIORS_TTL:
            index.priors = article_priors(workspace_id)
            _priors_at[workspace_id] = time.monotonic()
        return index
    rows = Article.objects.filter(workspace_id=workspace_id, status=ArticleStatus.PUBLISHED).values_list(
        "pk", "version", "title", "body", "language"
    )
    index = _refresh(("a", workspace_id), version, rows, lambda index: _attach_vectors(workspace_id, index))
    index.priors = article_priors(workspace_id)
    _priors_at[workspace_id] = time.monotonic()
    return index


_priors_at: dict[int, float] = {}
PRIORS_TTL = 60.0
VOTE_PRIOR = 0.4
INSERT_PRIOR = 0.15


def article_priors(workspace_id: int) -> dict[int, float]:
    """A small ranking bonus (or malus) per article learned from use, in z-score units.

    Helpful votes: the smoothed share of "yes" ((yes + 1) / (votes + 2), so one vote moves little)
    minus one half, at most ±0.2. Agents inserting the article into replies in the last 90 days:
    up to +0.15, growing with the logarithm of the count. Both are far below the spread of a
    confident match (several z units), so they break near-ties and never bury a clear answer.
    """
    priors: dict[int, float] = {}
    for pk, yes, no in _published(workspace_id).filter(Q(helpful_yes__gt=0) | Q(helpful_no__gt=0)).values_list(
        "pk", "helpful_yes", "helpful_no"
    ):
        priors[pk] = VOTE_PRIOR * ((yes + 1) / (yes + no + 2) - 0.5)
    since = timezone.now().date() - dt.timedelta(days=90)
    for pk, inserts in (
        ArticleDay.objects.filter(article__workspace_id=workspace_id, day__gte=since, inserts__gt=0)
        .values("article_id").annotate(n=Sum("inserts")).values_list("article_id", "n")
    ):
        priors[pk] = priors.get(pk, 0.0) + INSERT_PRIOR * min(1.0, math.log1p(inserts) / math.log1p(20))
    return priors


# The similar-conversation index holds a workspace's most recently resolved conversations only:
# memory stays bounded (about 1-2 KB per document) however long the workspace has been running.
CONVERSATION_INDEX_LIMIT = 20_000


def conversation_index(workspace_id: int) -> SearchIndex:
    """This process's index of the workspace's resolved conversations (question + our answer)."""
    version = (KbState.objects.filter(workspace_id=workspace_id).values_list("conversations_version", flat=True).first() or 0,)
    cached = _indexes.get(("c", workspace_id))
    if cached is not None and cached[0] == version:
        return cached[1]
    rows = ConversationDoc.objects.filter(workspace_id=workspace_id).order_by("-resolved_at").values_list(
        "conversation_id", "version", "question", "answer", "language"
    )[:CONVERSATION_INDEX_LIMIT]
    return _refresh(("c", workspace_id), version, rows, _attach_conversation_vectors)


def _attach_conversation_vectors(index: SearchIndex) -> None:
    embedder = _embedder_or_none()
    if embedder is None:
        return
    index.embedder = embedder
    missing = [d.id for d in index.missing_vectors()]
    if not missing:
        return
    vectors = {}
    for start in range(0, len(missing), 2000):
        for conv_id, blob in ConversationDoc.objects.filter(
            conversation_id__in=missing[start : start + 2000], vector_model=conversation_vector_key(embedder)
        ).values_list("conversation_id", "vector"):
            if blob:
                vectors[conv_id] = np.frombuffer(bytes(blob), dtype=np.float32)
    index.set_vectors(vectors)


def conversation_vector_key(embedder) -> str:
    return f"{embedder.name}:question"


def _attach_vectors(workspace_id: int, index: SearchIndex) -> None:
    """Load stored vectors for the articles that have none in memory yet (if they are current)."""
    embedder = _embedder_or_none()
    if embedder is None:
        return
    index.embedder = embedder
    missing = {d.id: passage_text(d.title, d.body) for d in index.missing_vectors()}
    if not missing:
        return
    from madoguchi.kb.actions import text_hash

    vectors = {}
    for article_id, digest, blob in ArticleVector.objects.filter(article_id__in=list(missing), model=vector_key(embedder)).values_list(
        "article_id", "text_hash", "vector"
    ):
        if digest == text_hash(missing[article_id]):
            vectors[article_id] = np.frombuffer(bytes(blob), dtype=np.float32)
    index.set_vectors(vectors)


@dataclass
class Result:
    article: Article
    score: float
    snippet: str
    good: bool = True
    # Whether the embedding judged this result too (False while its vector is not computed yet,
    # when only the words can say whether it is good).
    checked: bool = False
    # `_quality`: 1 or more is good; the agents' panel also shows results from half of that.
    quality: float = 1.0


# What counts as a good result: for the "searches with no good result" report, for showing a
# similar conversation at all, for FAQ candidates no article answers, and for the help site's
# clear answers. With an embedding: the cosine stands GOOD_MARGIN above the query's baseline, the
# median cosine between the query and the corpus (`SearchIndex.dense_baseline`). e5's cosines
# live in a narrow band, so a fixed cutoff (0.85 before) called almost everything good: in
# `bench/kb_good_result.py`, 95 % of searches whose answers had been taken out of the corpus
# still had a "good" best result; with the margin 56 % (LocalgovFAQ) and 34 % (StackFAQ),
# while 76 % and 91 % of right first results stay good. Without an embedding (not computed yet), most of the query's words in the
# article (BM25 scores are not comparable across corpora of different sizes).
# The margin and the small-corpus baseline are the embedder's (`good_margin`,
# `unrelated_cosine`, text/embeddings.py); these are e5's, for embedders that do not say.
GOOD_MARGIN = 0.06
UNRELATED_COSINE = 0.83
GOOD_COVERAGE = 0.7


@dataclass(frozen=True)
class _Bar:
    """What a good match must clear for one query: its baseline cosine and the margin above it."""

    baseline: float
    margin: float


def _quality(index: SearchIndex, hit: Hit, terms: set[str], bar: _Bar) -> float:
    """1 or more is a good result: (cosine - baseline) / margin when the embedding scored the
    article, else the share of the query's words found in it / GOOD_COVERAGE."""
    if hit.dense:
        return (hit.dense - bar.baseline) / bar.margin
    return index.coverage(hit.id, terms) / GOOD_COVERAGE


def _bar(index: SearchIndex, vector: np.ndarray | None) -> _Bar:
    embedder = _embedder_or_none()
    margin = float(getattr(embedder, "good_margin", GOOD_MARGIN))
    found = index.dense_baseline(vector) if vector is not None else None
    if found is None:
        found = float(getattr(embedder, "unrelated_cosine", UNRELATED_COSINE))
    return _Bar(found, margin)


def _hits(index: SearchIndex, q: str, *, limit: int, lang: str, mode: str) -> tuple[list[Hit], _Bar]:
    """The best hits, and the bar they are judged against (`_quality`)."""
    qv = query_vector(q) if mode != "lexical" and index.has_vectors() else None
    hits = index.search(q, limit=limit, lang=lang, mode=mode if qv is not None else "lexical", query_vector=qv)  # type: ignore[arg-type]
    return hits, _bar(index, qv)


def search(
    workspace_id: int, q: str, *, limit: int = 10, lang: str = "", mode: str = "hybrid", log: str = "", any_lang: bool = False,
    brand_id: int | None = None,
) -> list[Result]:
    """Published articles of a workspace that best answer `q`, best first, with snippets.

    `log` ("help" or "agent") records the search, aggregated by normalized query and day.
    `any_lang`: when no article in `lang` answers well, search every language (a Japanese
    reader is better served by an English answer than by none).
    `brand_id`: only that brand's articles and those without a brand (a brand's help site).
    """
    q = q.strip()[:1000]
    if not q:
        return []
    index = search_index(workspace_id)
    terms = set(analyze(q))
    hits, bar = _hits(index, q, limit=limit, lang=lang, mode=mode)
    quality = {h.id: _quality(index, h, terms, bar) for h in hits}
    if any_lang and lang and not any(v >= 1.0 for v in quality.values()):
        wider, bar = _hits(index, q, limit=limit, lang="", mode=mode)
        wider_quality = {h.id: _quality(index, h, terms, bar) for h in wider}
        if any(v >= 1.0 for v in wider_quality.values()):
            hits, quality = wider, wider_quality
    found = Article.objects.select_related("category")
    if brand_id is not None:
        found = found.filter(Q(brand_id=brand_id) | Q(brand__isnull=True))
    articles = found.in_bulk([h.id for h in hits])
    results = [
        Result(articles[h.id], h.score, snippet(articles[h.id].body, terms), quality[h.id] >= 1.0, h.dense != 0.0, quality[h.id])
        for h in hits
        if h.id in articles
    ]
    if log:
        from madoguchi.kb.actions import do_log_search

        best = max(quality.values(), default=0.0)
        do_log_search(workspace_id, log, q, good=best >= 1.0, quality=round(min(best, 9.0), 3))
    return results


@dataclass
class SimilarConversation:
    doc: ConversationDoc
    score: float
    article: Article | None  # a published article made from it, to link to


def similar_conversations(workspace_id: int, q: str, *, exclude: int | None = None, limit: int = 3) -> list[SimilarConversation]:
    """Earlier resolved conversations of this workspace whose question is closest to `q`."""
    q = q.strip()[:1000]
    if not q:
        return []
    index = conversation_index(workspace_id)
    if not len(index):
        return []
    terms = set(analyze(q))
    found, bar = _hits(index, q, limit=limit + 1, lang="", mode="hybrid")
    hits = [h for h in found if h.id != exclude and _quality(index, h, terms, bar) >= 1.0][:limit]
    docs = {d.conversation_id: d for d in ConversationDoc.objects.filter(workspace_id=workspace_id, conversation_id__in=[h.id for h in hits])}
    linked = {
        a.source_conversation_id: a
        for a in _published(workspace_id).filter(source_conversation_id__in=list(docs)).order_by("pk")
    }
    return [SimilarConversation(docs[h.id], h.score, linked.get(h.id)) for h in hits if h.id in docs]


def related_articles(article: Article, *, limit: int = 5) -> list[Article]:
    """Published articles close to this one, found with its own stored vector (no model call)."""
    index = search_index(article.workspace_id)
    vector = index._vectors.get(article.pk)
    mode = "hybrid" if vector is not None else "lexical"
    hits = index.search(article.title, limit=limit + 1, lang=article.language, mode=mode, query_vector=vector)  # type: ignore[arg-type]
    ids = [h.id for h in hits if h.id != article.pk][:limit]
    found = Article.objects.in_bulk(ids)
    return [found[i] for i in ids if i in found]


def latest_customer_text(conversation) -> str:
    from madoguchi.inbox import queries as inbox_queries

    messages, _more = inbox_queries.history(conversation, limit=20)
    return next((m.text for m in reversed(messages) if m.direction == "in" and m.text.strip()), "")


def suggestions_for_conversation(conversation, *, limit: int = 5) -> list[Result]:
    """Articles for the customer's latest inbound message in a conversation."""
    last = latest_customer_text(conversation)
    if not last:
        return []
    return search(conversation.workspace_id, last, limit=limit, lang="")


_SENTENCE = re.compile(r"[^。．.!?！？\n]+[。．.!?！？]?")
_MD = re.compile(r"[#*_`>\[\]()|~]+")


def plain_text(markdown: str) -> str:
    return " ".join(_MD.sub(" ", markdown).split())


def snippet(body: str, terms: set[str], length: int = 160) -> str:
    """The sentence of `body` that shares the most terms with the query, cut to `length`."""
    sentences = [s.strip() for s in _SENTENCE.findall(plain_text(body)) if s.strip()]
    if not sentences:
        return ""
    best = sentences[0]
    if terms:
        best_score = 0
        for s in sentences[:200]:
            score = len(terms & set(analyze(s)))
            if score > best_score:
                best, best_score = s, score
    return best if len(best) <= length else best[: length - 1] + "…"


# -- help site -------------------------------------------------------------------------------


def _published(workspace_id: int) -> QuerySet[Article]:
    return Article.objects.filter(workspace_id=workspace_id, status=ArticleStatus.PUBLISHED)


def _categories_with_articles(categories: QuerySet[Category], brand, lang: str) -> list[Category]:
    """The categories (of those given) that hold a published article of the brand, directly or
    one level down; those with one in `lang` when the site has articles in it."""
    articles = published_for_brand(brand)
    if lang and articles.filter(language=lang).exists():
        articles = articles.filter(language=lang)
    return list(categories.filter(Q(articles__in=articles) | Q(children__articles__in=articles)).distinct())


def help_categories(brand) -> list[Category]:
    """Every category page of a brand's help site with something to read (for the sitemap)."""
    return _categories_with_articles(
        Category.objects.filter(Q(brand=brand) | Q(brand__isnull=True), workspace_id=brand.workspace_id), brand, ""
    )


def help_subcategories(category: Category, brand, lang: str = "") -> list[Category]:
    """The subcategories a category page of the help site lists (each leads to its articles)."""
    return _categories_with_articles(category.children.filter(Q(brand=brand) | Q(brand__isnull=True)), brand, lang)


def help_home(brand, lang: str = "") -> dict:
    """Top-level categories and the most read articles of a brand's help site (its own and the
    workspace's shared ones), in the reader's language when the site has articles in it (a
    category shows when one of its articles is)."""
    articles = published_for_brand(brand)
    categories = Category.objects.filter(Q(brand=brand) | Q(brand__isnull=True), workspace_id=brand.workspace_id, parent=None)
    if lang and articles.filter(language=lang).exists():
        articles = articles.filter(language=lang)
        in_lang = categories.filter(
            Q(articles__in=articles) | Q(children__articles__in=articles)
        ).distinct()
        categories = in_lang if in_lang.exists() else categories
    return {
        "categories": list(categories),
        "popular": list(articles.order_by("-views", "-published_at")[:10]),
    }


def published_in(category: Category, brand, lang: str = "") -> list[Article]:
    """A category's published articles on a brand's help site, in `lang` when it has any in it."""
    articles = published_for_brand(brand).filter(category=category)
    if lang and articles.filter(language=lang).exists():
        articles = articles.filter(language=lang)
    return list(articles.order_by("title")[:500])


def help_category(brand, category_id: int) -> Category | None:
    """A category a brand's help site shows: the brand's own or one shared by the workspace."""
    return Category.objects.filter(Q(brand=brand) | Q(brand__isnull=True), pk=category_id, workspace_id=brand.workspace_id).first()


def translations_of(article: Article) -> list[Article]:
    if article.translation_group is None:
        return []
    return list(_published(article.workspace_id).filter(translation_group=article.translation_group).exclude(pk=article.pk))


@dataclass
class VersionRow:
    version: ArticleVersion
    previous: int | None  # the version it changed (for "changes"), proposals skipped
    open_proposal: bool  # proposed and not yet followed by a newer version


def version_rows(article: Article, *, limit: int = 50) -> list[VersionRow]:
    """An article's history, newest first, each version with the one it changed."""
    versions = list(article.versions.select_related("author")[:limit])
    rows = []
    for i, v in enumerate(versions):
        # A proposal changes the text current when it was written; an edit, the last applied one.
        previous = next((o.number for o in versions[i + 1 :] if not o.proposed), None)
        rows.append(VersionRow(v, previous, v.proposed and v.number > article.version))
    return rows


def open_proposals(workspace_id: int, *, limit: int = 50) -> list[ArticleVersion]:
    """Agents' changes to published articles that no manager has applied or overtaken yet."""
    return list(
        ArticleVersion.objects.filter(article__workspace_id=workspace_id, proposed=True, number__gt=F("article__version"))
        .select_related("article", "author")
        .order_by("created_at")[:limit]
    )


def access_translation(user: User, article: Article, other_id: int) -> Article:
    """An article linked to `article` as its translation, in the user's workspace, else 404."""
    other = access_article(user, other_id)
    if other.translation_group is None or other.translation_group != article.translation_group:
        raise Http404
    return other


def linked_translations(article: Article) -> list[Article]:
    """The article's translations in any status, for the editor (the help site shows published ones)."""
    if article.translation_group is None:
        return []
    return list(
        Article.objects.filter(workspace_id=article.workspace_id, translation_group=article.translation_group)
        .exclude(pk=article.pk)
        .order_by("language", "title")
    )


def translation_candidates(article: Article, *, limit: int = 500) -> list[Article]:
    """Articles in another language that could be linked as this one's translation."""
    qs = Article.objects.filter(workspace_id=article.workspace_id).exclude(language=article.language).exclude(pk=article.pk)
    if article.translation_group is not None:
        qs = qs.exclude(translation_group=article.translation_group)
    return list(qs.exclude(status=ArticleStatus.ARCHIVED).order_by("language", "title")[:limit])


def read_a_lot_help_little(workspace_id: int, *, min_views: int = 20, limit: int = 10) -> list[Article]:
    """Published articles many people read but few found helpful: the ones to fix first."""
    from django.db.models import ExpressionWrapper, FloatField

    votes = F("helpful_yes") + F("helpful_no")
    return list(
        _published(workspace_id)
        .filter(views__gte=min_views, helpful_no__gt=0)
        .annotate(ratio=ExpressionWrapper(F("helpful_yes") * 1.0 / votes, output_field=FloatField()))
        .order_by("ratio", "-views")
        .prefetch_related(Prefetch("votes", queryset=ArticleVote.objects.filter(helpful=False).exclude(comment="").order_by("-created_at"), to_attr="complaints"))[:limit]
    )


def published_for_brand(brand) -> QuerySet[Article]:
    """A brand's published articles: its own and the workspace's articles without a brand."""
    return _published(brand.workspace_id).filter(Q(brand=brand) | Q(brand__isnull=True))


def newest_published_for(brand, *, category: Category | None = None, limit: int = 50) -> list[Article]:
    qs = published_for_brand(brand)
    if category is not None:
        qs = qs.filter(category=category)
    return list(qs.order_by("-published_at", "-pk")[:limit])


# -- managers' report ------------------------------------------------------------------------


@dataclass
class ArticleStats:
    article: Article
    views_7: int
    views_prev_7: int
    views_30: int
    views_prev_30: int

    @property
    def votes(self) -> int:
        return self.article.helpful_yes + self.article.helpful_no

    @property
    def helpful_ratio(self) -> float | None:
        return self.article.helpful_yes / self.votes if self.votes else None

    @property
    def trend_7(self) -> float | None:
        return _change(self.views_7, self.views_prev_7)

    @property
    def trend_30(self) -> float | None:
        return _change(self.views_30, self.views_prev_30)


def _change(now: int, before: int) -> float | None:
    """Relative change in percent, None when there is nothing to compare with."""
    if not before:
        return None
    return round((now - before) * 100.0 / before)


def article_stats(workspace_id: int, *, limit: int = 200, today: dt.date | None = None) -> list[ArticleStats]:
    """Published articles by total views, with views in the last 7 and 30 days and the periods before."""
    today = today or timezone.now().date()
    d7, d14, d30, d60 = (today - dt.timedelta(days=n - 1) for n in (7, 14, 30, 60))
    articles = list(_published(workspace_id).order_by("-views", "-published_at")[:limit])
    sums = {
        row["article_id"]: row
        for row in ArticleDay.objects.filter(article_id__in=[a.pk for a in articles], day__gte=d60)
        .values("article_id")
        .annotate(
            v7=Sum("views", filter=Q(day__gte=d7)),
            vp7=Sum("views", filter=Q(day__gte=d14, day__lt=d7)),
            v30=Sum("views", filter=Q(day__gte=d30)),
            vp30=Sum("views", filter=Q(day__lt=d30)),
        )
    }
    out = []
    for a in articles:
        row: Any = sums.get(a.pk, {})
        out.append(ArticleStats(a, row.get("v7") or 0, row.get("vp7") or 0, row.get("v30") or 0, row.get("vp30") or 0))
    return out


@dataclass
class MissedSearch:
    query: str
    searches: int
    no_good: int
    best_quality: float
    sources: list[str]


def searches_without_good_result(workspace_id: int, *, days: int = 30, limit: int = 50) -> list[MissedSearch]:
    """What people searched for and did not find, most frequent first (normalized queries)."""
    since = timezone.now().date() - dt.timedelta(days=days - 1)
    rows = (
        SearchLog.objects.filter(workspace_id=workspace_id, day__gte=since)
        .values("query")
        .annotate(n=Sum("searches"), bad=Sum("no_good"), best=Max("best_quality"))
        .filter(bad__gt=0)
        .order_by("-bad", "-n", "query")[:limit]
    )
    queries = [r["query"] for r in rows]
    sources: dict[str, set[str]] = {}
    for query, source in SearchLog.objects.filter(workspace_id=workspace_id, day__gte=since, query__in=queries).values_list("query", "source"):
        sources.setdefault(query, set()).add(source)
    return [MissedSearch(r["query"], r["n"], r["bad"], r["best"], sorted(sources.get(r["query"], ()))) for r in rows]


# -- FAQ candidates --------------------------------------------------------------------------

# Two questions whose embeddings are this close ask the same thing (multilingual-e5 cosines of
# paraphrases are about 0.9 and above).
CLUSTER_SIMILARITY = 0.9


@dataclass
class FaqCandidate:
    center: ConversationDoc  # the question closest to all others: the draft is made from it
    size: int
    conversation_ids: list[int]
    examples: list[str]


def cluster_vectors(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Threshold clustering (Butina): rows in order of how many neighbours they have at cosine ≥
    threshold; each row not yet taken becomes a center and takes its neighbours not yet taken.
    O(n²) time and memory, fine for a few thousand recent conversations; rows L2-normalized."""
    if not len(vectors):
        return []
    sims = vectors @ vectors.T
    near = sims >= threshold
    order = np.argsort(-near.sum(axis=1), kind="stable")
    taken = np.zeros(len(vectors), dtype=bool)
    clusters: list[list[int]] = []
    for center in order:
        if taken[center]:
            continue
        members = np.flatnonzero(near[center] & ~taken)
        members = members[np.argsort(-sims[center, members], kind="stable")]  # the center first
        taken[members] = True
        clusters.append([int(m) for m in members])
    return clusters


def faq_candidates(workspace_id: int, *, days: int = 30, min_size: int = 3, limit: int = 10, max_docs: int = 3000) -> list[FaqCandidate]:
    """Groups of recent resolved conversations asking the same thing that no published article
    answers well: the questions worth an FAQ, largest group first."""
    embedder = _embedder_or_none()
    if embedder is None:
        return []
    since = timezone.now() - dt.timedelta(days=days)
    docs = list(
        ConversationDoc.objects.filter(workspace_id=workspace_id, resolved_at__gte=since, vector_model=conversation_vector_key(embedder))
        .exclude(vector=None).order_by("-resolved_at")[:max_docs]
    )
    if len(docs) < min_size:
        return []
    matrix = np.stack([np.frombuffer(bytes(d.vector), dtype=np.float32) for d in docs])  # type: ignore[arg-type]
    clusters = [c for c in cluster_vectors(matrix, CLUSTER_SIMILARITY) if len(c) >= min_size]
    index = search_index(workspace_id)
    covered = set(
        _published(workspace_id).exclude(source_conversation_id=None).values_list("source_conversation_id", flat=True)
    )
    out = []
    for members in clusters:
        group = [docs[i] for i in members]
        if any(d.conversation_id in covered for d in group):
            continue
        center = group[0]
        vector = matrix[members[0]] if index.has_vectors() else None
        hits = index.search(center.question, limit=1, mode="hybrid" if vector is not None else "lexical", query_vector=vector)
        if hits and _quality(index, hits[0], set(analyze(center.question)), _bar(index, vector)) >= 1.0:
            continue  # an article already answers it
        out.append(FaqCandidate(center, len(group), [d.conversation_id for d in group], [d.question for d in group[1:4]]))
        if len(out) >= limit:
            break
    return out


# -- version history -------------------------------------------------------------------------


def version_diff(old: str, new: str) -> list[tuple[str, list[tuple[bool, str]]]]:
    """Line diff of two texts as (kind, segments) rows, kind one of " ", "-", "+"; a changed line
    paired with its replacement carries (changed, text) segments so the template can mark the
    characters that differ (Japanese paragraphs are often one long line). The template renders
    every segment with autoescaping, so article text can never inject markup."""
    import difflib

    rows: list[tuple[str, list[tuple[bool, str]]]] = []
    a, b = old.splitlines(), new.splitlines()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            rows += [(" ", [(False, line)]) for line in a[i1:i2]]
            continue
        olds, news = a[i1:i2], b[j1:j2]
        if op == "replace" and len(olds) == len(news):
            pairs = [_char_diff(x, y) for x, y in zip(olds, news, strict=True)]
            rows += [("-", o) for o, _n in pairs]
            rows += [("+", n) for _o, n in pairs]
        else:
            rows += [("-", [(False, line)]) for line in olds]
            rows += [("+", [(False, line)]) for line in news]
    return rows


def _char_diff(old: str, new: str) -> tuple[list[tuple[bool, str]], list[tuple[bool, str]]]:
    """Character spans of a changed line pair; lines with little in common are marked whole."""
    import difflib

    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    if matcher.ratio() < 0.5:
        return [(False, old)], [(False, new)]
    old_parts: list[tuple[bool, str]] = []
    new_parts: list[tuple[bool, str]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if i2 > i1:
            old_parts.append((op != "equal", old[i1:i2]))
        if j2 > j1:
            new_parts.append((op != "equal", new[j1:j2]))
    return old_parts, new_parts
