"""Rules translated for platforms that filter on their side (X filtered stream, Mastodon hashtags)."""

from madoguchi.listening.matcher import RuleSpec
from madoguchi.listening.platform import mastodon_hashtags, x_filter_rules


def test_x_rule_uses_or_groups_phrases_exclusions_and_language():
    spec = RuleSpec(1, "r", accounts=("@acme",), any_of=("acme fiber", "#acmedown"), all_of=("outage",), none_of=("job",), languages=frozenset({"ja"}))
    assert x_filter_rules(spec) == ['"outage" (@acme OR "acme fiber" OR #acmedown) -"job" lang:ja']


def test_long_x_rules_are_split_below_the_limit():
    spec = RuleSpec(1, "r", any_of=tuple(f"product{i}" for i in range(300)))
    rules = x_filter_rules(spec, max_length=512)
    assert len(rules) > 1 and all(len(r) <= 512 for r in rules)
    assert sum(r.count("product") for r in rules) == 300


def test_mastodon_follows_hashtags_only():
    assert mastodon_hashtags(RuleSpec(1, "r", any_of=("#Acme", "acme", "#"))) == ["Acme"]
