import uvicorn
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the web server (ASGI) on a port; --workers N for several processes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1)

    def handle(self, *args: object, **opts: object) -> None:
        uvicorn.run(
            "madoguchi.config.asgi:application",
            host=str(opts["host"]),
            port=int(opts["port"]),  # type: ignore[call-overload]
            workers=int(opts["workers"]),  # type: ignore[call-overload]
            log_level="info",
            timeout_graceful_shutdown=2,
        )
