"""`madoguchi listen`: rules import/export as YAML, and replay of an archive through the live path."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from madoguchi.connectors.models import ChannelAccount
from madoguchi.inbox.models import Conversation
from madoguchi.ingest.models import Post, Quarantine
from madoguchi.listening.models import ListeningRule

RULES = """\
rules:
  - name: own account
    accounts: ["@acme_support"]
  - name: phones
    brand: Acme
    any_of: [アイフォン, iphone]
    none_of: [求人]
    languages: [ja, en]
"""


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("listen", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_rules_round_trip_through_yaml(cast, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    assert "2 rules imported" in run("rules", "import", str(path), "--workspace", "Acme")
    exported = run("rules", "export", "--workspace", "Acme")
    assert "アイフォン" in exported and "none_of" in exported
    path.write_text(exported, encoding="utf-8")
    run("rules", "import", str(path), "--workspace", "Acme", "--replace")
    assert ListeningRule.objects.filter(workspace=cast.ws).count() == 2


def test_bad_rule_file_is_a_clear_error(cast, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("rules:\n  - name: x\n    any_of: {a: 1}\n", encoding="utf-8")
    with pytest.raises(CommandError, match="any_of must be a list"):
        run("rules", "import", str(path), "--workspace", "Acme")
    path.write_text("rules: [", encoding="utf-8")
    with pytest.raises(CommandError, match="not valid YAML"):
        run("rules", "import", str(path), "--workspace", "Acme")


def archive(tmp_path, lines: list) -> str:
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    return str(path)


def test_replay_goes_through_the_live_path_and_is_idempotent(cast, tmp_path):
    x = ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="Acme on X")
    from madoguchi.listening.actions import do_import_rules

    do_import_rules(cast.ws, RULES)
    path = archive(tmp_path, [
        {"id": "1", "channel": "x", "author": "yui", "text": "ｱｲﾌｫﾝが圏外のまま", "created_at": "2026-11-22T09:00:00+09:00", "followers": 120},
        {"id": "2", "channel": "x", "author": "ken", "text": "In August I ate lunch", "created_at": "2026-11-22T10:00:00Z"},
        {"id": "3", "channel": "x", "author": "mia", "text": "@acme_support where is my order?", "created_at": "2026-11-22T11:00:00Z", "lang": "en"},
        {"id": "4", "channel": "mastodon", "author": "zed", "text": "iphone", "created_at": "2026-11-22T11:00:00Z"},
        "{not json",
        {"id": "5", "channel": "x", "text": "no author", "created_at": "2026-11-22T11:00:00Z"},
    ])
    out = run("replay", path, "--workspace", "Acme")
    assert "captured on the stream: 1" in out
    assert "mentions -> conversations: 1" in out
    assert "dropped (matched no rule): 1" in out
    assert "quarantined: 2" in out
    assert "skipped (no channel account for their channel): 1" in out
    assert "by rule: " in out and "posts/s" in out
    post = Post.objects.get(channel_account=x, external_id="1")
    assert post.matched_rule.name == "phones" and post.urgency == 2
    assert Conversation.objects.filter(channel_account=x).count() == 1
    assert Quarantine.objects.filter(workspace=cast.ws).count() == 2

    again = run("replay", path, "--workspace", "Acme")
    assert "already ingested: 2" in again
    assert Post.objects.filter(channel_account=x).count() == 2
    assert Conversation.objects.filter(channel_account=x).count() == 1


def test_replay_refuses_unknown_workspace_or_file(cast, tmp_path):
    with pytest.raises(CommandError, match="no workspace"):
        run("replay", "x.jsonl", "--workspace", "Nope")
    with pytest.raises(CommandError, match="no such file"):
        run("replay", str(tmp_path / "missing.jsonl"), "--workspace", "Acme")


def test_demo_day_replays_into_a_triaged_stream(cast):
    from pathlib import Path

    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="x", name="Acme on X")
    run("rules", "import", str(fixtures / "demo_rules.yaml"), "--workspace", "Acme")
    out = run("replay", str(fixtures / "demo_day.jsonl"), "--workspace", "Acme")
    captured = Post.objects.filter(workspace=cast.ws, conversation__isnull=True)
    assert captured.count() > 150
    dropped = int(out.split("dropped (matched no rule): ")[1].split()[0].replace(",", ""))
    assert dropped >= 30  # the everyday chatter
    assert captured.filter(urgency=2).exists() and captured.filter(kind="praise").exists()
    assert Conversation.objects.filter(workspace=cast.ws).exists()  # mentions of own accounts
