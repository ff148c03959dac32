"""The listening team's stream: most important first, respond / dismiss / seen / bulk dismiss, scoped and role-checked."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from madoguchi.conftest import csrf_post
from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.inbox.models import Conversation, Message
from madoguchi.ingest.actions import do_ingest
from madoguchi.ingest.models import Post
from madoguchi.listening.models import ListeningRule


def capture(cast, text: str, ext: str, *, account=None, followers=None) -> Post:
    item = InboundItem(
        external_id=ext,
        author=InboundAuthor(external_id=f"a-{ext}", handle=f"user_{ext}", followers=followers),
        text=text,
        created_at=timezone.now(),
        public=True,
        route="stream",
    )
    return do_ingest(account or cast.account, item).post


@pytest.fixture
def posts(cast, rules):
    return {
        "calm": capture(cast, "what colours does the iphone come in?", "calm", followers=10),
        "outage": capture(cast, "アイフォン 朝から圏外、障害ですか？ 仕事にならない", "outage", followers=20),
        "famous": capture(cast, "what colours does the iphone 16 come in?", "famous", followers=2_000_000),
    }


def test_stream_lists_most_important_first_with_triage(cast, posts, client_for):
    page = client_for(cast.agent).get("/listening/").content.decode()
    order = [page.index(posts[k].text[:20]) for k in ("outage", "famous", "calm")]
    assert order == sorted(order)
    assert "phones" in page  # the matched rule
    newest = client_for(cast.agent).get("/listening/?sort=newest").content.decode()
    assert newest.index("iphone 16") < newest.index("what colours does the iphone come")


def test_respond_opens_a_conversation_with_the_post_as_first_message(cast, posts, client_for):
    post = posts["outage"]
    response = csrf_post(client_for(cast.agent), f"/listening/p/{post.pk}/respond/")
    post.refresh_from_db()
    assert post.status == Post.Status.ANSWERED and post.handled_by == cast.agent
    conv = Conversation.objects.get(pk=post.conversation_id)
    assert response["Location"] == f"/inbox/c/{conv.pk}/"
    first = Message.objects.filter(conversation=conv).order_by("pk").first()
    assert first.text == post.text and first.identity_id == post.identity_id
    assert conv.contact_id == post.contact_id
    assert conv.priority == 3  # high urgency
    # a second click does not open a second conversation
    csrf_post(client_for(cast.agent), f"/listening/p/{post.pk}/respond/")
    assert Conversation.objects.filter(contact_id=post.contact_id).count() == 1


def test_dismiss_seen_and_bulk_dismiss(cast, posts, client_for):
    client = client_for(cast.agent)
    csrf_post(client, f"/listening/p/{posts['calm'].pk}/seen/")
    posts["calm"].refresh_from_db()
    assert posts["calm"].status == Post.Status.SEEN
    csrf_post(client, f"/listening/p/{posts['calm'].pk}/dismiss/", {"next": "/listening/?view=all"})
    posts["calm"].refresh_from_db()
    assert posts["calm"].status == Post.Status.DISMISSED
    csrf_post(client, "/listening/bulk-dismiss/", {"post": [posts["outage"].pk, posts["famous"].pk]})
    assert set(Post.objects.filter(workspace=cast.ws).values_list("status", flat=True)) == {"dismissed"}
    assert "Nothing to triage" in client.get("/listening/").content.decode()


def test_a_bulk_dismissal_can_be_undone_once_from_the_stream(cast, posts, client_for):
    client = client_for(cast.agent)
    csrf_post(client, f"/listening/p/{posts['calm'].pk}/respond/")  # answered: not dismissed, not undone
    ids = [posts["outage"].pk, posts["famous"].pk, posts["calm"].pk]
    csrf_post(client, "/listening/bulk-dismiss/", {"post": ids})
    page = client.get("/listening/").content.decode()
    assert "2 posts dismissed." in page and 'id="undo-bar"' in page
    assert f'name="post" value="{posts["outage"].pk}"' in page and f'name="post" value="{posts["calm"].pk}"' not in page
    assert "posts dismissed." not in client.get("/listening/").content.decode()  # offered once

    response = csrf_post(client, "/listening/restore/", {"post": ids, "next": "/listening/"})
    assert response.status_code == 302
    statuses = dict(Post.objects.filter(workspace=cast.ws).values_list("pk", "status"))
    assert statuses == {posts["outage"].pk: "seen", posts["famous"].pk: "seen", posts["calm"].pk: "answered"}
    assert Post.objects.get(pk=posts["outage"].pk).handled_by is None
    assert "2 posts are back on the stream" in client.get("/listening/").content.decode()


def test_undoing_one_dismissal_answers_json_and_stays_in_the_workspace(cast, posts, client_for):
    csrf_post(client_for(cast.agent), f"/listening/p/{posts['calm'].pk}/dismiss/")
    other = client_for(cast.agent_b)
    csrf_post(other, "/listening/restore/", {"post": [posts["calm"].pk]})
    assert Post.objects.get(pk=posts["calm"].pk).status == Post.Status.DISMISSED  # not theirs
    response = csrf_post(client_for(cast.agent), "/listening/restore/", {"post": [posts["calm"].pk]}, HTTP_ACCEPT="application/json")
    assert response.json() == {"restored": 1, "status": "seen", "status_label": "Seen"}
    assert client_for(cast.agent).get("/listening/restore/").status_code == 405


def test_share_handled(cast, posts, client_for):
    client = client_for(cast.agent)
    csrf_post(client, f"/listening/p/{posts['calm'].pk}/dismiss/")
    csrf_post(client, f"/listening/p/{posts['outage'].pk}/respond/")
    page = client.get("/listening/").content.decode()
    assert "3 captured" in page and "<b>67 % handled</b>" in page
    assert "answered 1 (33 %)" in page and "dismissed 1 (33 %)" in page and "left 1 (33 %)" in page


def test_other_workspace_posts_are_invisible_and_untouchable(cast, posts, client_for):
    client = client_for(cast.agent_b)
    assert posts["calm"].text not in client.get("/listening/").content.decode()
    assert csrf_post(client, f"/listening/p/{posts['calm'].pk}/dismiss/").status_code == 404
    assert csrf_post(client, f"/listening/p/{posts['calm'].pk}/respond/").status_code == 404
    csrf_post(client, "/listening/bulk-dismiss/", {"post": [posts["calm"].pk]})
    posts["calm"].refresh_from_db()
    assert posts["calm"].status == Post.Status.NEW


def test_actions_need_csrf_and_post(cast, posts, client_for):
    client = client_for(cast.agent)
    assert client.post(f"/listening/p/{posts['calm'].pk}/dismiss/").status_code == 403
    assert client.get(f"/listening/p/{posts['calm'].pk}/dismiss/").status_code == 405


def test_post_text_is_escaped(cast, rules, client_for):
    capture(cast, "<script>alert(1)</script> iphone", "xss")
    page = client_for(cast.agent).get("/listening/").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_stream_query_count_does_not_grow_with_posts(cast, posts, client_for):
    client = client_for(cast.agent)
    client.get("/listening/")
    with CaptureQueriesContext(connection) as few:
        client.get("/listening/")
    for i in range(10):
        capture(cast, f"iphone number {i}", f"more{i}")
    with CaptureQueriesContext(connection) as many:
        client.get("/listening/")
    # 9: the page's own queries plus the channel and stalled-outbox banners' one each.
    assert len(many) == len(few) <= 9


def test_rules_page_is_read_only_for_agents(cast, rules, client_for):
    page = client_for(cast.agent).get("/listening/rules/").content.decode()
    assert "@acme_support" in page and "/listening/rules/new/" not in page and 'name="yaml"' not in page
    assert csrf_post(client_for(cast.agent), "/listening/rules/", {"yaml": "rules: []", "do": "save"}).status_code == 403
    page = client_for(cast.manager).get("/listening/rules/").content.decode()
    assert "@acme_support" in page and "/listening/rules/new/" in page and 'name="yaml"' in page


def test_manager_previews_then_saves_rules(cast, posts, client_for):
    client = client_for(cast.manager)
    yaml_text = "rules:\n  - name: colours\n    any_of: [colours]\n"
    page = csrf_post(client, "/listening/rules/", {"yaml": yaml_text, "do": "preview"}).content.decode()
    assert "colours would have matched 2 posts in the last day" in page
    csrf_post(client, "/listening/rules/", {"yaml": yaml_text, "do": "save"})
    assert list(ListeningRule.objects.filter(workspace=cast.ws).values_list("name", flat=True)) == ["colours"]


def test_bad_rules_yaml_is_refused_with_a_message(cast, rules, client_for):
    page = csrf_post(client_for(cast.manager), "/listening/rules/", {"yaml": "rules: [ {name: x} ]", "do": "save"}, follow=True)
    assert "needs accounts, any_of or all_of" in page.content.decode()


def test_opening_a_post_shows_the_author_and_marks_it_seen(cast, rules, client_for):
    first = capture(cast, "iphone colours? 😀😀", "t1")
    item = InboundItem(
        external_id="t2", author=InboundAuthor(external_id="a-t1", handle="user_t1", followers=321),
        text="iphone still broken 😡", created_at=timezone.now(), public=True, route="stream",
    )
    second = do_ingest(cast.account, item).post
    page = client_for(cast.agent).get(f"/listening/p/{second.pk}/").content.decode()
    assert first.text in page and "321" in page and "Emoji per post" in page
    second.refresh_from_db()
    assert second.status == Post.Status.SEEN
    assert client_for(cast.agent_b).get(f"/listening/p/{second.pk}/").status_code == 404


def test_conversation_shows_the_customers_public_posts_beside_the_composer(cast, client_for):
    from madoguchi.ingest.models import Post

    conv = cast.inbound("注文が届きません", customer="poster-1", external_id="dm-1").message.conversation
    identity = conv.contact.identities.get()
    Post.objects.create(
        workspace=cast.ws, channel_account=cast.account, external_id="pub-1", contact_id=conv.contact_id, identity=identity,
        text="新しいスマホ最高 😀😀", language="ja", created_at=conv.created_at,
    )
    page = client_for(cast.agent).get(f"/inbox/c/{conv.pk}/").content.decode()
    assert "Public posts of this customer" in page and "新しいスマホ最高" in page
    other = cast.inbound("hello", customer="quiet-1", external_id="dm-2").message.conversation
    assert "Public posts of this customer" not in client_for(cast.agent).get(f"/inbox/c/{other.pk}/").content.decode()
