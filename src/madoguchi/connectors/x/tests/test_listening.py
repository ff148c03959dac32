"""X keyword listening: rules kept in sync with ours, the filtered stream (keep-alives, disconnects,
stalls, 429 TooManyConnections, backoff), recent search for plans without the stream."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from madoguchi.connectors import health
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.testing import worker_stopping
from madoguchi.connectors.x import rules, stream, tasks
from madoguchi.connectors.x.client import StreamItem
from madoguchi.connectors.x.fake import FakeX, check_rule
from madoguchi.connectors.x.fake import rule_matches as fake_matches
from madoguchi.inbox.models import Message
from madoguchi.ingest.models import Post
from madoguchi.listening import actions as listening
from madoguchi.listening.matcher import RuleSpec
from madoguchi.listening.platform import UntranslatableRule, x_rule_values

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def no_cached_rules():
    """Compiled rule sets are cached per workspace id, which the next test's workspace may reuse."""
    listening.forget_compiled_rules()
    yield
    listening.forget_compiled_rules()


@pytest.fixture
def fake():
    server = FakeX().start()
    server.add_user("111", "yui_sato", "佐藤 結衣", followers=1234)
    server.add_user("222", "ken", "Ken", followers=5)
    server.keepalive_seconds = 0.1
    yield server
    server.stop()


def make_account(cast, fake: FakeX, **config) -> ChannelAccount:
    base, secrets = fake.account_settings()
    base.update({"username": "AcmeSupport", "stream_stall_seconds": 1.0}, **config)
    return ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="@AcmeSupport", handle="AcmeSupport", config=base, secrets=secrets)


@pytest.fixture
def account(cast, fake) -> ChannelAccount:
    return make_account(cast, fake, listening="stream", tier="pro")


def rule(cast, name: str, **terms) -> None:
    listening.do_save_rule(cast.ws, cast.brand, {"name": name, **terms})


def fresh(account: ChannelAccount) -> ChannelAccount:
    return ChannelAccount.objects.get(pk=account.pk)


def stream_until(account: ChannelAccount, done, *, runs: int = 8, seconds: float = 1.0) -> dict:
    """Bounded stream runs, as the worker makes them, until `done()` (a slow machine needs more)."""
    total: dict = {}
    for _ in range(runs):
        for key, value in stream.do_run_stream(fresh(account), seconds=seconds).items():
            total[key] = total.get(key, 0) + value if isinstance(value, int) else value
        if done():
            break
    return total


# --- rule sync ---------------------------------------------------------------------------------


def test_our_rules_are_added_to_x_with_our_tags(cast, fake, account):
    rule(cast, "shipping", any_of=["配送", "届かない"], none_of=["求人"], languages=["ja"])
    result = rules.do_sync_rules(fresh(account))
    assert result["added"] == 1 and not result["problems"]
    (platform,) = fake.rules.values()
    assert platform["value"] == '("配送" OR "届かない") -"求人" lang:ja'
    assert platform["tag"] == f"madoguchi:{account.pk}:{cast.brand.listening_rules.get().pk}"
    state = fresh(account).config["rule_sync"]
    assert state["ok"] and state["rules"] == 1 and state["message"] == ""


def test_a_changed_rule_replaces_the_stale_one_and_leaves_others_alone(cast, fake, account):
    rule(cast, "shipping", any_of=["配送"])
    rule(cast, "refunds", any_of=["返金"])
    rules.do_sync_rules(fresh(account))
    foreign = {"id": "1", "value": "someone else's rule", "tag": "theirs"}
    fake.rules["1"] = foreign
    assert not rules.sync_due(fresh(account))
    rule(cast, "shipping", any_of=["配送", "遅延"])  # a change bumps the rule-set version
    assert rules.sync_due(fresh(account))
    result = rules.do_sync_rules(fresh(account))
    assert (result["deleted"], result["added"]) == (1, 1)
    values = sorted(r["value"] for r in fake.rules.values())
    assert values == ['"返金"', '("配送" OR "遅延")', "someone else's rule"]
    assert rules.do_sync_rules(fresh(account), force=True)["added"] == 0  # nothing left to do
    listening.do_delete_rule(cast.brand.listening_rules.get(name="refunds"))
    rules.do_sync_rules(fresh(account))
    assert sorted(r["value"] for r in fake.rules.values()) == ['("配送" OR "遅延")', "someone else's rule"]


