"""Background work of the knowledge base: embedding published articles for dense search."""

from __future__ import annotations

import logging

from django_tasks import task

from madoguchi.kb import actions
from madoguchi.kb.models import Article, ArticleStatus, ArticleVector, ConversationDoc
from madoguchi.kb.search import passage_text
from madoguchi.kb.search.engine import document_vectors, vector_key
from madoguchi.lib import lanes
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


@task(queue_name=lanes.BULK)
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


def _pending_conversation_vectors(model: str, limit: int) -> list[tuple[int, str]]:
    return list(
        ConversationDoc.objects.exclude(vector_model=model).order_by("-resolved_at").values_list("conversation_id", "question")[:limit]
    )


@task(queue_name=lanes.BULK)
def embed_conversations(limit: int = 2000) -> dict[str, int]:
    """Embed the questions of indexed conversations that have no current vector, newest first."""
    from madoguchi.kb.queries import conversation_vector_key

    embedder = get_embedder()
    model = conversation_vector_key(embedder)
    todo = _pending_conversation_vectors(model, limit)
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        vectors = embedder.embed([question for _pk, question in batch], kind="passage")
        actions.do_store_conversation_vectors(model, [(pk, v) for (pk, _q), v in zip(batch, vectors, strict=True)])
    return {"embedded": len(todo)}


@task()
def run_periodic() -> dict[str, int]:
    """Clock work: newly resolved conversations become searchable (text now, vectors queued), and
    imports that lost their worker are queued again."""
    written = actions.do_index_resolved_conversations()
    if written:
        try:
            embed_conversations.enqueue()
        except Exception:
            logger.exception("kb: could not queue conversation embedding")
    requeued = actions.do_requeue_stalled_imports()
    for job_id in requeued:
        logger.warning("kb: import %s lost its worker; queued again", job_id)
        run_import.enqueue(job_id)
    return {"conversations": written, "imports_requeued": len(requeued)}


def warm_indexes(max_workspaces: int = 50) -> None:
    """Load the embedder and build the in-memory indexes of the busiest workspaces, so the first
    search after a start does not wait for them (run in a background thread at start-up)."""
    import time

    from django.db.models import Count

    from madoguchi.kb import queries

    start = time.monotonic()
    try:
        busiest: list[int] = list(
            Article.objects.filter(status=ArticleStatus.PUBLISHED).values("workspace_id")
            .annotate(n=Count("pk")).order_by("-n").values_list("workspace_id", flat=True)[:max_workspaces]
        )
        for workspace_id in busiest:
            queries.search_index(workspace_id).lexical_scores("warm")
            queries.conversation_index(workspace_id).lexical_scores("warm")
        queries.query_vector("warm")  # loads the model
        logger.info("kb: search indexes of %s workspaces warmed in %.1f s", len(busiest), time.monotonic() - start)
    except Exception:
        logger.exception("kb: warming the search indexes failed (searches will build them)")


def warm_in_background() -> None:
    """`warm_indexes` in its own thread's database connection, closed afterwards."""
    from django.db import connection

    try:
        warm_indexes()
    finally:
        connection.close()


@task(queue_name=lanes.BULK)
def run_import(job_id: int) -> dict[str, object]:
    """Import an uploaded file of articles (kb.actions.do_queue_import)."""
    job = actions.do_run_import(job_id)
    if job is None:
        return {"skipped": "not queued (already imported, or taken by another worker)"}
    return {"state": job.state, "created": job.created, "updated": job.updated, "errors": job.error_count}
