import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections
from django.utils.crypto import get_random_string
from django.utils.module_loading import import_string
from django_tasks_db.management.commands.db_worker import Worker

from madoguchi.lib import lanes

logger = logging.getLogger(__name__)


def _clock(interval: float) -> None:
    """Run clock-driven work (snooze wake-ups, lost outbox rows) every `interval` seconds."""
    tasks = [import_string(path) for path in settings.PERIODIC_TASKS]
    while True:
        for task in tasks:
            try:
                task.call()
            except Exception:
                logger.exception("periodic task %s failed", task.name)
            finally:
                close_old_connections()
        time.sleep(interval)


def _lane_worker(lane: str, interval: float) -> Worker:
    return Worker(
        queue_names=[lane],
        interval=interval,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=f"{lane}-{get_random_string(24)}",
        excluded_queue_names=[],
    )


# On Ctrl-C / SIGTERM the lanes in threads get this long to finish the task in hand.
SHUTDOWN_GRACE = 25.0


def _run_lane(worker: Worker) -> None:
    """One lane's loop in its own thread (and so its own database connection). A crash of the
    loop itself (the database gone for a moment) restarts it after a pause instead of leaving
    the lane dead while the process lives on."""
    while worker.running:
        try:
            worker.run()
        except Exception:
            logger.exception("worker lane %s failed; restarting in 5 s", worker.queue_names[0])
            time.sleep(5)
        finally:
            close_old_connections()


def _on_signal(worker: Worker) -> Callable[[int, FrameType | None], None]:
    """The handler for Ctrl-C / SIGTERM: streaming sessions in every lane end within seconds
    (`lanes.stop`), then the worker stops as django-tasks-db does (a second signal ends the
    task in hand at once)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        lanes.stop()
        worker.shutdown(signum, frame)

    return handler


class Command(BaseCommand):
    help = "Run background tasks from the database queue (several workers may run at once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=0.5, help="queue poll interval, seconds")
        parser.add_argument("--clock-interval", type=float, default=15.0)
        parser.add_argument(
            "--lanes",
            default=",".join(lanes.ALL),
            help="comma-separated lanes this process runs, one thread each (default: all of %(default)s)",
        )

    def handle(self, *args: object, **opts: object) -> None:
        chosen = [name.strip() for name in str(opts["lanes"]).split(",") if name.strip()]
        unknown = sorted(set(chosen) - set(lanes.ALL))
        if unknown or not chosen:
            raise CommandError(f"--lanes takes some of {', '.join(lanes.ALL)}; got {opts['lanes']!r}")
        level = logging.INFO if int(opts.get("verbosity", 1)) else logging.CRITICAL  # type: ignore[call-overload]
        for name in ("django_tasks", "django_tasks_db"):
            logging.getLogger(name).setLevel(level)
        threading.Thread(target=_clock, args=(float(opts["clock_interval"]),), daemon=True).start()  # type: ignore[arg-type]
        interval = float(opts["interval"])  # type: ignore[arg-type]
        # Only the default lane's latency is felt by a person; the others poll less often.
        main, *others = [
            _lane_worker(lane, interval if lane == lanes.DEFAULT else max(interval, 1.0)) for lane in dict.fromkeys(chosen)
        ]
        threads = [
            threading.Thread(target=_run_lane, args=(worker,), name=f"lane-{worker.queue_names[0]}", daemon=True)
            for worker in others
        ]
        for thread in threads:
            thread.start()
        self.stdout.write(f"worker lanes: {', '.join(dict.fromkeys(chosen))}")
        # The first lane runs in the main thread and answers Ctrl-C / SIGTERM (its task in hand
        # finishes first). Streaming sessions, in any lane, end within seconds on the same signal,
        # saving their cursors and releasing their leases. The other lanes then stop taking tasks
        # and get SHUTDOWN_GRACE to finish theirs; a longer one (an embedding pass) is cut off,
        # which it survives: embeddings and refinement continue from what is stored.
        lanes.resume()
        for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGQUIT", None)):
            if signum is not None:
                signal.signal(signum, _on_signal(main))
        try:
            main.run()
        finally:
            lanes.stop()
            for worker in others:
                worker.running = False
            deadline = time.monotonic() + SHUTDOWN_GRACE
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
