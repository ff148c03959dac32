"""Background work of listening: the second, finer urgency verdict of captured posts.

At capture, a post gets the inline urgency of the sparse triage model (cheap enough for the
10,000 posts/s ingest path). `refine_urgency` then re-scores recently captured posts with the
dense model, which also reads the post's sentence embedding (`triage.DenseUrgency`): the
urgency classifier that beats the keyword rules on the labelled set (eval/README.md). It updates
`urgency` and `priority` only, so the stream re-orders itself; nothing else of the post changes.

Embedding costs tens of milliseconds a post on one core, so a burst of captures is refined in
batches and posts older than `REFINE_WINDOW` keep their inline verdict. The clock's
`run_periodic` only checks whether there is work and queues one `refine_urgency` at a time
(it looks for a waiting or running one in the task queue's table, which every worker shares).
Progress is a cursor (the last refined post id) in the database (`ListeningCursor`), shared by
every worker; two workers that read the same batch at once both refine it, which is harmless (the
verdict of a text does not change), and the cursor only moves forward.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone
from django_tasks import task

from madoguchi.ingest.models import Post
from madoguchi.lib import lanes
from madoguchi.listening.models import ListeningCursor
from madoguchi.listening.triage import classify, priority, refined_urgencies

logger = logging.getLogger(__name__)

REFINE_WINDOW = dt.timedelta(hours=6)
# Small batches (about a second of CPU each) that queue their successor. Refinement runs in the
# worker's bulk lane (lib/lanes.py), so replies never wait for it; small batches still let the
# other bulk work (article embeddings after a publish) take turns with a burst of captures.
REFINE_BATCH = 32
CURSOR = "refine-urgency"


def _pending() -> list[tuple[int, str, int, int, str]]:
    since = timezone.now() - REFINE_WINDOW
    return list(
        Post.objects.filter(pk__gt=ListeningCursor.read(CURSOR), captured_at__gte=since)
        .order_by("pk")
        .values_list("pk", "text", "urgency", "influence", "kind")[:REFINE_BATCH]
    )


def do_refine_urgency() -> dict[str, int]:
    """Refine the urgency (and priority) of up to REFINE_BATCH recent posts past the cursor."""
    rows = _pending()
    if not rows:
        return {"refined": 0, "changed": 0}
    todo = [r for r in rows if r[4] != "spam"]  # spam stays at urgency 0, as at capture
    levels = refined_urgencies([r[1] for r in todo]) if todo else []
    if levels is None:  # no dense model, or one trained for another embedder: keep inline verdicts
        ListeningCursor.advance(CURSOR, rows[-1][0])
        return {"refined": 0, "changed": 0}
    changed: list[Post] = []
    for (pk, text, urgency, influence, kind), level in zip(todo, levels, strict=True):
        # The author's repeated posts raised the inline verdict by one (triage.triage); the
        # post does not keep that count, but the difference to the inline model shows it.
        bump = 1 if urgency > classify(text)[1] else 0
        refined = min(2, level + bump)
        if refined != urgency:
            changed.append(Post(pk=pk, urgency=refined, priority=priority(refined, influence, kind)))
    if changed:
        Post.objects.bulk_update(changed, ["urgency", "priority"])
    ListeningCursor.advance(CURSOR, rows[-1][0])
    return {"refined": len(todo), "changed": len(changed)}


def _waiting() -> bool:
    since = timezone.now() - REFINE_WINDOW
    return Post.objects.filter(pk__gt=ListeningCursor.read(CURSOR), captured_at__gte=since).exists()


@task(queue_name=lanes.BULK)
def refine_urgency() -> dict[str, int]:
    """Queued by `run_periodic`: one batch of refinement, then the next batch goes to the back of
    the queue while posts wait."""
    done = do_refine_urgency()
    if _waiting():
        _enqueue()
    return done


def _enqueue() -> bool:
    try:
        refine_urgency.enqueue()
    except Exception:
        logger.exception("listening: could not queue urgency refinement")
        return False
    return True


def _refinement_queued() -> bool:
    """A refinement waits in the queue or runs (one that has run for 10 minutes is taken as dead)."""
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    path = refine_urgency.module_path
    stale = timezone.now() - dt.timedelta(minutes=10)
    return (
        DBTaskResult.objects.filter(task_path=path, status=TaskResultStatus.READY).exists()
        or DBTaskResult.objects.filter(task_path=path, status=TaskResultStatus.RUNNING, started_at__gte=stale).exists()
    )


@task()
def run_periodic() -> dict[str, int]:
    """Clock work: queue a refinement when recent posts wait for one (never two at once)."""
    if not _waiting() or _refinement_queued():
        return {"queued": 0}
    return {"queued": int(_enqueue())}
