"""Live events reach only browsers of the same workspace, including on reconnect."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.test import RequestFactory

from madoguchi.inbox import live, views
from madoguchi.inbox.events import publish


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


async def _first_chunks(user, last_event_id: str, count: int, timeout: float = 2.0) -> list[str]:
    request = RequestFactory().get("/inbox/events/", HTTP_LAST_EVENT_ID=last_event_id)

    async def auser():
        return user

    request.auser = auser
    response = await views.events(request)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    stream = response.streaming_content.__aiter__()
    chunks = []
    try:
        for _ in range(count):
            chunks.append(await asyncio.wait_for(stream.__anext__(), timeout))
    except TimeoutError:
        pass
    finally:
        await stream.aclose()
    return [c.decode() if isinstance(c, bytes) else c for c in chunks]


@pytest.mark.django_db(transaction=True)
def test_reconnecting_stream_replays_only_events_of_the_own_workspace(cast, monkeypatch):
    monkeypatch.setattr(live, "hub", live.Hub())
    conv_a = cast.inbound("alpha secret", customer="a1").message.conversation
    conv_b = cast.inbound("bravo", account=cast.account_b, customer="b1").message.conversation
    publish(cast.ws.pk, "presence", conv_a.pk, name="alpha-agent", state="typing")
    publish(cast.ws_b.pk, "presence", conv_b.pk, name="bravo-agent", state="typing")

    chunks = asyncio.run(_first_chunks(cast.agent_b, "0", count=10))
    events = [json.loads(c.split("data: ", 1)[1]) for c in chunks if "data: " in c]
    assert events, chunks
    assert {e["conversation"] for e in events} == {conv_b.pk}
    assert "alpha" not in "".join(chunks)

    chunks = asyncio.run(_first_chunks(cast.agent, "0", count=10))
    assert conv_a.pk in {
        json.loads(c.split("data: ", 1)[1])["conversation"] for c in chunks if "data: " in c
    }
    assert "bravo" not in "".join(chunks)


@pytest.mark.django_db
def test_event_stream_refuses_a_user_without_a_workspace(cast):
    from madoguchi.accounts.models import User

    stray = User.objects.create_user("stray@example.com", "pw-12345678")
    request = RequestFactory().get("/inbox/events/")

    async def auser():
        return stray

    request.auser = auser
    assert asyncio.run(views.events(request)).status_code == 401
