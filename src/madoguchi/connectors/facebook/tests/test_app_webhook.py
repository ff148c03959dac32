"""One Meta app, several pages: the app-level webhook URL answers Meta's handshake for any
account's verify token, checks each entry's signature with its own account's app secret, and
hands each entry to the account of its page (or Instagram account); what it cannot place is
quarantined with the reason, never dropped."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from madoguchi.connectors.facebook import graph
from madoguchi.connectors.facebook.fake import FakeGraph
from madoguchi.connectors.facebook.tests.conftest import IG, KEN, PAGE, YUI
from madoguchi.connectors.facebook.tests.meta import run_queued
from madoguchi.connectors.models import ChannelAccount
from madoguchi.inbox.models import Message
from madoguchi.ingest.models import Quarantine

pytestmark = pytest.mark.django_db
PAGE_A, PAGE_B, PAGE_UNKNOWN = PAGE, "209876543210987", "309999999999999"
IG_A, IG_B = IG, "17841400000000002"


@pytest.fixture
def fake(meta):
    return meta


def make_account(cast, fake: FakeGraph, kind: str, page_id: str, *, ig_user_id: str = "", workspace_b: bool = False, secret: str = "") -> ChannelAccount:
    config, secrets = fake.account_settings(kind)
    config["page_id"] = page_id
    if ig_user_id:
        config["ig_user_id"] = ig_user_id
    if secret:
        secrets = {**secrets, "app_secret": secret, "verify_token": f"token-{page_id}"}
    ws, brand = (cast.ws_b, cast.account_b.brand) if workspace_b else (cast.ws, cast.brand)
    return ChannelAccount.objects.create(workspace=ws, brand=brand, kind=kind, name=f"{kind} {page_id}", config=config, secrets=secrets)


def post(kind: str, body: bytes, signature: str | None):
    headers: dict[str, Any] = {} if signature is None else {"HTTP_X_HUB_SIGNATURE_256": signature}
    return Client(enforce_csrf_checks=True).post(f"/connectors/{kind}/webhook/", data=body, content_type="application/json", **headers)


def page_entry(fake: FakeGraph, page_id: str, user: str, text: str) -> dict:
    post_id = f"{page_id}_{fake.next_id()}"
    fake.posts[post_id] = {"id": post_id, "message": "新商品"}
    return {**fake.feed(fake.comment(user, post_id, text)), "id": page_id}


def test_the_handshake_answers_for_any_connected_account_s_verify_token(cast, fake):
    make_account(cast, fake, "facebook", PAGE_A, secret="secret-a")
    make_account(cast, fake, "facebook", PAGE_B, secret="secret-b", workspace_b=True)
    for token in (f"token-{PAGE_A}", f"token-{PAGE_B}"):
        answer = Client().get("/connectors/facebook/webhook/", {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"})
        assert answer.status_code == 200 and answer.content == b"1158201444"
    bad = Client().get("/connectors/facebook/webhook/", {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"})
    assert bad.status_code == 403 and b"1158201444" not in bad.content


def test_one_delivery_for_two_pages_reaches_each_page_s_account_and_nothing_crosses(cast, fake):
    a = make_account(cast, fake, "facebook", PAGE_A)
    b = make_account(cast, fake, "facebook", PAGE_B, workspace_b=True)  # the same Meta app, another workspace
    body, signature = fake.delivery(page_entry(fake, PAGE_A, YUI, "Aのページへ"), page_entry(fake, PAGE_B, KEN, "Bのページへ"))
    answer = post("facebook", body, signature)
    assert answer.status_code == 200 and answer.content == b"EVENT_RECEIVED"
    assert not Message.objects.exists() and DBTaskResult.objects.count() == 2  # durable before the 200
    assert [r["created"] for r in run_queued()] == [1, 1]
    assert list(Message.objects.filter(channel_account=a).values_list("text", flat=True)) == ["Aのページへ"]
    assert list(Message.objects.filter(channel_account=b).values_list("text", flat=True)) == ["Bのページへ"]
    assert Message.objects.get(channel_account=b).workspace_id == cast.ws_b.pk


def test_an_entry_for_a_page_no_account_has_is_quarantined_and_the_others_still_arrive(cast, fake):
    a = make_account(cast, fake, "facebook", PAGE_A)
    body, signature = fake.delivery(page_entry(fake, PAGE_A, YUI, "届く"), page_entry(fake, PAGE_UNKNOWN, KEN, "迷子"))
    assert post("facebook", body, signature).status_code == 200
    run_queued()
    assert Message.objects.get(channel_account=a).text == "届く"
    held = Quarantine.objects.get()
    assert PAGE_UNKNOWN in held.reason and "no connected account" in held.reason
    assert json.loads(held.payload)["changes"][0]["value"]["message"] == "迷子"  # the entry, kept whole


def test_an_entry_whose_account_has_another_app_secret_is_quarantined_not_ingested(cast, fake):
    a = make_account(cast, fake, "facebook", PAGE_A)  # signed with the fake's secret
    b = make_account(cast, fake, "facebook", PAGE_B, secret="another-app-secret")
    body, signature = fake.delivery(page_entry(fake, PAGE_A, YUI, "正しい"), page_entry(fake, PAGE_B, KEN, "署名違い"))
    assert post("facebook", body, signature).status_code == 200
    run_queued()
    assert Message.objects.filter(channel_account=a).count() == 1
    assert not Message.objects.filter(channel_account=b).exists()
    held = Quarantine.objects.get(channel_account=b)
    assert "signature does not match" in held.reason
    b.refresh_from_db()
    assert "signature" in b.last_error


def test_unsigned_or_unknown_signed_deliveries_are_refused_and_nothing_is_kept(cast, fake):
    make_account(cast, fake, "facebook", PAGE_A)
    body, _ = fake.delivery(page_entry(fake, PAGE_A, YUI, "hello"))
    assert post("facebook", body, None).status_code == 401
    assert post("facebook", body, graph.sign("not-our-app", body)).status_code == 403
    assert post("facebook", b"not json", graph.sign("not-our-app", b"not json")).status_code == 403
    assert not DBTaskResult.objects.exists() and not Quarantine.objects.exists()


def test_a_signed_body_that_is_not_a_delivery_is_quarantined_under_the_signing_account(cast, fake):
    a = make_account(cast, fake, "facebook", PAGE_A)
    assert post("facebook", b'{"object": "page"}', graph.sign(fake.app_secret, b'{"object": "page"}')).status_code == 200
    assert Quarantine.objects.get(channel_account=a).reason.startswith("Facebook webhook body (app-level URL)")


def test_instagram_s_app_level_url_routes_by_the_instagram_account_id(cast, fake):
    a = make_account(cast, fake, "instagram", PAGE_A, ig_user_id=IG_A)
    b = make_account(cast, fake, "instagram", PAGE_B, ig_user_id=IG_B)
    media = fake.ig_media("新作")
    entries = [{**fake.ig_changes("comments", fake.ig_comment(YUI, media, "Aへのコメント")), "id": IG_A}, {**fake.ig_changes("comments", fake.ig_comment(KEN, media, "Bへのコメント")), "id": IG_B}]
    body, signature = fake.delivery(*entries, object_="instagram")
    assert post("instagram", body, signature).status_code == 200
    run_queued()
    assert Message.objects.get(channel_account=a).text == "Aへのコメント"
    assert Message.objects.get(channel_account=b).text == "Bへのコメント"
    # A `page` delivery is not an Instagram one.
    page_body, page_signature = fake.delivery(page_entry(fake, PAGE_A, YUI, "x"))
    assert post("instagram", page_body, page_signature).status_code == 200
    assert "expected 'instagram'" in Quarantine.objects.get().reason


def test_the_settings_page_shows_the_app_level_url_to_admins_only(cast, fake, client_for):
    a = make_account(cast, fake, "facebook", PAGE_A)
    page = client_for(cast.admin).get(f"/connectors/facebook/{a.pk}/settings/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "http://testserver/connectors/facebook/webhook/" in html and f"/connectors/facebook/{a.pk}/webhook/" in html
    assert PAGE_A in html
    assert client_for(cast.agent).get(f"/connectors/facebook/{a.pk}/settings/").status_code in {302, 403}
    assert client_for(cast.agent_b).get(f"/connectors/facebook/{a.pk}/settings/").status_code in {302, 403, 404}
    ig = make_account(cast, fake, "instagram", PAGE_A, ig_user_id=IG_A)
    assert "/connectors/instagram/webhook/" in client_for(cast.admin).get(f"/connectors/instagram/{ig.pk}/settings/").content.decode()
