"""The rules editor: managers create, change and delete rules with a live preview; agents only read."""

import datetime as dt

import pytest
from django.utils import timezone

from madoguchi.accounts import actions as account_actions
from madoguchi.accounts.models import AuditLog, Role
from madoguchi.conftest import PASSWORD, csrf_post
from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.ingest.actions import do_ingest_posts
from madoguchi.ingest.models import Post
from madoguchi.listening import actions
from madoguchi.listening.models import ListeningRule


def form(**fields):
    data = {"name": "", "brand": "", "is_active": "on", "accounts": "", "any_of": "", "all_of": "", "none_of": "", "languages": ""}
    data.update(fields)
    return data


@pytest.fixture
def recent(cast):
    """Posts captured on two channels before any rule existed (without rules, everything is captured)."""
    x = ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="X")
    texts = [
        ("iPhone battery dies in an hour", "en"),
        ("my iphone screen cracked", "en"),
        ("ｱｲﾌｫﾝの電池がすぐ切れる", "ja"),
        ("iphone 求人 募集中", "ja"),
        ("lunch was great", "en"),
        ("iphoneography is an art", "en"),  # not the word iphone
        ("iphone repair shop review", "en"),
        ("iphone dropped in the bath", "en"),
        ("new iphone cases in store", "en"),
    ]
    now = timezone.now()
    items = [
        InboundItem(
            external_id=f"r{i}", author=InboundAuthor(external_id=f"u{i}", handle=f"user{i}"), text=text,
            created_at=now, public=True, route="stream", language=lang,
        )
        for i, (text, lang) in enumerate(texts)
    ]
    do_ingest_posts(x, items)
    on_line = do_ingest_posts(cast.account, [InboundItem(
        external_id="line1", author=InboundAuthor(external_id="l1", handle="l1"), text="iphone on another channel",
        public=True, route="stream",
    )])[0].post
    old = do_ingest_posts(x, [InboundItem(
        external_id="old", author=InboundAuthor(external_id="o1", handle="o1"), text="iphone from last week",
        public=True, route="stream",
    )])[0].post
    Post.objects.filter(pk=old.pk).update(captured_at=now - dt.timedelta(days=2))
    return {"x": x, "line": on_line}


def preview(client, **fields):
    return csrf_post(client, "/listening/rules/preview/", form(**fields)).json()


def test_preview_counts_what_the_rule_would_have_matched_in_the_last_day(cast, recent, client_for):
    client = client_for(cast.manager)
    result = preview(client, any_of="アイフォン\niphone")
    # 7 posts with the word (half-width katakana too), the other channel's one, not the 2-day-old one.
    assert result["ok"] and result["count"] == 8
    assert len(result["sample"]) == 5
    assert "8 posts in the last 24 hours" in result["summary"]
    assert preview(client, any_of="iphone", none_of="求人")["count"] == 6
    assert preview(client, any_of="iphone", languages="ja")["count"] == 1
    assert preview(client, any_of="iphone", channels="x")["count"] == 6
    assert preview(client, any_of='"battery dies"')["count"] == 1  # an exact phrase, quotes dropped
    assert preview(client, all_of="iphone\nbath")["count"] == 1


def test_preview_shows_errors_per_field(cast, recent, client_for):
    client = client_for(cast.manager)
    result = preview(client, none_of="求人")
    assert not result["ok"] and "exclusions alone" in result["errors"]["__all__"][0]
    result = preview(client, any_of="iphone", languages="japanese!")
    assert not result["ok"] and "japanese!" in result["errors"]["languages"][0]
    result = preview(client, any_of="x" * 201)
    assert "longer than 200" in result["errors"]["any_of"][0]


def test_preview_counts_only_the_workspace_posts(cast, recent, client_for):
    manager_b = account_actions.do_create_user("manager@beta.example", workspace=cast.ws_b, role=Role.MANAGER, password=PASSWORD)
    result = preview(client_for(manager_b), any_of="iphone")
    assert result["ok"] and result["count"] == 0 and result["sample"] == []


def test_manager_creates_a_rule_and_ingestion_uses_it_at_once(cast, recent, client_for):
    client = client_for(cast.manager)
    response = csrf_post(client, "/listening/rules/new/", form(name="phones", brand=cast.brand.pk, any_of="iphone\nアイフォン", none_of="求人", channels="x"))
    assert response.status_code == 302
    rule = ListeningRule.objects.get(workspace=cast.ws, name="phones")
    assert rule.any_of == ["iphone", "アイフォン"] and rule.none_of == ["求人"] and rule.channels == ["x"]
    log = AuditLog.objects.get(workspace=cast.ws, action="listening.rule.create")
    assert log.actor == cast.manager and log.data["after"]["any_of"] == ["iphone", "アイフォン"]
    results = do_ingest_posts(recent["x"], [
        InboundItem(external_id="n1", author=InboundAuthor(external_id="u9"), text="iphone again", public=True, route="stream"),
        InboundItem(external_id="n2", author=InboundAuthor(external_id="u9"), text="lunch", public=True, route="stream"),
    ])
    assert [r.created for r in results] == [True, False] and results[0].post.matched_rule == rule


