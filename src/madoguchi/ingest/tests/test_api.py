"""The ingest API: admins push normalized items; replays are harmless, bad items are quarantined."""

import base64

import pytest

from madoguchi.accounts.tests.api_client import api_fixture  # noqa: F401
from madoguchi.inbox.models import Message
from madoguchi.ingest.models import Quarantine

pytestmark = pytest.mark.django_db


def item(external_id="line-1", **extra):
    return {
        "external_id": external_id,
        "author": {"external_id": "U123", "display_name": "Yui Sato"},
        "text": "注文した商品が届きません",
        "created_at": "2025-06-01T10:00:00+09:00",
        **extra,
    }


def url(cast, account=None):
    return f"/api/v1/ingest/{(account or cast.account).pk}"


def test_ingest_creates_a_conversation_and_a_replay_returns_the_same_ids(cast, api):
    first = api(cast.admin, "post", url(cast), item())
    assert first.status_code == 201
    ids = first.json()
    assert ids["created"] is True and ids["conversation_id"] and ids["message_id"]
    replay = api(cast.admin, "post", url(cast), item())
    assert replay.status_code == 200
    assert replay.json() == {**ids, "created": False}
    assert Message.objects.filter(external_id="line-1").count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"external_id": "x"},  # no author
        item(text=123),
        item(created_at="2025-06-01T10:00:00"),  # naive time
        item(surprise="field"),
    ],
)
def test_invalid_items_are_quarantined_with_the_reason(cast, api, body):
    response = api(cast.admin, "post", url(cast), body)
    assert response.status_code == 422
    quarantine = Quarantine.objects.get(pk=response.json()["quarantine_id"])
    assert quarantine.workspace_id == cast.ws.pk and quarantine.reason == response.json()["detail"]
    assert not Message.objects.filter(channel_account=cast.account).exists()


def test_a_body_that_is_not_json_is_quarantined_as_it_came(cast, api):
    response = api(cast.admin, "post", url(cast), raw=b"{not json")
    assert response.status_code == 422
    assert Quarantine.objects.get(pk=response.json()["quarantine_id"]).payload == "{not json"


def test_attachments_arrive_base64_encoded(cast, api):
    png = b"\x89PNG\r\n\x1a\nfake"
    attachment = {"filename": "shot.png", "content_type": "image/png", "content": base64.b64encode(png).decode()}
    response = api(cast.admin, "post", url(cast), item(attachments=[attachment]))
    assert response.status_code == 201
    stored = Message.objects.get(pk=response.json()["message_id"]).attachments.get()
    assert stored.file.read() == png
    bad = api(cast.admin, "post", url(cast), item("line-2", attachments=[{**attachment, "content": "%%%"}]))
    assert bad.status_code == 422 and "base64" in bad.json()["detail"]


def test_only_admins_ingest_and_only_into_their_own_accounts(cast, api):
    assert api(cast.agent, "post", url(cast), item()).status_code == 403
    assert api(cast.manager, "post", url(cast), item()).status_code == 403
    assert api(cast.admin, "post", url(cast, cast.account_b), item()).status_code == 404
    assert not Message.objects.exists() and not Quarantine.objects.exists()
