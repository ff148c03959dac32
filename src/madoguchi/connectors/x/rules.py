"""Keyword listening on X: the platform's rule set kept in sync with our listening rules.

The listening app owns the rules (`madoguchi.listening`); this module translates them
(`listening.platform.x_rule_values`) and makes X's side match, for the accounts whose config says
how they listen:

- `config["listening"] = "stream"`: the filtered stream (Pro and Enterprise plans). X's rules are
  per app: ours carry the tag `madoguchi:<account id>:<rule id>`, and the sync diffs X's rules
  against ours by value and tag, deletes our stale ones, checks new ones with `dry_run` (one
  invalid rule refuses the whole batch), then adds the valid ones. Rules someone else added to
  the app are left alone but count against the plan's rule cap.
- `config["listening"] = "search"`: plans without the stream poll recent search with the same
  translated rules, packed several to a query (`(a) OR (b)`, within the plan's query length),
  with `since_id`/`next_token` cursors (see inbound.py).

Limits per plan (https://docs.x.com/x-api/posts/filtered-stream/introduction and
https://docs.x.com/x-api/posts/search/introduction; November 2026): Pro streams with 1,000 rules of
1,024 characters, Enterprise 25,000 of 2,048; Basic has no stream, and recent search takes queries
of 512 characters at 60 requests per 15 minutes, so we poll at most 4 (packed) queries there.
`config["tier"]` names the plan; `max_rules` and `max_rule_length` override its numbers.

A rule X cannot express (no positive term, too long even split, refused by X, over the cap) is
reported on the account — in `config["rule_sync"]` and as the channel's visible error — never
silently skipped. The sync runs when the workspace's rule-set version moves (every rule change
bumps it, so a change is on X within one clock tick after its commit) and every 10 minutes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from madoguchi.connectors import health
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.x.client import XAPIError, XClient
from madoguchi.listening.matcher import RuleSpec
from madoguchi.listening.models import ListeningRule, RuleSetVersion
from madoguchi.listening.platform import UntranslatableRule, x_rule_values

logger = logging.getLogger(__name__)

RESYNC_SECONDS = 600
RETRY_SECONDS = 60
LEASE_SECONDS = 120
TAG_PREFIX = "madoguchi:"


@dataclass(frozen=True)
class Tier:
    """What an X plan allows for keyword listening."""

    stream: bool
    max_rules: int
    rule_length: int


TIERS = {
    "basic": Tier(stream=False, max_rules=4, rule_length=512),
    "pro": Tier(stream=True, max_rules=1000, rule_length=1024),
    "enterprise": Tier(stream=True, max_rules=25000, rule_length=2048),
}


def listening_mode(account: ChannelAccount) -> str:
    """"stream", "search" or "" (no keyword listening on this account). An account set to stream
    on a plan without the filtered stream searches instead."""
    config = account.config or {}
    mode = str(config.get("listening") or "")
    if mode == "stream" and not TIERS.get(str(config.get("tier") or "pro"), TIERS["pro"]).stream:
        return "search"
    return mode if mode in {"stream", "search"} else ""


def tier_of(account: ChannelAccount) -> Tier:
    config = account.config or {}
    default = "pro" if listening_mode(account) == "stream" else "basic"
    base = TIERS.get(str(config.get("tier") or default), TIERS[default])
    return Tier(
        stream=base.stream,
        max_rules=int(config.get("max_rules") or base.max_rules),
        rule_length=int(config.get("max_rule_length") or base.rule_length),
    )


def tag_prefix(account: ChannelAccount) -> str:
    return f"{TAG_PREFIX}{account.pk}:"


def _spec(rule: ListeningRule) -> RuleSpec:
    return RuleSpec(
        id=rule.pk,
        name=rule.name,
        brand_id=rule.brand_id,
        accounts=tuple(rule.accounts),
        any_of=tuple(rule.any_of),
        all_of=tuple(rule.all_of),
        none_of=tuple(rule.none_of),
        languages=frozenset(rule.languages),
        channels=frozenset(rule.channels),
    )


@dataclass
class Wanted:
    """Our rules as X rule values (value → tag), and the rules that could not be expressed."""

    values: dict[str, str]
    names: dict[str, str]  # tag → rule name
    problems: list[dict[str, str]]


def wanted_rules(account: ChannelAccount, *, limit: int) -> Wanted:
    """The translated active rules of the account's brand that apply to X, at most `limit` values."""
    tier = tier_of(account)
    rules = ListeningRule.objects.filter(workspace_id=account.workspace_id, is_active=True).order_by("pk")
    if account.brand_id:
        rules = rules.filter(brand_id=account.brand_id)
    wanted = Wanted({}, {}, [])
    for rule in rules:
        if rule.channels and account.kind not in rule.channels:
            continue
        tag = f"{tag_prefix(account)}{rule.pk}"
        wanted.names[tag] = rule.name
        try:
            values = [v for v in x_rule_values(_spec(rule), max_length=tier.rule_length) if v not in wanted.values]
        except UntranslatableRule as exc:
            wanted.problems.append({"rule": rule.name, "reason": str(exc)})
            continue
        if len(wanted.values) + len(values) > limit:
            wanted.problems.append(
                {"rule": rule.name, "reason": _("the X plan allows %(max)s rules and they are all in use") % {"max": tier.max_rules}}
            )
            continue
        for value in values:
            wanted.values[value] = tag
    return wanted


