"""The live tailer never loses an event that commits after a later one (several writers on PostgreSQL)."""

from __future__ import annotations

import asyncio

from madoguchi.inbox.live import Hub


def _event(event_id: int, workspace_id: int = 1) -> dict:
    return {"id": event_id, "workspace_id": workspace_id, "kind": "presence", "conversation_id": 1, "data": {}}


def test_an_id_skipped_by_a_slower_transaction_is_looked_for_again_and_delivered_once():
    hub = Hub()
    hub.last_id = 9
    queue: asyncio.Queue = asyncio.Queue()
    hub.subscribers[1].add(queue)

    hub.dispatch([_event(11)])  # 10 is still in an uncommitted transaction
    assert hub.last_id == 11 and set(hub.gaps) == {10}

    hub.dispatch([_event(10)])  # it commits: delivered, and no longer looked for
    assert hub.gaps == {}
    assert [queue.get_nowait()["id"] for _ in range(queue.qsize())] == [11, 10]
    assert hub.last_id == 11
