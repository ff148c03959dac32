"""The `madoguchi` command: Django's management commands under one name.

    madoguchi demo [--port N]      a working helpdesk with sample traffic
    madoguchi serve [--port N]     the web server (ASGI, uvicorn)
    madoguchi worker               background tasks in lanes: default (outbox), bulk, stream
    madoguchi migrate              create or upgrade the database
    madoguchi createuser EMAIL --workspace NAME --role admin|manager|agent --password-stdin
    madoguchi token create EMAIL   print a new API token
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "madoguchi.config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["madoguchi", *sys.argv[1:]])


if __name__ == "__main__":
    main()
