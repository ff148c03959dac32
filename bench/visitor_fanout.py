#!/usr/bin/env python3
"""What the live hub hands to web chat visitors' streams on a busy workspace, before and after
visitor streams followed only their own thread.

In one process, no server and no database: a Hub (inbox/live.py) with 50 agents' streams and
1,000 visitors' streams on one workspace; 20,000 events (messages, deliveries, presence pings)
spread over the 1,000 visitors' conversations and 500 conversations of other channels, dispatched
in batches of 500 as the tailer does, every queue drained after each batch as its stream would.

"before": each visitor subscribed to the whole workspace and filtered afterwards (the old
visitor_stream). "after": each visitor follows (account, visitor id) and gets only its own.
Prints events put into visitor queues (total and per visitor) and the hub's dispatch time.

    .venv/bin/python bench/visitor_fanout.py [--visitors 1000] [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def run(mode: str, visitors: int, events: int, agents: int = 50) -> dict[str, float]:
    from madoguchi.inbox.live import Hub

    hub = Hub()
    ws, account = 1, 7
    agent_queues: list[asyncio.Queue[dict[str, Any]]] = [asyncio.Queue() for _ in range(agents)]
    hub.subscribers[ws].update(agent_queues)
    visitor_queues = []
    for v in range(visitors):
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        if mode == "before":
            hub.subscribers[ws].add(queue)
        else:
            hub.threads.setdefault((ws, account, f"v{v}"), set()).add(queue)
        visitor_queues.append(queue)
    rng = random.Random(7)
    kinds = ["message.created", "message.delivery", "presence", "presence", "conversation.updated"]
    reached = 0
    dispatch_seconds = 0.0
    for start in range(0, events, 500):
        batch = []
        for i in range(start + 1, min(events, start + 500) + 1):
            conv = rng.randrange(visitors + 500)  # the last 500: email, X, LINE... conversations
            thread = (account, f"v{conv}") if conv < visitors else None
            batch.append({"id": i, "workspace_id": ws, "kind": rng.choice(kinds), "conversation_id": conv, "data": {}, "thread": thread})
        t0 = time.perf_counter()
        hub.dispatch(batch)
        dispatch_seconds += time.perf_counter() - t0
        for queue in visitor_queues:
            reached += queue.qsize()
            while not queue.empty():
                queue.get_nowait()
        for queue in agent_queues:
            while not queue.empty():
                queue.get_nowait()
    return {"reached": reached, "per_visitor": reached / visitors, "dispatch_ms": dispatch_seconds * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    os.environ.setdefault("MADOGUCHI_DATA_DIR", tempfile.mkdtemp(prefix="mdg-fanout-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "madoguchi.config.settings")
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    print(f"{args.visitors} visitors, 50 agents, {args.events} events on one workspace")
    print(f"{'':8} {'events into visitor queues':>27} {'per visitor':>12} {'hub dispatch':>13}")
    for mode in ("before", "after"):
        r = run(mode, args.visitors, args.events)
        print(f"{mode:8} {r['reached']:>27,.0f} {r['per_visitor']:>12.1f} {r['dispatch_ms']:>10.0f} ms")


if __name__ == "__main__":
    main()
