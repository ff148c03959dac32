"""The visitor's live stream carries only the visitor's own conversation, in safe fields."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from madoguchi.connectors.webchat import live
from madoguchi.connectors.webchat.widget import access_visitor
from madoguchi.inbox import actions
from madoguchi.inbox import live as inbox_live
from madoguchi.inbox.events import publish
from madoguchi.inbox.models import Conversation
from madoguchi.inbox.tasks import deliver_outbox


def _publish(*args: object, **data: object) -> None:
    """Publish from the stream's event loop (another thread), leaving no connection behind."""
    try:
        publish(*args, **data)  # type: ignore[arg-type]
    finally:
        connection.close()


def _events(chunks: list[str]) -> list[tuple[str, dict]]:
    out = []
    for chunk in chunks:
        lines = dict(line.split(": ", 1) for line in chunk.strip().splitlines() if ": " in line and not line.startswith(":"))
        if "data" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


async def _read(stream, until: int, timeout: float = 3.0) -> list[str]:
    chunks: list[str] = []
    try:
        while len(_events(chunks)) < until:
            chunks.append(await asyncio.wait_for(stream.__anext__(), timeout))
    except TimeoutError:
        pass
    return chunks


@pytest.mark.django_db(transaction=True)
def test_the_visitor_gets_own_messages_replies_and_agent_typing_only(cast, widget, widget_b, visitor_for, monkeypatch):
    monkeypatch.setattr(inbox_live, "hub", inbox_live.Hub())
    alice, bob, beta = visitor_for(widget), visitor_for(widget), visitor_for(widget_b)
    alice.start(name="Alice")
    bob.start(name="Bob")
    beta.start(name="Beta")
    alice.say("alice asks")
    bob.say("bob's secret")
    beta.say("beta's secret")
    conv_a = Conversation.objects.get(channel_account=widget, thread_key=access_visitor(widget, alice.token).id)
    conv_b = Conversation.objects.get(channel_account=widget, thread_key=access_visitor(widget, bob.token).id)
    reply = actions.do_reply(conv_a, author=cast.agent, text="here is your answer")
    deliver_outbox.call(reply.outbox.pk)
    actions.do_add_note(conv_a, author=cast.agent, text="note: vip customer")
    actions.do_reply(conv_b, author=cast.agent, text="bob's reply")  # not delivered yet, and not Alice's
    visitor = access_visitor(widget, alice.token)
    assert visitor is not None

    async def scenario() -> tuple[list[str], list[str]]:
        stream = live.visitor_stream(widget, visitor, "0").__aiter__()
        try:
            replayed = await _read(stream, until=2)
            await sync_to_async(_publish)(cast.ws.pk, "presence", conv_a.pk, user=cast.agent.pk, name="Kenta", state="typing")
            await sync_to_async(_publish)(cast.ws.pk, "presence", conv_b.pk, user=cast.agent.pk, name="Kenta", state="typing")
            await sync_to_async(_publish)(cast.ws.pk, "presence", conv_a.pk, user=cast.agent.pk, name="Kenta", state="viewing")
            live_chunks = await _read(stream, until=2)
        finally:
            await stream.aclose()
        return replayed, live_chunks

    replayed, live_chunks = asyncio.run(scenario())
    events = _events(replayed)
    assert [(kind, d["text"]) for kind, d in events] == [("message", "alice asks"), ("message", "here is your answer")]
    assert set(events[1][1]) == {"id", "direction", "text", "created_at", "author", "attachments"}
    everything = "".join(replayed + live_chunks)
    for secret in ("bob", "beta", "vip", str(cast.agent.email)):
        assert secret not in everything
    assert _events(live_chunks) == [("typing", {"name": "Kenta"}), ("read", {"up_to": events[0][1]["id"]})]


@pytest.mark.django_db
def test_a_first_message_opens_a_conversation_the_stream_starts_following(cast, widget, visitor_for):
    alice = visitor_for(widget)
    alice.start(name="Alice")
    visitor = access_visitor(widget, alice.token)
    assert visitor is not None
    flt = live.VisitorFilter(widget, visitor)
    flt.load()
    assert flt.conversations == set()
    sent = alice.say("first words")
    conv = Conversation.objects.get(channel_account=widget)
    base = {"workspace_id": cast.ws.pk, "conversation_id": conv.pk}
    assert flt.translate({**base, "id": 1, "kind": "conversation.created", "data": {"channel": "webchat"}}) == []
    assert conv.pk in flt.conversations
    chunks = flt.translate({**base, "id": 2, "kind": "message.created", "data": {"message": sent["id"], "direction": "in"}})
    assert _events(chunks)[0][1]["text"] == "first words"
    # An event of another workspace with the same conversation id is never let through.
    other = {**base, "workspace_id": cast.ws_b.pk, "id": 3, "kind": "presence", "data": {"state": "typing", "name": "x"}}
    assert flt.translate(other) == []


