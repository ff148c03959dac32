"""The inbox API: bearer tokens, workspace isolation, lists, pagination, replies and changes."""

from __future__ import annotations

import pytest

from madoguchi.accounts import actions as account_actions
from madoguchi.accounts.tests.api_client import api_fixture  # noqa: F401
from madoguchi.inbox import actions
from madoguchi.inbox.models import Direction, Outbox, Status

pytestmark = pytest.mark.django_db


def conversation_of(cast, text="help", **kw):
    return cast.inbound(text, **kw).message.conversation


def test_api_needs_a_valid_bearer_token(cast, client):
    conv = conversation_of(cast)
    url = f"/api/v1/conversations/{conv.pk}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer mdg_not-a-token"}).status_code == 401
    token, raw = account_actions.do_create_token(cast.agent)
    assert client.get(url, headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    account_actions.do_revoke_token(token)
    assert client.get(url, headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def test_a_logged_in_session_is_not_enough_for_the_api(cast, client_for):
    conv = conversation_of(cast)
    assert client_for(cast.agent).get(f"/api/v1/conversations/{conv.pk}").status_code == 401


def test_deactivated_user_token_stops_working(cast, client):
    _token, raw = account_actions.do_create_token(cast.agent)
    cast.agent.is_active = False
    cast.agent.save()
    assert client.get("/api/v1/conversations", headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def test_another_workspace_gets_404_for_our_conversation(cast, api):
    conv = conversation_of(cast)
    base = f"/api/v1/conversations/{conv.pk}"
    assert api(cast.agent_b, "get", base).status_code == 404
    assert api(cast.agent_b, "get", base + "/messages").status_code == 404
    assert api(cast.agent_b, "post", base + "/messages", {"kind": "note", "text": "x"}).status_code == 404
    assert api(cast.agent_b, "patch", base, {"status": "resolved"}).status_code == 404
    conv.refresh_from_db()
    assert conv.status == Status.NEW and conv.message_count == 1


def test_another_workspace_sees_nothing_of_ours_in_lists_or_search(cast, api):
    conversation_of(cast, "返品したいです secret-order-77")
    theirs = conversation_of(cast, "their own question", account=cast.account_b)
    for params in ({"view": "all"}, {"view": "todo"}, {"view": "all", "q": "返品"}, {"view": "all", "q": "secret-order-77"}):
        body = api(cast.agent_b, "get", "/api/v1/conversations", **params).json()
        assert {c["id"] for c in body["items"]} <= {theirs.pk}, params
    assert [c["id"] for c in api(cast.agent_b, "get", "/api/v1/conversations", view="all").json()["items"]] == [theirs.pk]


def test_list_items_carry_a_summary_but_never_messages(cast, api):
    conv = conversation_of(cast, "Where is my parcel?")
    actions.do_set_labels(conv, ["shipping"])
    body = api(cast.agent, "get", "/api/v1/conversations").json()
    (item,) = body["items"]
    assert set(item) == {
        "id", "status", "priority", "subject", "preview", "contact", "channel", "channel_account_id",
        "assignee", "labels", "last_message_at", "waiting_since",
    }
    assert item["contact"] == {"id": conv.contact_id, "name": "Yui Sato"}
    assert item["channel"] == "internal" and item["labels"] == ["shipping"]
    assert item["preview"] == "Where is my parcel?" and body["next_cursor"] == ""


def test_filters_match_the_inbox_views(cast, api):
    urgent = conversation_of(cast, "urgent", customer="u")
    actions.do_set_priority(urgent, 3)
    labelled = conversation_of(cast, "labelled", customer="l")
    actions.do_set_labels(labelled, ["vip"])
    mine = conversation_of(cast, "mine", customer="m")
    actions.do_assign(mine, assignee=cast.agent, team=None, actor=cast.agent)

    def ids(**params):
        return {c["id"] for c in api(cast.agent, "get", "/api/v1/conversations", **params).json()["items"]}

    assert ids(priority=3) == {urgent.pk}
    assert ids(label="vip") == {labelled.pk}
    assert ids(view="mine") == {mine.pk}
    assert ids(view="unassigned") == {urgent.pk, labelled.pk}
    assert ids(channel="email") == set()
    assert ids(q="labelled") == {labelled.pk}
    assert api(cast.agent, "get", "/api/v1/conversations", view="nonsense").status_code == 422
    assert api(cast.agent, "get", "/api/v1/conversations", priority=9).status_code == 422


def test_pagination_walks_every_conversation_exactly_once(cast, api):
    expected = {conversation_of(cast, f"question {n}", customer=f"c{n}").pk for n in range(7)}
    seen: list[int] = []
    cursor = ""
    for _page in range(10):
        body = api(cast.agent, "get", "/api/v1/conversations", view="all", limit=3, cursor=cursor).json()
        seen += [c["id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7 and set(seen) == expected


def test_a_bad_cursor_is_a_400_with_a_message(cast, api):
    response = api(cast.agent, "get", "/api/v1/conversations", cursor="not-a-cursor")
    assert response.status_code == 400
    assert "cursor" in response.json()["detail"]


@pytest.mark.parametrize("count", [3, 30])
def test_conversation_list_query_count_does_not_grow_with_the_page(cast, api, count, django_assert_max_num_queries):
    for n in range(count):
        conv = conversation_of(cast, f"q{n}", customer=f"k{n}")
        actions.do_set_labels(conv, ["a", "b"])
        actions.do_assign(conv, assignee=cast.agent2, team=None, actor=cast.manager)
    api(cast.agent, "get", "/api/v1/conversations")  # creates the token outside the count
    # auth (token lookup, last_used_at), the page, its labels
    with django_assert_max_num_queries(4):
        body = api(cast.agent, "get", "/api/v1/conversations", view="all", limit=100).json()
    assert len(body["items"]) == count


def test_messages_are_newest_first_with_a_before_cursor(cast, api):
    conv = conversation_of(cast, "m0", customer="h")
    for n in range(1, 5):
        cast.inbound(f"m{n}", customer="h")
    url = f"/api/v1/conversations/{conv.pk}/messages"
    first = api(cast.agent, "get", url, limit=3).json()
    assert [m["text"] for m in first["items"]] == ["m4", "m3", "m2"]
    second = api(cast.agent, "get", url, limit=3, before=first["next_before"]).json()
    assert [m["text"] for m in second["items"]] == ["m1", "m0"] and second["next_before"] is None
    assert api(cast.agent, "get", url, before="x").status_code == 422


def test_reply_and_note_through_the_api(cast, api):
    conv = conversation_of(cast)
    url = f"/api/v1/conversations/{conv.pk}/messages"
    reply = api(cast.agent, "post", url, {"kind": "reply", "text": "We are on it"})
    assert reply.status_code == 201 and reply.json()["direction"] == Direction.OUTBOUND
    assert reply.json()["author"] == {"id": cast.agent.pk, "name": "Agent"}
    assert Outbox.objects.filter(message_id=reply.json()["id"]).exists()
    note = api(cast.agent, "post", url, {"kind": "note", "text": "customer is a VIP"})
    assert note.status_code == 201 and note.json()["direction"] == Direction.NOTE
    conv.refresh_from_db()
    assert conv.status == Status.PENDING and conv.assignee == cast.agent
    assert api(cast.agent, "post", url, {"kind": "reply", "text": "   "}).status_code == 400
    assert api(cast.agent, "post", url, {"kind": "shout", "text": "hi"}).status_code == 422
    assert api(cast.agent, "post", url, {"text": "hi"}).status_code == 422


def test_patch_changes_status_priority_and_labels(cast, api):
    conv = conversation_of(cast)
    url = f"/api/v1/conversations/{conv.pk}"
    response = api(cast.agent, "patch", url, {"status": "resolved", "priority": 2, "labels": ["billing", "vip"]})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "resolved" and body["priority"] == 2 and body["labels"] == ["billing", "vip"]
    assert api(cast.agent, "patch", url, {"status": "snoozed"}).status_code == 400
    assert api(cast.agent, "patch", url, {"priority": 7}).status_code == 422


def test_agent_cannot_reassign_a_colleagues_conversation(cast, api):
    conv = conversation_of(cast)
    url = f"/api/v1/conversations/{conv.pk}"
    assert api(cast.agent, "patch", url, {"assignee": cast.agent.pk}).json()["assignee"]["id"] == cast.agent.pk
    assert api(cast.agent2, "patch", url, {"assignee": cast.agent2.pk}).status_code == 403
    assert api(cast.agent2, "patch", url, {"assignee": None}).status_code == 403
    assert api(cast.agent, "patch", url, {"assignee": cast.agent2.pk}).status_code == 403
    conv.refresh_from_db()
    assert conv.assignee == cast.agent
    moved = api(cast.manager, "patch", url, {"assignee": cast.agent2.pk, "team": cast.team.pk}).json()
    assert moved["assignee"]["id"] == cast.agent2.pk and moved["team"]["id"] == cast.team.pk
    assert api(cast.manager, "patch", url, {"assignee": cast.agent_b.pk}).status_code == 400


def test_openapi_schema_and_docs_load(client):
    schema = client.get("/api/v1/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/api/v1/conversations",
        "/api/v1/conversations/{conversation_id}",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/contacts/{contact_id}",
        "/api/v1/contacts/{contact_id}/merge",
        "/api/v1/ingest/{channel_account_id}",
        "/api/v1/users",
        "/api/v1/teams",
        "/api/v1/webhooks",
    } <= paths
    assert "BearerToken" in schema["components"]["securitySchemes"]
    assert client.get("/api/v1/docs").status_code == 200
