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
