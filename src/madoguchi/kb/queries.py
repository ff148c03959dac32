"""Reads for the knowledge base: access checks, search through the engine, suggestions, snippets.

Search index lifetime: each process keeps one `SearchIndex` per workspace in memory, tagged with
the workspace's `KbState.index_version` and a cheap aggregate of its published articles. When
either changes, the next search in any process brings its index up to date incrementally: only
new or edited articles are analysed and appended to the postings, removed ones are masked, and
vectors are loaded only for articles that lack one (the background task bumps the counter as it
stores them). This needs no index server and works with several web processes on PostgreSQL.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, F, Max, Prefetch, QuerySet
from django.http import Http404

from madoguchi.accounts.models import User
from madoguchi.accounts.queries import workspace_id_of
from madoguchi.kb.models import (
    Article,
    ArticleStatus,
    ArticleVector,
    ArticleVote,
    Category,
    KbState,
)
from madoguchi.kb.search import Doc, SearchIndex, analyze, index_terms, passage_text
from madoguchi.kb.search.engine import vector_key
from madoguchi.text.embeddings import get_embedder

_lock = threading.Lock()
_indexes: dict[int, tuple[tuple, SearchIndex]] = {}
_terms: dict[tuple[int, int], tuple[list[str], list[str]]] = {}
_versions: dict[int, dict[int, int]] = {}  # workspace → {article id: version} in its index


def access_article(user: User, article_id: int) -> Article:
    """The article if it is in the user's workspace, else 404."""
    article = Article.objects.select_related("category").filter(pk=article_id, workspace_id=workspace_id_of(user)).first()
    if article is None:
        raise Http404
    return article


def articles_for(user: User, status: str = "", q: str = "") -> QuerySet[Article]:
    qs = Article.objects.filter(workspace_id=workspace_id_of(user)).select_related("category")
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(title__icontains=q)
    return qs


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


def search_index(workspace_id: int) -> SearchIndex:
    """This process's index of the workspace's published articles, rebuilt if it is stale."""
    # The counter is bumped after commit; the aggregate also catches changes whose commit hook
    # has not run (and is one indexed query, far cheaper than a search).
    state = KbState.objects.filter(workspace_id=workspace_id).values_list("index_version", flat=True).first() or 0
    agg = Article.objects.filter(workspace_id=workspace_id, status=ArticleStatus.PUBLISHED).aggregate(
        n=Count("pk"), last=Max("updated_at"), top=Max("pk")
    )
    version = (state, agg["n"], agg["last"], agg["top"])
    with _lock:
        cached = _indexes.get(workspace_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        rows = Article.objects.filter(workspace_id=workspace_id, status=ArticleStatus.PUBLISHED).values_list(
            "pk", "version", "title", "body", "language"
        )
        index = cached[1] if cached is not None else SearchIndex(None)
        known = _versions.setdefault(workspace_id, {})
        current = {}
        docs, tokens = [], []
        for pk, ver, title, body, lang in rows:
            current[pk] = ver
            if known.get(pk) == ver:
                continue
            if pk in known:
                _terms.pop((pk, known[pk]), None)
            terms = _terms.get((pk, ver)) or (index_terms(title), index_terms(body))
            _terms[(pk, ver)] = terms
            docs.append(Doc(pk, title, body, lang))
            tokens.append(terms)
        gone = [pk for pk in known if pk not in current]
        index.remove(gone + [d.id for d in docs if d.id in known])
        index.add(docs, tokens)
        for pk in gone:
            _terms.pop((pk, known[pk]), None)
        _versions[workspace_id] = current
        _attach_vectors(workspace_id, index)
        _indexes[workspace_id] = (version, index)
        return index


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


def search(workspace_id: int, q: str, *, limit: int = 10, lang: str = "", mode: str = "hybrid") -> list[Result]:
    """Published articles of a workspace that best answer `q`, best first, with snippets."""
    q = q.strip()[:1000]
    if not q:
        return []
    index = search_index(workspace_id)
    hits = index.search(q, limit=limit, lang=lang, mode=mode)  # type: ignore[arg-type]
    articles = Article.objects.select_related("category").in_bulk([h.id for h in hits])
    terms = set(analyze(q))
    return [Result(articles[h.id], h.score, snippet(articles[h.id].body, terms)) for h in hits if h.id in articles]


def related_articles(article: Article, *, limit: int = 5) -> list[Article]:
    """Published articles close to this one, found with its own stored vector (no model call)."""
    index = search_index(article.workspace_id)
    vector = index._vectors.get(article.pk)
    mode = "hybrid" if vector is not None else "lexical"
    hits = index.search(article.title, limit=limit + 1, lang=article.language, mode=mode, query_vector=vector)  # type: ignore[arg-type]
    ids = [h.id for h in hits if h.id != article.pk][:limit]
    found = Article.objects.in_bulk(ids)
    return [found[i] for i in ids if i in found]


def suggestions_for_conversation(conversation, *, limit: int = 5) -> list[Result]:
    """Articles for the customer's latest inbound message in a conversation."""
    from madoguchi.inbox import queries as inbox_queries

    messages, _more = inbox_queries.history(conversation, limit=20)
    last = next((m.text for m in reversed(messages) if m.direction == "in" and m.text.strip()), "")
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


def help_home(brand, lang: str = "") -> dict:
    """Top-level categories and the most read articles of a brand's help site."""
    articles = _published(brand.workspace_id)
    if lang:
        articles = articles.filter(language=lang)
    return {
        "categories": list(Category.objects.filter(workspace_id=brand.workspace_id, parent=None)),
        "popular": list(articles.order_by("-views", "-published_at")[:10]),
    }


def published_in(category: Category) -> list[Article]:
    return list(_published(category.workspace_id).filter(category=category).order_by("title")[:500])


def newest_published(workspace_id: int, limit: int = 50) -> list[Article]:
    return list(_published(workspace_id).order_by("-published_at", "-pk")[:limit])


def translations_of(article: Article) -> list[Article]:
    if article.translation_group is None:
        return []
    return list(_published(article.workspace_id).filter(translation_group=article.translation_group).exclude(pk=article.pk))


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
