"""An edited post on the filtered stream edits the post we captured (X gives the edit a new id
and the edit history, https://docs.x.com/x-api/fundamentals/edit-posts); it is not a new post."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.x import stream
from madoguchi.inbox.models import MessageEvent
from madoguchi.ingest.models import Post
from madoguchi.listening import actions as listening

pytestmark = pytest.mark.django_db
LINE = json.loads((Path(__file__).parent / "fixtures" / "stream_line.json").read_text())
ORIGINAL = LINE["data"]["id"]


@pytest.fixture(autouse=True)
def no_cached_rules():
    listening.forget_compiled_rules()
    yield
    listening.forget_compiled_rules()


@pytest.fixture
def account(cast) -> ChannelAccount:
    listening.do_save_rule(cast.ws, cast.brand, {"name": "timelines", "any_of": ["timeline"]})
    return ChannelAccount.objects.create(
        workspace=cast.ws, brand=cast.brand, kind="x", name="@AcmeSupport", handle="AcmeSupport",
        config={"user_id": "999", "username": "AcmeSupport", "listening": "stream"},
    )


def edited(new_id: str, text: str, history: list[str]) -> dict:
    line = copy.deepcopy(LINE)
    line["data"].update(id=new_id, text=text, edit_history_tweet_ids=history)
    line["data"]["created_at"] = "2021-01-06T18:50:40.000Z"
    return line


def test_an_edit_on_the_stream_updates_the_captured_post_and_keeps_the_old_text(account):
    assert stream.handle_line(account, LINE) == "created"
    before = Post.objects.get().text
    line = edited("1346889436626259999", "The user timeline endpoints, explained", [ORIGINAL, "1346889436626259999"])
    assert stream.handle_line(account, line) == "event"
    post = Post.objects.get()  # still one post, under its first id
    assert post.external_id == ORIGINAL and post.text == "The user timeline endpoints, explained"
    assert post.edited_at is not None and post.deleted_at is None
    record = MessageEvent.objects.get(kind="edit")
    assert record.target_external_id == ORIGINAL and record.previous_text == before
    assert stream.handle_line(account, line) == "event"  # the same edit again changes nothing
    assert MessageEvent.objects.count() == 1 and Post.objects.count() == 1


def test_an_edit_of_a_post_we_never_captured_is_a_post_of_its_own(account):
    line = edited("1346889436626259999", "A timeline we missed at first", ["1", "1346889436626259999"])
    assert stream.handle_line(account, line) == "created"
    assert Post.objects.get().external_id == "1346889436626259999"