def _state(account: ChannelAccount) -> dict[str, Any]:
    return dict((account.config or {}).get("rule_sync") or {})


def _version(account: ChannelAccount) -> int:
    return RuleSetVersion.objects.filter(workspace_id=account.workspace_id).values_list("version", flat=True).first() or 0


def sync_due(account: ChannelAccount, now: float | None = None) -> bool:
    """Whether the account's rules changed since the last sync, or the last sync is old."""
    if not listening_mode(account):
        return False
    now = now or time.time()
    state = _state(account)
    if float(state.get("lease_until", 0)) > now or float(state.get("retry_at", 0)) > now:
        return False
    return state.get("version") != _version(account) or now - float(state.get("at", 0)) >= RESYNC_SECONDS


def _claim(account: ChannelAccount, now: float) -> bool:
    return health.claim_lease(account, "rule_sync", now=now, seconds=LEASE_SECONDS)


def _record(account: ChannelAccount, **changes: Any) -> None:
    def apply(config: dict[str, Any]) -> None:
        state = config.setdefault("rule_sync", {})
        state.update(changes)
        state.pop("lease_until", None)

    health.update_config(account, apply)


def problems_message(problems: list[dict[str, str]]) -> str:
    """One line a person can act on: which rules X does not get, and why."""
    details = "; ".join(
        _("“%(rule)s”: %(reason)s") % {"rule": p["rule"], "reason": p["reason"]} for p in problems
    )
    return _("X listening: %(count)s rule(s) could not be sent to X — %(details)s") % {"count": len(problems), "details": details}


def do_sync_rules(account: ChannelAccount, *, client: XClient | None = None, force: bool = False) -> dict[str, Any]:
    """Make X's rule set (stream) or our search queries (search) match our listening rules; the
    outcome is recorded on the account. Safe from several workers (a lease in the config)."""
    mode = listening_mode(account)
    if not mode:
        return {"skipped": "no keyword listening on this account"}
    now = time.time()
    if not force and not sync_due(account, now):
        return {"skipped": "not due"}
    if not _claim(account, now):
        return {"skipped": "another worker is syncing"}
    version = _version(account)
    tier = tier_of(account)
    own_client = client is None
    client = client or XClient(account)
    result: dict[str, Any] = {"mode": mode, "added": 0, "deleted": 0}
    try:
        if mode == "search":
            wanted = wanted_rules(account, limit=10**6)
            queries = pack_queries(wanted, tier)
            result["queries"] = [[query, ""] for query in queries]
            _forget_old_cursors(account, set(queries))
        else:
            wanted = _sync_stream(account, client, tier, result)
    except XAPIError as exc:
        _sync_failed(account, exc)
        return {"error": str(exc)}
    finally:
        if own_client:
            client.close()
    problems = wanted.problems
    message = problems_message(problems) if problems else ""
    _record(
        account,
        version=version,
        at=time.time(),
        ok=not problems,
        rules=len(wanted.values),
        problems=problems,
        message=message,
        retry_at=0,
        **result,
    )
    if problems:
        health.do_record_channel_error(account, message)
    else:
        health.do_record_channel_ok(account, reconnect=False)  # the app token works; the user token is not proven
    return {**result, "rules": len(wanted.values), "problems": problems}


