"""The widget API: only allowed websites, only the visitor's own conversations, text only, limits."""

from __future__ import annotations

import pytest
from django.test import Client

from madoguchi.conftest import csrf_post
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webchat.tests.conftest import SHOP
from madoguchi.contacts.models import Identity
from madoguchi.inbox import actions
from madoguchi.inbox.models import Attachment, Conversation, Message, MessageEvent
from madoguchi.inbox.tasks import deliver_outbox

pytestmark = pytest.mark.django_db

API = "/connectors/webchat/api/{key}/{path}"


def _reply(conv: Conversation, agent, text: str) -> Message:
    message = actions.do_reply(conv, author=agent, text=text)
    assert deliver_outbox.call(message.outbox.pk) == "sent"
    return message


def test_the_script_tag_loads_the_widget():
    response = Client().get("/connectors/webchat/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    body = response.content.decode()
    assert "attachShadow" in body and "textContent" in body and "innerHTML = m" not in body


def test_unknown_key_and_foreign_website_get_nothing(widget):
    client = Client()
    assert client.get(API.format(key="wk_nope", path="config/"), HTTP_ORIGIN=SHOP).status_code == 404
    evil = client.get(API.format(key=widget.config["widget_key"], path="config/"), HTTP_ORIGIN="https://evil.example")
    assert evil.status_code == 403
    assert "Access-Control-Allow-Origin" not in evil
    no_origin = client.get(API.format(key=widget.config["widget_key"], path="config/"))
    assert no_origin.status_code == 403
    preflight = client.options(API.format(key=widget.config["widget_key"], path="messages/"), HTTP_ORIGIN="https://evil.example")
    assert preflight.status_code == 403 and "Access-Control-Allow-Origin" not in preflight


def test_allowed_website_gets_cors_headers_for_itself_only(widget):
    client = Client()
    url = API.format(key=widget.config["widget_key"], path="messages/")
    preflight = client.options(url, HTTP_ORIGIN=SHOP, HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-madoguchi-visitor")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == SHOP
    assert "X-Madoguchi-Visitor" in preflight["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight
    local = client.get(API.format(key=widget.config["widget_key"], path="config/"), HTTP_ORIGIN="http://127.0.0.1:5173")
    assert local.status_code == 200 and local["Access-Control-Allow-Origin"] == "http://127.0.0.1:5173"
    assert client.get(API.format(key=widget.config["widget_key"], path="config/"), HTTP_ORIGIN="http://127.0.0.1.evil.example:80").status_code == 403


def test_messages_need_a_valid_visitor_token(widget, visitor_for):
    v = visitor_for(widget)
    assert v.request("GET", "messages/").status_code == 401
    assert v.request("POST", "messages/", data={"text": "hi", "client_id": "abcdefgh1"}).status_code == 401
    v.token = "forged:token:value"
    assert v.request("GET", "messages/").status_code == 401
    v.start(name="Yui")
    assert v.request("GET", "messages/").status_code == 200
    tampered = v.token[:-2] + ("AA" if not v.token.endswith("AA") else "BB")
    assert v.request("GET", "messages/", headers={"X-Madoguchi-Visitor": tampered}).status_code == 401


def test_a_visitor_chats_and_the_team_answers_through_the_outbox(cast, widget, visitor_for):
    v = visitor_for(widget, lang="ja")
    v.start(name="佐藤 ゆい", email="yui@example.jp")
    sent = v.say("注文した商品がまだ届きません")
    conv = Conversation.objects.get(channel_account=widget)
    assert conv.workspace_id == cast.ws.pk and conv.contact.name == "佐藤 ゆい" and conv.contact.email == "yui@example.jp"
    assert conv.language == "ja"
    assert sent["direction"] == "in" and sent["id"] == conv.messages.get().pk
    v.say("注文番号は A-1 です")
    assert Conversation.objects.filter(channel_account=widget).count() == 1  # one running thread per visitor

    reply = actions.do_reply(conv, author=cast.agent, text="確認いたします。")
    actions.do_add_note(conv, author=cast.agent, text="internal: check the warehouse")
    assert [m["text"] for m in v.history()["messages"]] == ["注文した商品がまだ届きません", "注文番号は A-1 です"]
    assert deliver_outbox.call(reply.outbox.pk) == "sent"
    history = v.history()
    assert [m["text"] for m in history["messages"]][-1] == "確認いたします。"
    assert history["messages"][-1]["author"] == cast.agent.display_name
    assert "internal" not in str(history)
    assert history["read_up_to"] == history["messages"][1]["id"]  # the reply shows the team read both


def test_the_history_says_where_the_live_stream_starts_read_before_the_messages(cast, widget, visitor_for, monkeypatch):
    from madoguchi.connectors.webchat import queries
    from madoguchi.inbox.events import publish
    from madoguchi.inbox.models import LiveEvent

    v = visitor_for(widget, lang="ja")
    v.start(name="佐藤 ゆい", email="yui@example.jp")
    v.say("まだ届きません")
    real = queries._visible
    published: list[int] = []

    def reading(qs):  # an agent's reply is sent while the visitor's history is being read
        publish(cast.ws.pk, "message.delivery", None, delivery="sent")
        published.append(LiveEvent.objects.order_by("-id").values_list("id", flat=True).first())
        return real(qs)

    monkeypatch.setattr(queries, "_visible", reading)
    page = v.history()
    assert published and page["live_after"] < published[0]  # the stream replays that reply
    assert "live_after" not in v.history(before=page["messages"][0]["id"])  # earlier pages: no cursor


def test_hostile_input_gets_a_clear_answer_never_a_crash(widget, visitor_for):
    v = visitor_for(widget)
    v.start(name="nul\x00name")
    assert v.say("nul\x00byte")["text"] == "nulbyte"
    assert v.request("POST", "messages/", data={"text": "   "}).status_code == 400
    assert v.request("POST", "messages/", data={"text": "x" * 5001}).status_code == 400
    assert v.request("POST", "messages/", data={"text": "hi", "client_id": "../../etc"}).status_code == 400
    assert v.request("POST", "messages/", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400
    assert v.request("POST", "read/", json={"up_to": "all"}).status_code == 400
    assert v.request("POST", "session/", json={"email": "not an address"}).status_code == 400
    assert v.request("GET", "messages/", params={"before": "1 OR 1=1"}).status_code == 200


def test_a_retried_post_is_stored_once(widget, visitor_for):
    v = visitor_for(widget)
    v.start()
    first = v.say("hello", client_id="retry-0001")
    again = v.say("hello", client_id="retry-0001")
    assert first["id"] == again["id"]
    assert Message.objects.filter(conversation__channel_account=widget).count() == 1


def test_html_is_kept_as_text(widget, visitor_for):
    v = visitor_for(widget)
    v.start(name="<img src=x onerror=alert(1)>")
    v.say('<script>alert("x")</script><b>bold</b>')
    message = Message.objects.get(conversation__channel_account=widget)
    assert message.html == ""
    assert message.text == '<script>alert("x")</script><b>bold</b>'
    assert v.history()["messages"][0]["text"] == message.text  # the widget sets it with textContent


def test_a_visitor_never_sees_another_visitors_conversation(cast, widget, visitor_for):
    alice, bob = visitor_for(widget), visitor_for(widget)
    alice.start(name="Alice")
    bob.start(name="Bob")
    alice.say("alice's secret order A-77")
    conv = Conversation.objects.get(channel_account=widget)
    _reply(conv, cast.agent, "Alice, your order ships today")
    assert bob.history()["messages"] == []
    bob.say("hi")
    assert "A-77" not in str(bob.history()) and "ships today" not in str(bob.history())
    alice_message = alice.history()["messages"][0]["id"]
    assert bob.read(alice_message).json()["read"] == 0
    assert not MessageEvent.objects.exists()


def test_tokens_and_keys_never_cross_workspaces(cast, widget, widget_b, visitor_for):
    a = visitor_for(widget)
    a.start(name="A")
    a.say("message for Acme")
    b = visitor_for(widget_b, token=a.token)  # workspace A's token on workspace B's widget
    assert b.request("GET", "messages/").status_code == 401
    b.start(name="B")  # a new visitor of B
    b.say("message for Beta")
    assert Conversation.objects.get(channel_account=widget_b).workspace_id == cast.ws_b.pk
    assert "Acme" not in str(b.history())
    client = Client()
    client.force_login(cast.agent)
    conv_b = Conversation.objects.get(channel_account=widget_b)
    assert client.get(f"/inbox/c/{conv_b.pk}/").status_code == 404


def test_rate_limits_per_visitor_and_per_ip(widget, visitor_for, monkeypatch):
    from madoguchi.connectors.webchat import widget as widget_module

    monkeypatch.setattr(widget_module, "clock", lambda: 1_800_000_000.0)  # all in one minute window
    widget.config["rate_limits"] = {"visitor_per_minute": 3, "ip_per_minute": 8}
    widget.save()
    v = visitor_for(widget, remote_addr="10.0.0.1")
    v.start()  # 1 request from this IP
    for i in range(3):
        v.say(f"message {i}")  # 4 requests
    limited = v.request("POST", "messages/", data={"text": "one too many", "client_id": "limit-0004"})
    assert limited.status_code == 429 and limited.headers["Access-Control-Allow-Origin"] == SHOP
    other = visitor_for(widget, remote_addr="10.0.0.1")
    other.start()
    other.say("another visitor, same IP")  # 7 requests from 10.0.0.1
    other.history()
    assert other.request("GET", "messages/").status_code == 429  # the 9th from this IP
    elsewhere = visitor_for(widget, remote_addr="10.0.0.2")
    elsewhere.start()
    assert elsewhere.say("from another network")["text"] == "from another network"
    monkeypatch.setattr(widget_module, "clock", lambda: 1_800_000_060.0)  # the next minute
    assert v.say("a minute later")["text"] == "a minute later"


def test_files_go_through_the_attachment_path_with_limits(widget, visitor_for):
    widget.config["max_upload_bytes"] = 1024 * 1024
    widget.save()
    v = visitor_for(widget)
    v.start()
    too_big = v.upload("big.png", b"\x89PNG" + b"0" * (1024 * 1024 + 10), "image/png")
    assert too_big.status_code == 413
    assert v.upload("run.exe", b"MZ...", "application/x-msdownload").status_code == 415
    assert v.upload("page.html", b"<script>", "text/html").status_code == 415
    ok = v.upload("receipt.pdf", b"%PDF-1.4 receipt", "application/pdf")
    assert ok.status_code == 201, ok.text
    attachment = Attachment.objects.get()
    assert attachment.filename == "receipt.pdf" and attachment.message.conversation.channel_account_id == widget.pk
    url = v.history()["messages"][0]["attachments"][0]["url"]
    response = Client().get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"%PDF-1.4 receipt"
    assert response["Content-Disposition"].startswith("attachment")
    assert Client().get(url.replace("/files/", "/files/x")).status_code == 404


def test_read_marks_both_ways(cast, widget, visitor_for, client_for):
    v = visitor_for(widget)
    v.start(name="Reader")
    v.say("are you there?")
    conv = Conversation.objects.get(channel_account=widget)
    assert v.history()["read_up_to"] == 0
    agent = client_for(cast.agent)
    agent.get(f"/inbox/c/{conv.pk}/")  # opening marks it seen
    assert v.history()["read_up_to"] == v.history()["messages"][0]["id"]
    reply = _reply(conv, cast.agent, "yes, how can I help?")
    assert v.read(reply.pk).json()["read"] == reply.pk
    assert v.read(reply.pk).json()["read"] == reply.pk  # idempotent
    assert MessageEvent.objects.get(kind="read").message_id == reply.pk
    page = agent.get(f"/inbox/c/{conv.pk}/").content.decode()
    assert 'class="read-mark"' in page


def test_typing_is_announced_to_the_agents(cast, widget, visitor_for):
    from madoguchi.inbox.models import LiveEvent

    v = visitor_for(widget)
    v.start(name="Typist")
    assert v.typing().json() == {"ok": False}  # no conversation yet: nobody to tell
    v.say("hello")
    assert v.typing().json() == {"ok": True}
    event = LiveEvent.objects.filter(kind="visitor.typing").get()
    assert event.conversation_id == Conversation.objects.get(channel_account=widget).pk
    assert event.data == {"name": "Typist"}


def test_the_config_speaks_the_visitors_language(widget, visitor_for):
    assert visitor_for(widget, lang="ja").config()["strings"]["send"] == "送信"
    en = visitor_for(widget, lang="en").config()
    assert en["strings"]["send"] == "Send" and en["open"] is True and en["back"] == ""


def test_a_deactivated_widget_stops_answering(widget, visitor_for):
    v = visitor_for(widget)
    v.start()
    ChannelAccount.objects.filter(pk=widget.pk).update(is_active=False)
    assert v.request("GET", "messages/").status_code == 404


def test_settings_page_is_for_admins_of_the_workspace(cast, widget, widget_b, client_for):
    url = f"/connectors/webchat/{widget.pk}/settings/"
    assert client_for(cast.agent).get(url).status_code == 403
    admin = client_for(cast.admin)
    assert admin.get(f"/connectors/webchat/{widget_b.pk}/settings/").status_code == 404
    page = admin.get(url).content.decode()
    assert "wk_acme_test_key_000001" in page and "widget.js" in page
    data = {
        "allowed_origins": "https://www.acme.example/\nhttp://localhost:*",
        "time_zone": "Asia/Tokyo",
        "hours_mon": "09:00-18:00",
        "hours_tue": "09:00-12:00, 13:00-18:00",
        "closed_dates": "2026-12-31",
        "visitor_per_minute": "10",
        "ip_per_minute": "100",
        "max_upload_mb": "2",
    }
    assert csrf_post(admin, url, data).status_code == 302
    widget.refresh_from_db()
    assert widget.config["allowed_origins"] == ["https://www.acme.example", "http://localhost:*"]
    assert widget.config["business_hours"]["weekly"]["tue"] == [["09:00", "12:00"], ["13:00", "18:00"]]
    assert widget.config["business_hours"]["weekly"]["sun"] == []
    assert widget.config["rate_limits"] == {"visitor_per_minute": 10, "ip_per_minute": 100}
    bad = csrf_post(admin, url, {**data, "allowed_origins": "javascript:alert(1)", "hours_wed": "18:00-09:00"})
    assert bad.status_code == 200
    widget.refresh_from_db()
    assert widget.config["allowed_origins"] == ["https://www.acme.example", "http://localhost:*"]
    assert csrf_post(admin, url, {"action": "regenerate"}).status_code == 302
    widget.refresh_from_db()
    assert widget.config["widget_key"] != "wk_acme_test_key_000001"
    assert Client().get(API.format(key="wk_acme_test_key_000001", path="config/"), HTTP_ORIGIN=SHOP).status_code == 404
    assert Identity.objects.count() >= 0


def test_demo_visitors_write_through_the_widget(cast):
    from madoguchi.web.demo import webchat as demo_webchat

    account = ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="webchat", name="Demo chat", config={"simulated": True})
    demo_webchat.setup_demo_widget(account)
    assert account.config["widget_key"].startswith("wk_") and "simulated" not in account.config
    customer = {"id": "u-sato", "name": "佐藤 ゆい", "lang": "ja"}
    first = demo_webchat.send(account, customer, "ログインできません")
    again = demo_webchat.send(account, {**customer, "id": "vdemo-u-sato"}, "まだできません")  # a follow-up
    assert first.message is not None and again.message is not None
    assert first.message.conversation_id == again.message.conversation_id
    assert first.message.conversation.thread_key == "vdemo-u-sato"
    reply = _reply(first.message.conversation, cast.agent, "確認します")
    assert reply.outbox.status == "pending" or Message.objects.get(pk=reply.pk).delivery == "sent"


def test_the_try_it_page_embeds_the_widget_for_the_team_only(cast, widget, widget_b, client_for):
    page = client_for(cast.agent).get(f"/connectors/webchat/{widget.pk}/try/?lang=ja")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-key="wk_acme_test_key_000001"' in html and '<html lang="ja">' in html
    assert client_for(cast.agent).get(f"/connectors/webchat/{widget_b.pk}/try/").status_code == 404
    assert Client().get(f"/connectors/webchat/{widget.pk}/try/").status_code == 302  # to the login
    # The page is on the helpdesk's own origin: browsers send no Origin on a same-origin GET.
    url = API.format(key=widget.config["widget_key"], path="config/")
    assert Client().get(url, HTTP_SEC_FETCH_SITE="same-origin").status_code == 403
    widget.config["allowed_origins"].append("http://testserver")
    widget.save()
    assert Client().get(url, HTTP_SEC_FETCH_SITE="same-origin").status_code == 200
    assert Client().get(url, HTTP_SEC_FETCH_SITE="cross-site").status_code == 403


def test_an_agent_viewing_the_conversation_marks_the_visitor_read_after_a_reload(cast, widget, visitor_for):
    from madoguchi.inbox.events import publish

    v = visitor_for(widget)
    v.start()
    first = v.say("first")
    conv = Conversation.objects.get(channel_account=widget)
    actions.do_mark_seen(conv, cast.agent)  # seen once: "first" is read
    second = v.say("second, while nobody looks")
    assert v.history()["read_up_to"] == first["id"]
    publish(cast.ws.pk, "presence", conv.pk, user=cast.agent.pk, name="Agent", state="viewing")
    assert v.history()["read_up_to"] == second["id"]
