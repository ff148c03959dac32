"""The background urgency refinement: captured posts get the dense (embedding) model's verdict."""

import datetime as dt

from django.core.cache import cache
from django.utils import timezone

from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.ingest.actions import do_ingest_posts
from madoguchi.ingest.models import Post
from madoguchi.listening import tasks
from madoguchi.listening.triage import priority, refined_urgencies


def item(ext: str, text: str, author: str = "fan") -> InboundItem:
    return InboundItem(
        external_id=ext, author=InboundAuthor(external_id=author, handle=author, followers=5000), text=text,
        created_at=timezone.now(), public=True, route="stream",
    )


OUTAGE = "アイフォンが朝から圏外のまま。電話もネットも全く使えない。通信障害？"
SPAM = "【当選】アイフォンが当たりました→ http://example.com/x 今すぐクリック"


def test_the_dense_model_ranks_clear_cases_like_the_guide():
    assert refined_urgencies([OUTAGE, "my new iphone is lovely, thanks"]) == [2, 0]


def test_refinement_rewrites_urgency_and_priority_of_recent_posts_once(cast, rules):
    do_ingest_posts(cast.account, [item("a", OUTAGE), item("b", SPAM, "bot"), item("c", "iphone case is cute", "c")])
    outage = Post.objects.get(external_id="a")
    # As if the inline model had missed it: the refinement must put it back on top.
    Post.objects.filter(pk=outage.pk).update(urgency=0, priority=0)
    Post.objects.filter(external_id="b").update(urgency=1)  # spam is left alone whatever it carries

    assert tasks.do_refine_urgency()["refined"] == 2
    outage.refresh_from_db()
    assert outage.urgency == 2
    assert outage.priority == priority(2, outage.influence, outage.kind) > 2000
    assert Post.objects.get(external_id="b").urgency == 1
    assert Post.objects.get(external_id="c").urgency == 0

    Post.objects.filter(pk=outage.pk).update(urgency=0)
    cache.clear()  # another worker process: the cursor is in the database, not in a process's cache
    assert tasks.do_refine_urgency() == {"refined": 0, "changed": 0}  # past the cursor
    assert Post.objects.get(pk=outage.pk).urgency == 0
    assert not Post.objects.filter(workspace=cast.ws_b).exists()


def queued_runs() -> int:
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(task_path="madoguchi.listening.tasks.refine_urgency").count()


def test_old_posts_keep_their_inline_verdict_and_the_clock_queues_one_run(cast, rules):
    do_ingest_posts(cast.account, [item("old", OUTAGE)])
    Post.objects.filter(external_id="old").update(urgency=0, captured_at=timezone.now() - dt.timedelta(days=1))
    assert tasks.run_periodic.call() == {"queued": 0}
    assert tasks.do_refine_urgency()["refined"] == 0
    assert Post.objects.get(external_id="old").urgency == 0

    do_ingest_posts(cast.account, [item("new", OUTAGE, "other")])
    assert tasks.run_periodic.call() == {"queued": 1}
    assert tasks.run_periodic.call() == {"queued": 0}  # one at a time
    cache.clear()  # ... also seen from another worker's clock
    assert tasks.run_periodic.call() == {"queued": 0}
    assert queued_runs() == 1
    assert tasks.refine_urgency.call()["refined"] == 1
    assert tasks.run_periodic.call() == {"queued": 0}  # nothing left
