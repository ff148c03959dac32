"""Matching works on Japanese without spaces and on English words, with boolean groups."""

from madoguchi.listening.matcher import Matcher, RuleSpec


def names(m: Matcher, text: str, **kw) -> list[str]:
    return [h.rule_name for h in m.match(text, **kw)]


def test_katakana_rule_matches_half_width_and_hiragana():
    m = Matcher.build([RuleSpec(1, "phone", any_of=("アイフォン",))])
    assert names(m, "ｱｲﾌｫﾝの電池がすぐ切れる") == ["phone"]
    assert names(m, "あいふぉん買った") == ["phone"]
    assert names(m, "アイフォンが熱い") == ["phone"]


def test_latin_keywords_need_word_boundaries():
    m = Matcher.build([RuleSpec(1, "au", any_of=("au",))])
    assert names(m, "In August we moved") == []
    assert names(m, "my AU phone is dead") == ["au"]
    assert names(m, "auの回線が遅い") == ["au"]
    assert names(m, "ＡＵ full width") == ["au"]


def test_all_of_and_none_of_groups():
    m = Matcher.build([RuleSpec(1, "fiber", all_of=("acme", "fiber"), none_of=("job",))])
    assert names(m, "Acme fiber is down") == ["fiber"]
    assert names(m, "Acme is great") == []
    assert names(m, "acme fiber job opening") == []


def test_phrases_and_hashtags():
    m = Matcher.build([RuleSpec(1, "p", any_of=("acme one", "#acmedown"))])
    assert names(m, "is ACME  one down") == []  # a phrase is exact, spaces included
    assert names(m, "acme one crashed") == ["p"]
    assert names(m, "again #AcmeDown") == ["p"]
    assert names(m, "#acmedownload") == []


def test_languages_and_channels_narrow_a_rule():
    m = Matcher.build([RuleSpec(1, "x-en", any_of=("acme",), languages=frozenset({"en"}), channels=frozenset({"x"}))])
    assert names(m, "acme", language="en", channel="x") == ["x-en"]
    assert names(m, "acme", language="ja", channel="x") == []
    assert names(m, "acme", language="en", channel="email") == []


def test_mentions_come_first_and_handles_need_boundaries():
    m = Matcher.build([RuleSpec(1, "kw", any_of=("acme",)), RuleSpec(2, "own", accounts=("@acme",))])
    hits = m.match("@acme acme broke")
    assert [(h.rule_name, h.mention) for h in hits] == [("own", True), ("kw", False)]
    assert [h.rule_name for h in m.match("@acme_fan says hi")] == []


def test_a_rule_of_exclusions_only_matches_nothing():
    m = Matcher.build([RuleSpec(1, "bad", none_of=("x",))])
    assert m.empty
    assert names(m, "anything") == []
