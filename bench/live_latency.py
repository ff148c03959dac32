#!/usr/bin/env python3
"""Time from an ingest call returning to its live event reaching a connected browser (SSE).

Starts `madoguchi serve` on a free port with a temporary data dir, opens the event stream as a
logged-in agent (a session made directly in the database), calls the ingest entry point 50 times
in this process (as a worker process would) and prints p50/p95 of the delay in milliseconds.

    .venv/bin/python bench/live_latency.py                      # SQLite (the tailer polls)
    .venv/bin/python bench/live_latency.py --postgres           # throw-away PostgreSQL (LISTEN/NOTIFY)
    .venv/bin/python bench/live_latency.py --database-url postgres://...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "src"), str(HERE)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def make_agent():
    """A workspace with an internal channel account and an agent; the agent's session cookie."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from madoguchi.accounts.models import Brand, Role, User, Workspace
    from madoguchi.connectors.models import ChannelAccount

    ws = Workspace.objects.create(name="Live bench", slug="live-bench")
    brand = Brand.objects.create(workspace=ws, name="Live")
    account = ChannelAccount.objects.create(workspace=ws, brand=brand, kind="internal", name="Live")
    agent = User(email="agent@live.example", workspace=ws, role=Role.AGENT)
    agent.set_unusable_password()
    agent.save()
    session = SessionStore()
    session[SESSION_KEY] = str(agent.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = agent.get_session_auth_hash()
    session.create()
    return account, {settings.SESSION_COOKIE_NAME: session.session_key}


def listen(url: str, cookies: dict, arrivals: queue.Queue, ready: threading.Event, stop: threading.Event) -> None:
    """Read the SSE stream; put (arrival time, message id) for each message.created event."""
    import httpx

    with httpx.Client(cookies=cookies, timeout=None) as client, client.stream("GET", url) as response:
        response.raise_for_status()
        try:
            for line in response.iter_lines():
                now = time.perf_counter()
                if line.startswith("retry:"):
                    ready.set()
                elif line.startswith("data:"):
                    data = json.loads(line[5:])
                    if data.get("kind") == "message.created":
                        arrivals.put((now, data.get("message")))
                if stop.is_set():
                    return
        except httpx.HTTPError:
            if not stop.is_set():
                raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="PostgreSQL database to use (default: SQLite in a temp dir)")
    parser.add_argument("--postgres", action="store_true", help="start a throw-away PostgreSQL cluster")
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="madoguchi-live."))
        env = {**os.environ, "MADOGUCHI_DATA_DIR": data_dir, "DJANGO_SETTINGS_MODULE": "madoguchi.config.settings",
               "LOG_LEVEL": "WARNING"}
        env.pop("DATABASE_URL", None)
        url = args.database_url
        if args.postgres and not url:
            from pgcluster import throwaway_postgres

            url = stack.enter_context(throwaway_postgres())
        if url:
            env["DATABASE_URL"] = url
        os.environ.update(env)
        if not url:
            os.environ.pop("DATABASE_URL", None)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.utils import timezone

        from madoguchi.connectors.base import InboundAuthor, InboundItem
        from madoguchi.ingest.actions import do_ingest

        call_command("migrate", verbosity=0)
        account, cookies = make_agent()
        port = free_port()
        madoguchi = str(Path(sys.executable).with_name("madoguchi"))
        server = subprocess.Popen([madoguchi, "serve", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(server.wait)
        stack.callback(server.terminate)
        base = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(base + "/login/", timeout=1)
                break
            time.sleep(0.1)
        arrivals: queue.Queue = queue.Queue()
        ready, stop = threading.Event(), threading.Event()
        reader = threading.Thread(target=listen, args=(base + "/inbox/events/", cookies, arrivals, ready, stop), daemon=True)
        reader.start()
        if not ready.wait(10):
            raise SystemExit("the event stream did not open")
        time.sleep(0.5)

        delays = []
        rng = random.Random(7)
        for k in range(args.count):
            item = InboundItem(
                external_id=f"live-{k}",
                author=InboundAuthor(external_id=f"cust-{k % 7}", handle=f"cust{k % 7}", display_name="Customer"),
                text="注文した商品がまだ届きません。 My order has not arrived.",
                created_at=timezone.now(),
            )
            result = do_ingest(account, item)
            returned = time.perf_counter()
            while True:
                at, message_id = arrivals.get(timeout=10)
                if message_id == result.message.pk:
                    break
            delays.append((at - returned) * 1000)
            time.sleep(rng.uniform(0.05, 0.3))  # arrivals at random phases of the tailer's cycle
        stop.set()
        engine = "PostgreSQL (LISTEN/NOTIFY)" if connection.vendor == "postgresql" else "SQLite (polling)"
        print(f"ingest -> SSE client, {engine}, {len(delays)} events: "
              f"p50 {pct(delays, 50):.1f} ms, p95 {pct(delays, 95):.1f} ms, max {max(delays):.1f} ms")
        connection.close()


if __name__ == "__main__":
    main()
