import logging
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections
from django.utils.module_loading import import_string

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


class Command(BaseCommand):
    help = "Run background tasks from the database queue (several workers may run at once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=0.5, help="queue poll interval, seconds")
        parser.add_argument("--clock-interval", type=float, default=15.0)

    def handle(self, *args: object, **opts: object) -> None:
        threading.Thread(target=_clock, args=(float(opts["clock_interval"]),), daemon=True).start()  # type: ignore[arg-type]
        call_command(
            "db_worker",
            interval=float(opts["interval"]),  # type: ignore[arg-type]
            queue_name="*",
            verbosity=int(opts.get("verbosity", 1)),  # type: ignore[call-overload]
        )