def test_manager_edits_and_deletes_with_an_audit_trail(cast, recent, client_for):
    client = client_for(cast.manager)
    rule = actions.do_save_rule(cast.ws, cast.brand, {"name": "phones", "any_of": ["iphone"]})
    page = client.get(f"/listening/rules/{rule.pk}/").content.decode()
    assert "iphone</textarea>" in page
    csrf_post(client, f"/listening/rules/{rule.pk}/", form(name="phones", brand=cast.brand.pk, any_of="iphone\nandroid", languages="en ja"))
    rule.refresh_from_db()
    assert rule.any_of == ["iphone", "android"] and rule.languages == ["en", "ja"]
    change = AuditLog.objects.get(action="listening.rule.update")
    assert change.actor == cast.manager and change.data["before"]["any_of"] == ["iphone"]
    listing = client.get("/listening/rules/").content.decode()
    assert "Recent changes" in listing and "any_of, languages" in listing
    csrf_post(client, f"/listening/rules/{rule.pk}/delete/")
    assert not ListeningRule.objects.filter(pk=rule.pk).exists()
    assert AuditLog.objects.get(action="listening.rule.delete").data["before"]["name"] == "phones"


def test_invalid_rule_is_shown_inline_and_not_saved(cast, client_for):
    client = client_for(cast.manager)
    actions.do_save_rule(cast.ws, cast.brand, {"name": "phones", "any_of": ["iphone"]})
    page = csrf_post(client, "/listening/rules/new/", form(name="phones", brand=cast.brand.pk, any_of="android")).content.decode()
    assert "a rule named phones already exists" in page
    page = csrf_post(client, "/listening/rules/new/", form(name="noise", brand=cast.brand.pk, none_of="spam")).content.decode()
    assert "exclusions alone match nothing" in page
    assert list(ListeningRule.objects.filter(workspace=cast.ws).values_list("name", flat=True)) == ["phones"]


def test_agents_read_rules_but_cannot_change_them(cast, client_for):
    rule = actions.do_save_rule(cast.ws, cast.brand, {"name": "phones", "any_of": ["iphone"]})
    agent = client_for(cast.agent)
    assert "phones" in agent.get("/listening/rules/").content.decode()
    assert agent.get("/listening/rules/new/").status_code == 403
    assert agent.get(f"/listening/rules/{rule.pk}/").status_code == 403
    assert csrf_post(agent, f"/listening/rules/{rule.pk}/delete/").status_code == 403
    assert csrf_post(agent, "/listening/rules/preview/", form(any_of="iphone")).status_code == 403
    assert ListeningRule.objects.filter(pk=rule.pk).exists()


def test_another_workspace_cannot_see_or_touch_our_rules(cast, client_for):
    rule = actions.do_save_rule(cast.ws, cast.brand, {"name": "phones", "any_of": ["iphone"]})
    manager_b = account_actions.do_create_user("manager@beta.example", workspace=cast.ws_b, role=Role.MANAGER, password=PASSWORD)
    client = client_for(manager_b)
    assert "phones" not in client.get("/listening/rules/").content.decode()
    assert client.get(f"/listening/rules/{rule.pk}/").status_code == 404
    assert csrf_post(client, f"/listening/rules/{rule.pk}/delete/").status_code == 404
    assert csrf_post(client, f"/listening/rules/{rule.pk}/", form(name="x", brand=cast.brand.pk, any_of="y")).status_code == 404
    # Our brand is not a choice in their form.
    page = csrf_post(client, "/listening/rules/new/", form(name="x", brand=cast.brand.pk, any_of="y")).content.decode()
    assert "Select a valid choice" in page
    assert ListeningRule.objects.get(pk=rule.pk).name == "phones"


def test_a_rule_changed_by_another_process_is_rebuilt_while_the_old_one_serves(cast, monkeypatch):
    from madoguchi.listening.models import RuleSetVersion

    actions.do_save_rule(cast.ws, cast.brand, {"name": "phones", "any_of": ["iphone"]})
    old = actions.matcher_for(cast.ws.pk)
    # Another process changes the rules: here only the version in the database moves.
    ListeningRule.objects.filter(workspace=cast.ws).update(any_of=["android"])
    RuleSetVersion.objects.filter(workspace=cast.ws).update(version=12345)
    rebuilt = []
    monkeypatch.setattr(actions, "REBUILD_IN_BACKGROUND", lambda ws, v: rebuilt.append((ws, v)))
    monkeypatch.setattr(actions, "CHECK_SECONDS", 0)
    assert actions.matcher_for(cast.ws.pk) is old  # ingestion goes on with the old automaton
    assert rebuilt == [(cast.ws.pk, 12345)]
    actions._building.clear()
    actions._rebuild(cast.ws.pk, 12345)  # what the background thread does
    new = actions.matcher_for(cast.ws.pk)
    assert new is not old and new.match("android") and not new.match("iphone")
