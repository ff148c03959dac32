import os
import sys
import threading

from django.apps import AppConfig

# Long-running processes that serve searches: their indexes are warmed in the background.
# Not "demo": it migrates first and starts `serve` and `worker`, which warm themselves.
_WARM_COMMANDS = {"serve", "worker", "runserver"}


class KbConfig(AppConfig):
    name = "madoguchi.kb"
    label = "kb"
    verbose_name = "Knowledge base"

    def ready(self) -> None:
        command = sys.argv[1] if len(sys.argv) > 1 else ""
        if command in _WARM_COMMANDS and os.environ.get("MADOGUCHI_KB_WARM", "1") != "0":
            from madoguchi.kb.tasks import warm_in_background

            # A few seconds after start, off the request path; a search meanwhile builds lazily.
            timer = threading.Timer(2.0, warm_in_background)
            timer.daemon = True
            timer.start()