@pytest.mark.django_db(transaction=True)
def test_the_hub_hands_a_visitor_only_events_of_its_own_conversation(cast, widget, widget_b, visitor_for):
    alice, bob, beta = visitor_for(widget), visitor_for(widget), visitor_for(widget_b)
    for v in (alice, bob, beta):
        v.start(name="V")
    visitor = access_visitor(widget, alice.token)
    assert visitor is not None
    hub = inbox_live.Hub()
    start = inbox_live._latest_id()
    agents: asyncio.Queue = asyncio.Queue()
    hub.subscribers[cast.ws.pk].add(agents)
    mine: asyncio.Queue = asyncio.Queue()
    hub.threads[(cast.ws.pk, widget.pk, visitor.id)] = {mine}

    # A busy workspace: other visitors, another channel (even one whose thread key is Alice's id),
    # presence pings, the other workspace; and Alice's own first message, reply and typing.
    bob.say("bob asks")
    beta.say("beta asks")
    cast.inbound("an email", customer="mail-cust")
    cast.inbound("same thread key, other account", customer="x-cust", thread_id=visitor.id)
    alice.say("alice asks")
    conv_a = Conversation.objects.get(channel_account=widget, thread_key=visitor.id)
    conv_b = Conversation.objects.exclude(pk=conv_a.pk).get(channel_account=widget)
    deliver_outbox.call(actions.do_reply(conv_b, author=cast.agent, text="to bob").outbox.pk)
    deliver_outbox.call(actions.do_reply(conv_a, author=cast.agent, text="to alice").outbox.pk)
    for conv in (conv_b, conv_a, conv_b):
        publish(cast.ws.pk, "presence", conv.pk, user=cast.agent.pk, name="Kenta", state="typing")

    rows = inbox_live._fetch_after(start, threads=True)
    hub.dispatch(rows)
    reached = [mine.get_nowait() for _ in range(mine.qsize())]
    own = [row["id"] for row in rows if row["conversation_id"] == conv_a.pk]
    assert {e["conversation_id"] for e in reached} == {conv_a.pk}
    assert [e["id"] for e in reached] == own
    assert {"conversation.created", "message.created", "message.delivery", "presence"} <= {e["kind"] for e in reached}
    # Agents' streams are unchanged: every event of their workspace, whatever its thread.
    assert agents.qsize() == len([row for row in rows if row["workspace_id"] == cast.ws.pk]) > 2 * len(own)


def test_a_visitor_subscription_leaves_nothing_behind_and_gets_nothing_of_other_threads():
    hub = inbox_live.Hub()

    async def scenario() -> None:
        hub.task = asyncio.create_task(asyncio.sleep(60))  # a tailer already running
        try:
            agent = await hub.subscribe(1)
            alice = await hub.subscribe(1, thread=(7, "v-alice"))
            alice_tab2 = await hub.subscribe(1, thread=(7, "v-alice"))
            bob = await hub.subscribe(1, thread=(7, "v-bob"))
            events = [
                {"id": 1, "workspace_id": 1, "kind": "presence", "conversation_id": 5, "data": {}, "thread": (7, "v-bob")},
                {"id": 2, "workspace_id": 1, "kind": "presence", "conversation_id": 4, "data": {}, "thread": (7, "v-alice")},
                {"id": 3, "workspace_id": 2, "kind": "presence", "conversation_id": 4, "data": {}, "thread": (7, "v-alice")},
                {"id": 4, "workspace_id": 1, "kind": "presence", "conversation_id": 6, "data": {}, "thread": (8, "v-alice")},
                {"id": 5, "workspace_id": 1, "kind": "label.created", "conversation_id": None, "data": {}, "thread": None},
            ]
            hub.dispatch(events)
            assert [alice.get_nowait()["id"] for _ in range(alice.qsize())] == [2]
            assert alice_tab2.qsize() == 1 and bob.qsize() == 1
            assert agent.qsize() == 4
            for queue in (alice, alice_tab2):
                hub.unsubscribe(1, queue, thread=(7, "v-alice"))
            hub.unsubscribe(1, bob, thread=(7, "v-bob"))
            assert hub.threads == {}
        finally:
            hub.task.cancel()

    asyncio.run(scenario())