def test_rules_x_cannot_express_are_reported_on_the_account_not_skipped(cast, fake, account):
    account.config["max_rule_length"] = 40
    account.save()
    rule(cast, "fits", any_of=["配送"])
    rule(cast, "too long", all_of=["a very long phrase that cannot be split at all"], any_of=["x"])
    result = rules.do_sync_rules(fresh(account))
    assert [p["rule"] for p in result["problems"]] == ["too long"]
    assert "40" in result["problems"][0]["reason"]
    account = fresh(account)
    assert account.config["rule_sync"]["ok"] is False
    assert "too long" in account.last_error and health.channel_state(account) == "degraded"
    assert [r["value"] for r in fake.rules.values()] == ['"配送"']


def test_a_rule_x_refuses_is_reported_and_the_valid_ones_still_go_in(cast, fake, account, monkeypatch):
    rule(cast, "good", any_of=["配送"])
    rule(cast, "bad", any_of=["返金"])
    # A value our translation thinks fine but X refuses (as X's syntax evolves): only "bad" is lost.
    real = rules.x_rule_values
    monkeypatch.setattr(rules, "x_rule_values", lambda spec, **kw: ['("返金"'] if spec.name == "bad" else real(spec, **kw))
    result = rules.do_sync_rules(fresh(account))
    assert [p["rule"] for p in result["problems"]] == ["bad"] and "unbalanced" in result["problems"][0]["reason"]
    assert [r["value"] for r in fake.rules.values()] == ['"配送"']
    assert ("POST", "/2/tweets/search/stream/rules?dry_run=true") in fake.requests


def test_the_plans_rule_cap_is_respected_and_the_rest_reported(cast, fake, account):
    account.config["max_rules"] = 2
    account.save()
    fake.rules["1"] = {"id": "1", "value": "foreign", "tag": ""}
    for name in ("a", "b", "c"):
        rule(cast, name, any_of=[name + "term"])
    result = rules.do_sync_rules(fresh(account))
    assert len(fake.rules) == 2 and [p["rule"] for p in result["problems"]] == ["b", "c"]


def test_translation_refuses_rules_without_a_positive_term():
    with pytest.raises(UntranslatableRule):
        x_rule_values(RuleSpec(1, "r", any_of=('""',), none_of=("spam",), languages=frozenset({"ja"})))
    values = x_rule_values(RuleSpec(1, "r", accounts=("acme",), languages=frozenset({"ja", "en"})))
    assert values == ["@acme (lang:en OR lang:ja)"] and not check_rule(values[0])


def test_a_refused_bearer_token_disconnects_the_account(cast, fake, account):
    rule(cast, "shipping", any_of=["配送"])
    fake.bearer_token = "revoked"
    assert "error" in rules.do_sync_rules(fresh(account))
    assert health.channel_state(fresh(account)) == "disconnected"


# --- the filtered stream -----------------------------------------------------------------------


def test_a_documented_stream_line_parses():
    line = json.loads((FIXTURES / "stream_line.json").read_text())
    item = StreamItem.model_validate(line)
    assert item.matching_rules[0].tag and item.includes.users[0].username
    assert item.data.edit_history_tweet_ids == [item.data.id]


def test_stream_posts_are_captured_and_mentions_open_conversations(cast, fake, account):
    rule(cast, "shipping", any_of=["配送"])
    rule(cast, "brand", accounts=["@AcmeSupport"])
    rules.do_sync_rules(fresh(account))
    keyword = fake.post("222", "配送が遅いな")
    mention = fake.post("111", "@AcmeSupport 配送について質問です")
    fake.post("222", "関係ない話")  # matches no rule: X never sends it
    counts = stream_until(account, lambda: Message.objects.filter(external_id=mention["id"]).exists() and Post.objects.exists())
    assert counts["lines"] == 2 and counts["keepalives"] >= 1
    post = Post.objects.get(external_id=keyword["id"])
    assert post.matched_rule.name == "shipping"
    assert not Message.objects.filter(external_id=keyword["id"]).exists()
    assert Message.objects.get(external_id=mention["id"]).public
    assert health.channel_state(fresh(account)) == "connected"


