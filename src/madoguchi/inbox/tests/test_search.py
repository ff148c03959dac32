"""Search finds Japanese words without spaces and English words, and never another workspace's data."""

import pytest

from madoguchi.inbox import queries

pytestmark = pytest.mark.django_db


def search(user, q):
    return [c.pk for c in queries.conversations_for(user, queries.InboxFilter(view="all", q=q))]


def test_two_character_japanese_word_is_found(cast):
    hit = cast.inbound("サイズが合わないので返品したいです", customer="a").message.conversation_id
    cast.inbound("ログインできません", customer="b")
    assert search(cast.agent, "返品") == [hit]


def test_hiragana_query_finds_katakana_and_halfwidth(cast):
    hit = cast.inbound("ｷｬﾝﾍﾟｰﾝの条件を教えて", customer="a").message.conversation_id
    assert search(cast.agent, "きゃんぺーん") == [hit]
    assert search(cast.agent, "キャンペーン") == [hit]


def test_english_words_case_insensitive(cast):
    hit = cast.inbound("I was charged twice for my Subscription", customer="a").message.conversation_id
    cast.inbound("Where is my parcel", customer="b")
    assert search(cast.agent, "subscription CHARGED") == [hit]
    assert search(cast.agent, "refund") == []


def test_search_never_crosses_workspaces(cast):
    cast.inbound("返品 refund secret", account=cast.account_b, customer="b")
    assert search(cast.agent, "返品") == [] and search(cast.agent, "secret") == []
    assert len(search(cast.agent_b, "返品")) == 1


def test_punctuation_only_query_returns_nothing_not_everything(cast):
    cast.inbound("hello")
    assert search(cast.agent, "!!!") == []
