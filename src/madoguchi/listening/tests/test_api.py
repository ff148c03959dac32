"""Listening API: the stream with triage, dismiss and respond, scoped to the token's workspace."""

from django.test import Client
from django.utils import timezone

from madoguchi.accounts import actions as account_actions
from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.ingest.actions import do_ingest


def auth(user) -> dict:
    _token, raw = account_actions.do_create_token(user)
    return {"Authorization": f"Bearer {raw}"}


def capture(account, text: str, ext: str):
    item = InboundItem(
        external_id=ext, author=InboundAuthor(external_id="u" + ext, handle="u" + ext), text=text,
        created_at=timezone.now(), public=True, route="stream",
    )
    return do_ingest(account, item).post


def test_stream_dismiss_and_respond_over_the_api(cast, rules):
    calm = capture(cast.account, "iphone colours?", "1")
    urgent = capture(cast.account, "iphone down, no service at all, outage!!!", "2")
    client, headers = Client(), auth(cast.agent)
    rows = client.get("/api/v1/listening/posts", headers=headers).json()
    assert [r["id"] for r in rows] == [urgent.pk, calm.pk]
    assert rows[0]["matched_rule"] == "phones" and rows[0]["urgency"] == 2
    assert client.post(f"/api/v1/listening/posts/{calm.pk}/dismiss", headers=headers).json()["status"] == "dismissed"
    done = client.post(f"/api/v1/listening/posts/{urgent.pk}/respond", headers=headers).json()
    assert done["conversation_id"]
    handled = client.get("/api/v1/listening/handled", headers=headers).json()
    assert handled == {"captured": 2, "answered": 1, "dismissed": 1, "left": 0, "share_handled": 1.0}


def test_api_never_crosses_workspaces(cast, rules):
    post = capture(cast.account, "iphone", "3")
    client, headers = Client(), auth(cast.agent_b)
    assert client.get("/api/v1/listening/posts", headers=headers).json() == []
    assert client.post(f"/api/v1/listening/posts/{post.pk}/dismiss", headers=headers).status_code == 404
    assert Client().get("/api/v1/listening/posts").status_code == 401
