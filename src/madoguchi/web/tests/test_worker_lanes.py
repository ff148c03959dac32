"""The worker's lanes: a reply never waits behind an embedding pass or a streaming session."""

import signal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from madoguchi.connectors.bluesky.tasks import listen_jetstream
from madoguchi.connectors.line.tasks import process_delivery
from madoguchi.connectors.mastodon.tasks import stream_account
from madoguchi.connectors.x.tasks import run_stream
from madoguchi.inbox import actions
from madoguchi.inbox.models import Delivery
from madoguchi.inbox.tasks import deliver_outbox
from madoguchi.kb.tasks import embed_articles, embed_conversations, run_import
from madoguchi.lib import lanes
from madoguchi.listening.tasks import refine_urgency
from madoguchi.web.management.commands.worker import _lane_worker
from madoguchi.webhooks.tasks import deliver_webhook


def test_each_kind_of_work_has_its_lane():
    assert {t.queue_name for t in (embed_articles, embed_conversations, refine_urgency, run_import)} == {lanes.BULK}
    assert {t.queue_name for t in (run_stream, stream_account, listen_jetstream)} == {lanes.STREAM}
    assert {t.queue_name for t in (deliver_outbox, deliver_webhook, process_delivery)} == {lanes.DEFAULT}


def drain(lane: str) -> None:
    """Run one lane's worker until its queue is empty, as `madoguchi worker` does in a thread."""
    worker = _lane_worker(lane, interval=0)
    worker.batch = True
    worker.run()


@pytest.mark.django_db(transaction=True)
def test_a_reply_goes_out_while_an_embedding_pass_waits_in_its_own_lane(cast):
    embed_articles.enqueue(cast.ws.pk)  # queued first: a single queue would run it first
    conv = cast.inbound("届きません").message.conversation
    msg = actions.do_reply(conv, author=cast.agent, text="確認します")

    drain(lanes.DEFAULT)

    msg.refresh_from_db()
    assert msg.delivery == Delivery.SENT
    embedding = DBTaskResult.objects.get(task_path=embed_articles.module_path)
    assert embedding.status == TaskResultStatus.READY  # the default lane left it alone

    drain(lanes.BULK)
    embedding.refresh_from_db()
    assert embedding.status == TaskResultStatus.SUCCESSFUL


def test_the_worker_refuses_a_lane_it_does_not_know():
    with pytest.raises(CommandError, match="bulk"):
        call_command("worker", lanes="default,fast")


def test_a_lane_whose_loop_crashes_starts_again(monkeypatch):
    from madoguchi.web.management.commands import worker as command

    class FlakyLane:
        queue_names = [lanes.BULK]
        running = True
        runs = 0

        def run(self):
            self.runs += 1
            if self.runs == 1:
                raise RuntimeError("database went away")
            self.running = False  # the second run ends as a shutdown would

    monkeypatch.setattr(command.time, "sleep", lambda s: None)
    lane = FlakyLane()
    command._run_lane(lane)
    assert lane.runs == 2


def test_a_stop_signal_stops_the_worker_and_every_streaming_session():
    from madoguchi.web.management.commands import worker as command

    main = command._lane_worker(lanes.DEFAULT, 0.5)
    try:
        with pytest.raises(SystemExit):  # idle, the worker exits at once (django-tasks-db)
            command._on_signal(main)(signal.SIGTERM, None)
        assert lanes.stopping() and not main.running
        assert lanes.pause(60) is True  # a session's backoff sleep returns at once
    finally:
        lanes.resume()
    assert not lanes.stopping()
