"""Background work of the knowledge base: embedding published articles for dense search."""

from __future__ import annotations

import logging

from django_tasks import task

from madoguchi.kb import actions
from madoguchi.kb.models import Article, ArticleStatus, ArticleVector
from madoguchi.kb.search import passage_text
from madoguchi.kb.search.engine import document_vectors, vector_key
from madoguchi.text.embeddings import get_embedder

logger = logging.getLogger(__name__)
BATCH = 16


def enqueue_embedding(workspace_id: int) -> None:
    """Queue an embedding pass; a failure to queue must never fail the publish that caused it."""
    try:
        embed_articles.enqueue(workspace_id)
    except Exception:
        logger.exception("kb: could not queue embedding for workspace %s", workspace_id)


def pending_vectors(workspace_id: int, model: str) -> tuple[list[tuple[int, str, str, str]], int]:
    """Published articles whose stored vector is missing or stale: (id, title, body, hash), and the total."""
    have = dict(
        ArticleVector.objects.filter(article__workspace_id=workspace_id, model=model).values_list("article_id", "text_hash")
    )
    todo, total = [], 0
    for pk, title, body in Article.objects.filter(workspace_id=workspace_id, status=ArticleStatus.PUBLISHED).values_list(
        "pk", "title", "body"
    ):
        total += 1
        digest = actions.text_hash(passage_text(title, body))
        if have.get(pk) != digest:
            todo.append((pk, title, body, digest))
    return todo, total


@task()
def embed_articles(workspace_id: int) -> dict[str, int]:
    """Embed every published article that lacks a current vector, recording progress per batch."""
    embedder = get_embedder()
    todo, total = pending_vectors(workspace_id, vector_key(embedder))
    done = total - len(todo)
    actions.do_set_embed_progress(workspace_id, done, total)
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        vectors = document_vectors(embedder, [(title, body) for _pk, title, body, _h in batch])
        actions.do_store_vectors(vector_key(embedder), [(pk, h, v) for (pk, _t, _b, h), v in zip(batch, vectors, strict=True)])
        done += len(batch)
        # Bump the index every few batches so dense search improves while the pass runs.
        actions.do_set_embed_progress(workspace_id, done, total, bump=start // BATCH % 8 == 7 or done == total)
    return {"embedded": len(todo), "total": total}