def test_a_disconnect_and_a_stall_are_followed_by_a_reconnect(cast, fake, account):
    rule(cast, "shipping", any_of=["配送"])
    rules.do_sync_rules(fresh(account))
    account.config["stream_stall_seconds"] = 0.5
    account.save()
    fake.keepalive_seconds = 5  # so a stall is noticed by the missing keep-alives
    fake.stall_seconds = 3
    fake.stream_script("disconnect")
    first = fake.post("222", "配送 1")
    fake.stream_script("stall")
    second = fake.post("222", "配送 2")
    fake.stream_script("operational")
    third = fake.post("222", "配送 3")
    ids = [first["id"], second["id"], third["id"]]
    counts = stream_until(account, lambda: Post.objects.filter(external_id__in=ids).count() == 3)
    assert counts["connects"] >= 4 and counts["disconnects"] >= 3, counts
    assert Post.objects.filter(external_id__in=ids).count() == 3


def test_too_many_connections_backs_off_exponentially_from_a_minute(cast, fake, account):
    fake.stream_open = True  # another connection of the app is still open
    counts = stream.do_run_stream(fresh(account), seconds=1.0)
    state = fresh(account).config["stream"]
    assert counts["connects"] == 0 and 55 <= counts["waiting"] <= 61 and state["failures"] == 1
    assert "another connection" in fresh(account).last_error
    assert not stream.ready_to_run(fresh(account))
    calls = fake.stream_connects
    assert stream.do_run_stream(fresh(account), seconds=1.0)["connects"] == 0
    assert fake.stream_connects == calls  # waited, did not hammer
    account = fresh(account)
    account.config["stream"]["wait_until"] = time.time() - 1
    account.save()
    stream.do_run_stream(fresh(account), seconds=1.0)
    assert fresh(account).config["stream"]["failures"] == 2
    assert 115 <= fresh(account).config["stream"]["wait_until"] - time.time() <= 121
    fake.stream_open = False
    account = fresh(account)
    account.config["stream"]["wait_until"] = 0
    account.save()
    stream.do_run_stream(fresh(account), seconds=0.5)
    assert "failures" not in fresh(account).config["stream"]  # a working connection starts over


def test_server_errors_back_off_from_five_seconds_and_a_refused_token_disconnects(cast, fake, account):
    fake.fail("/2/tweets/search/stream", 503, "Service Unavailable")
    counts = stream.do_run_stream(fresh(account), seconds=1.0)
    assert counts["waiting"] == 5
    account = fresh(account)
    assert [stream.backoff("http", n) for n in (1, 2, 7)] == [5, 10, 320]
    assert [stream.backoff("network", n) for n in (1, 2, 100)] == [0.25, 0.5, 16]
    account.config["stream"]["wait_until"] = 0
    account.save()
    fake.bearer_token = "revoked"
    assert stream.do_run_stream(fresh(account), seconds=1.0)["error"] == "disconnected"
    assert health.channel_state(fresh(account)) == "disconnected"


def test_a_stopping_worker_ends_the_stream_and_frees_it_for_the_next_worker(cast, fake, account):
    rule(cast, "shipping", any_of=["配送"])
    with worker_stopping(after=0.5):
        counts = stream.do_run_stream(fresh(account), seconds=120)
    assert counts["stopped"] and counts["connects"] == 1 and "error" not in counts
    assert stream.ready_to_run(fresh(account))  # no lease left behind: a new worker streams at once


def test_the_clock_queues_one_bounded_stream_run_and_syncs_rules(cast, fake, account):
    from django_tasks_db.models import DBTaskResult

    rule(cast, "shipping", any_of=["配送"])
    assert tasks.listen.call() == {"synced": 1, "searched": 0, "streams_queued": 1}
    assert tasks.listen.call() == {"synced": 0, "searched": 0, "streams_queued": 0}  # already queued
    row = DBTaskResult.objects.get(task_path__endswith="x.tasks.run_stream")
    account.config["stream_seconds"] = 1.0
    account.save()
    fake.post("222", "配送まだ?")
    assert tasks.run_stream.call(*row.args_kwargs["args"])["lines"] == 1