def _sync_stream(account: ChannelAccount, client: XClient, tier: Tier, result: dict[str, Any]) -> Wanted:
    platform = client.stream_rules().data
    prefix = tag_prefix(account)
    ours = [r for r in platform if r.tag.startswith(prefix)]
    foreign = len(platform) - len(ours)
    wanted = wanted_rules(account, limit=max(0, tier.max_rules - foreign))
    stale = [r.id for r in ours if wanted.values.get(r.value) != r.tag]
    have = {(r.value, r.tag) for r in ours if r.id not in stale}
    new = [{"value": value, "tag": tag} for value, tag in wanted.values.items() if (value, tag) not in have]
    if stale:
        deleted = client.delete_stream_rules(stale)
        result["deleted"] = deleted.meta.summary.deleted
    if not new:
        return wanted
    check = client.add_stream_rules(new, dry_run=True)
    refused = {e.value: e for e in check.errors if e.title != "DuplicateRule"}
    for value, error in refused.items():
        tag = wanted.values.pop(value, "")
        reason = "; ".join(error.details) or error.title
        wanted.problems.append({"rule": wanted.names.get(tag, value), "reason": _("X refused it: %(reason)s") % {"reason": reason}})
    new = [r for r in new if r["value"] not in refused]
    if new:
        added = client.add_stream_rules(new)
        result["added"] = added.meta.summary.created
        for error in added.errors:
            if error.title == "DuplicateRule":
                continue  # already there (added by someone else with the same value): it matches anyway
            tag = wanted.values.pop(error.value, "")
            reason = "; ".join(error.details) or error.title
            wanted.problems.append({"rule": wanted.names.get(tag, error.value), "reason": _("X refused it: %(reason)s") % {"reason": reason}})
    return wanted


def pack_queries(wanted: Wanted, tier: Tier) -> list[str]:
    """Recent-search queries for the wanted values: several rules per query, `(a) OR (b)`, up to
    the plan's query length, so a plan's few requests cover many rules. Rules that do not fit in
    the plan's number of queries are moved to `wanted.problems`."""
    by_tag: dict[str, list[str]] = {}
    for value, tag in wanted.values.items():
        by_tag.setdefault(tag, []).append(value)
    packs: list[list[str]] = []

    def render(values: list[str]) -> str:
        return values[0] if len(values) == 1 else " OR ".join(f"({v})" for v in values)

    for tag, values in by_tag.items():
        placed: list[list[str]] = [list(p) for p in packs]
        for value in values:
            target = next((p for p in placed if len(render([*p, value])) <= tier.rule_length), None)
            if target is not None:
                target.append(value)
            else:
                placed.append([value])
        if len(placed) > tier.max_rules:
            for value in values:
                wanted.values.pop(value, None)
            wanted.problems.append(
                {"rule": wanted.names.get(tag, tag), "reason": _("the X plan allows %(max)s rules and they are all in use") % {"max": tier.max_rules}}
            )
            continue
        packs = placed
    return [render(p) for p in packs]


def _forget_old_cursors(account: ChannelAccount, queries: set[str]) -> None:
    from madoguchi.connectors.x.inbound import search_key

    keep = {search_key(q) for q in queries}

    def prune(config: dict[str, Any]) -> None:
        for key in [k for k in config if k.startswith("search:") and k not in keep]:
            del config[key]

    if any(k.startswith("search:") and k not in keep for k in (account.config or {})):
        health.update_config(account, prune)


def _sync_failed(account: ChannelAccount, exc: XAPIError) -> None:
    wait = RETRY_SECONDS
    if exc.status == 401:
        health.do_record_channel_error(account, _("X refused the app's bearer token (401) while syncing listening rules: %(detail)s") % {"detail": exc.detail}, disconnected=True)
    elif exc.status == 429:
        wait = max(wait, int(exc.rate.wait_seconds()))
        health.do_record_channel_error(account, _("X rate limit reached while syncing listening rules; retrying in %(seconds)s s") % {"seconds": wait})
    elif exc.status == 403 and "cap" in exc.detail.lower():
        health.do_record_channel_error(account, _("X listening: the plan's rule cap is reached (%(detail)s)") % {"detail": exc.detail})
    else:
        health.do_record_channel_error(account, _("X listening rules could not be synced: %(error)s") % {"error": str(exc)})
    _record(account, ok=False, message=account.last_error, retry_at=time.time() + wait)


def search_queries(account: ChannelAccount) -> list[str]:
    """The translated rules the last sync chose for recent search."""
    return [str(q[0]) for q in _state(account).get("queries") or []]