# --- recent search -----------------------------------------------------------------------------


def test_an_account_set_to_stream_on_a_plan_without_it_searches(cast, fake):
    account = make_account(cast, fake, listening="stream", tier="basic")
    assert rules.listening_mode(account) == "search" and rules.tier_of(account).rule_length == 512


def test_search_packs_many_rules_into_the_plans_few_queries(cast, fake):
    account = make_account(cast, fake, listening="search", tier="basic", max_rules=2, max_rule_length=60)
    for i in range(7):
        rule(cast, f"r{i}", any_of=[f"商品{i}"], none_of=["求人"])
    result = rules.do_sync_rules(fresh(account))
    queries = rules.search_queries(fresh(account))
    assert len(queries) == 2 and all(len(q) <= 60 for q in queries)
    assert queries[0] == '("商品0" -"求人") OR ("商品1" -"求人") OR ("商品2" -"求人")'
    assert [p["rule"] for p in result["problems"]] == ["r6"]  # three a query: the seventh does not fit
    hit = fake.post("222", "商品1 が欲しい")
    assert not check_rule(queries[0]) and fake_matches(queries[0], hit)


def test_search_polling_uses_the_same_rules_with_cursors(cast, fake):
    account = make_account(cast, fake, listening="search", tier="basic")
    rule(cast, "shipping", any_of=["配送"])
    old = fake.post("222", "配送 昔の話")
    tasks.listen.call()
    assert not fake.rules  # nothing is sent to X's stream rules on this plan
    assert fresh(account).config["rule_sync"]["queries"][0][0] == '"配送"'
    assert Post.objects.filter(external_id=old["id"]).exists()  # the first poll takes the newest page
    new = fake.post("222", "配送 新しい話")
    mention = fake.post("111", "@AcmeSupport 配送の件")
    account = fresh(account)
    for key in [k for k in account.config if k.startswith("search:")]:
        account.config[key].pop("next_poll_at", None)
    account.save()
    tasks.listen.call()
    assert Post.objects.filter(external_id=new["id"]).exists()
    assert Message.objects.get(external_id=mention["id"]).public
    searches = [p for _, p in fake.requests if p.startswith("/2/tweets/search/recent")]
    assert "since_id=" in searches[-1]


def test_a_recorded_search_page_is_captured_as_stream_posts(cast, fake):
    import httpx

    from madoguchi.connectors.x import inbound
    from madoguchi.connectors.x.client import XClient

    recorded = json.loads((FIXTURES / "search_recent_page.json").read_text())
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        headers = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "448", "x-rate-limit-reset": str(int(time.time()) + 900)}
        return httpx.Response(200, json=recorded, headers=headers)

    account = make_account(cast, fake, listening="search", tier="basic")
    with XClient(account, transport=httpx.MockTransport(handler)) as client:
        counts = inbound.do_poll_search(account, "Tweepy", client=client, force=True)
    assert counts["created"] == 10 and counts["pages"] == 1  # the first poll: the newest page only
    assert seen[0].params["query"] == "Tweepy" and "since_id" not in seen[0].params
    assert Post.objects.filter(external_id="1578516068309794817").exists()
    state = fresh(account).config[inbound.search_key("Tweepy")]
    assert state["since_id"] == "1578516068309794817"


def test_enterprise_reconnects_ask_for_the_minutes_missed(cast, fake):
    account = make_account(cast, fake, listening="stream", tier="enterprise", stream={"last_seen_at": time.time() - 170})
    stream.do_run_stream(account, seconds=0.3)
    connects = [p for _, p in fake.requests if p.startswith("/2/tweets/search/stream?")]
    assert "backfill_minutes=3" in connects[0]
    account = fresh(account)
    account.config.update(tier="pro", stream={"last_seen_at": time.time() - 170})
    account.save()
    stream.do_run_stream(account, seconds=0.3)
    assert "backfill_minutes" not in [p for _, p in fake.requests if p.startswith("/2/tweets/search/stream?")][-1]
