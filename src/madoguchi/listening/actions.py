"""Writes of listening: rules (with cache invalidation), the ingest routing seam, and agents' handling of posts."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from madoguchi.accounts.models import AuditLog, Brand, User, Workspace
from madoguchi.connectors.base import InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.contacts.models import Identity
from madoguchi.ingest.models import Post
from madoguchi.listening.matcher import Matcher, RuleSpec, normalize_many
from madoguchi.listening.models import ListeningRule, RuleSetVersion
from madoguchi.listening.triage import Triage, triage
from madoguchi.text.normalize import detect_language, normalize


class RuleError(ValueError):
    """A rule file or form that cannot be used, with a message for the person who wrote it."""


# ---------------------------------------------------------------- compiled rule sets, per workspace

# How often a process asks the database whether another process changed the rules. A change made
# in this process is seen at once (the action drops the cached entry).
CHECK_SECONDS = 2.0


@dataclass
class _Entry:
    version: int
    checked_at: float
    matcher: Matcher


_cache: dict[int, _Entry] = {}
_build_lock = threading.Lock()


def _specs(workspace_id: int) -> list[RuleSpec]:
    rules = ListeningRule.objects.filter(workspace_id=workspace_id, is_active=True).order_by("pk")
    return [
        RuleSpec(
            id=r.pk,
            name=r.name,
            brand_id=r.brand_id,
            accounts=tuple(r.accounts),
            any_of=tuple(r.any_of),
            all_of=tuple(r.all_of),
            none_of=tuple(r.none_of),
            languages=frozenset(r.languages),
            channels=frozenset(r.channels),
        )
        for r in rules
    ]


def matcher_for(workspace_id: int) -> Matcher:
    """The workspace's compiled rule set; rebuilt off to the side, then swapped in, when the rules change.

    Ingestion never waits for a rebuild once a workspace's rules are compiled: when another
    process changed them (the version moved), a background thread compiles the new set while
    every caller keeps using the previous automaton. Only the first compilation in a process, and
    a change made in this process (which drops the cached entry), compile in the caller.
    """
    entry = _cache.get(workspace_id)
    now = time.monotonic()
    if entry is not None and now - entry.checked_at < CHECK_SECONDS:
        return entry.matcher
    version = RuleSetVersion.objects.filter(workspace_id=workspace_id).values_list("version", flat=True).first() or 0
    if entry is not None:
        entry.checked_at = now
        if entry.version != version and workspace_id not in _building:
            _building.add(workspace_id)
            REBUILD_IN_BACKGROUND(workspace_id, version)
        return entry.matcher
    with _build_lock:
        entry = _cache.get(workspace_id)
        if entry is not None and entry.version == version:
            return entry.matcher
        matcher = Matcher.build(_specs(workspace_id))
        _cache[workspace_id] = _Entry(version, time.monotonic(), matcher)
        return matcher


_building: set[int] = set()


def _rebuild(workspace_id: int, version: int) -> None:
    """Compile a workspace's rules and swap them in (the old automaton serves until then)."""
    try:
        matcher = Matcher.build(_specs(workspace_id))
        with _build_lock:
            current = _cache.get(workspace_id)
            if current is not None:  # not forgotten meanwhile by a change in this process
                _cache[workspace_id] = _Entry(version, time.monotonic(), matcher)
    finally:
        _building.discard(workspace_id)


def _rebuild_in_thread(workspace_id: int, version: int) -> None:
    def run() -> None:
        from django.db import connection

        try:
            _rebuild(workspace_id, version)
        finally:
            connection.close()  # this thread's own connection

    threading.Thread(target=run, name=f"listening-rebuild-{workspace_id}", daemon=True).start()


# Tests replace this with `_rebuild`, to rebuild in the caller's thread and transaction.
REBUILD_IN_BACKGROUND = _rebuild_in_thread


def forget_compiled_rules(workspace_id: int | None = None) -> None:
    """Drop cached automata (all, or one workspace's) so the next post rebuilds them."""
    if workspace_id is None:
        _cache.clear()
    else:
        _cache.pop(workspace_id, None)


def _bump_version(workspace_id: int) -> None:
    # A random version rather than a counter: a rolled-back change can never leave two processes
    # agreeing on a number that stands for different rules.
    RuleSetVersion.objects.update_or_create(workspace_id=workspace_id, defaults={"version": secrets.randbits(62)})
    forget_compiled_rules(workspace_id)
    transaction.on_commit(lambda: forget_compiled_rules(workspace_id))


# ---------------------------------------------------------------- rules

RULE_FIELDS = ("accounts", "any_of", "all_of", "none_of", "languages", "channels")


def clean_terms(value: Any, name: str) -> list[str]:
    """A list of words or exact phrases, stripped, bounded in number and length."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise RuleError(_("%(field)s must be a list of words") % {"field": name})
    terms = [str(v).strip() for v in value if str(v).strip()]
    if len(terms) > 1000:
        raise RuleError(_("%(field)s has more than 1000 entries") % {"field": name})
    if any(len(t) > 200 for t in terms):
        raise RuleError(_("%(field)s has an entry longer than 200 characters") % {"field": name})
    return terms


def check_rule_data(data: dict[str, Any]) -> dict[str, Any]:
    """Validate one rule as given in YAML or a form; returns clean field values."""
    if not isinstance(data, dict):
        raise RuleError(_("each rule must be a mapping"))
    unknown = set(data) - {"name", "brand", "active", *RULE_FIELDS}
    if unknown:
        raise RuleError(_("unknown rule fields: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 120:
        raise RuleError(_("every rule needs a name of at most 120 characters"))
    clean: dict[str, Any] = {"name": name, "is_active": bool(data.get("active", True))}
    for f in RULE_FIELDS:
        clean[f] = clean_terms(data.get(f), f)
    clean["languages"] = [t.lower() for t in clean["languages"]]
    clean["channels"] = [t.lower() for t in clean["channels"]]
    if not (clean["accounts"] or clean["any_of"] or clean["all_of"]):
        raise RuleError(_("rule %(name)s needs accounts, any_of or all_of") % {"name": name})
    return clean


def rule_data(rule: ListeningRule) -> dict[str, Any]:
    """A rule's fields as plain data (for the audit log and the editor)."""
    data: dict[str, Any] = {"name": rule.name, "brand": rule.brand_id, "is_active": rule.is_active}
    for f in RULE_FIELDS:
        data[f] = list(getattr(rule, f))
    return data


def _audit(workspace_id: int, actor: User | None, action: str, **data: Any) -> None:
    AuditLog.objects.create(workspace_id=workspace_id, actor=actor, action=action, data=data)


@transaction.atomic
def do_save_rule(
    workspace: Workspace,
    brand: Brand,
    data: dict[str, Any],
    rule: ListeningRule | None = None,
    *,
    actor: User | None = None,
    create_only: bool = False,
) -> ListeningRule:
    """Create or change one rule; every process picks it up without stopping ingestion.

    Without `rule`, a rule of the same name is changed (YAML import), unless `create_only`, where
    the name must be new. Every change is written to the audit log with the fields before and after.
    """
    clean = check_rule_data(data)
    if brand.workspace_id != workspace.pk:
        raise RuleError(_("unknown brand"))
    if rule is not None and rule.workspace_id != workspace.pk:
        raise RuleError(_("unknown rule"))
    same_name = ListeningRule.objects.filter(workspace=workspace, name=clean["name"])
    if rule is None:
        existing = same_name.first()
        if existing is not None and create_only:
            raise RuleError(_("a rule named %(name)s already exists") % {"name": clean["name"]})
        rule = existing or ListeningRule(workspace=workspace)
    elif same_name.exclude(pk=rule.pk).exists():
        raise RuleError(_("a rule named %(name)s already exists") % {"name": clean["name"]})
    before = rule_data(rule) if rule.pk else None
    for key, value in clean.items():
        setattr(rule, key, value)
    rule.brand = brand
    after = rule_data(rule)
    if before == after:
        return rule  # nothing changed: no new version, no audit entry
    rule.updated_at = timezone.now()
    rule.save()
    _audit(workspace.pk, actor, "listening.rule.update" if before else "listening.rule.create", rule=rule.pk, before=before, after=after)
    _bump_version(workspace.pk)
    return rule


@transaction.atomic
def do_delete_rule(rule: ListeningRule, *, actor: User | None = None) -> None:
    """Remove a rule; posts it captured keep their triage and lose only the link."""
    workspace_id = rule.workspace_id
    _audit(workspace_id, actor, "listening.rule.delete", rule=rule.pk, before=rule_data(rule), after=None)
    rule.delete()
    _bump_version(workspace_id)


def parse_rules(text: str) -> list[dict[str, Any]]:
    """Validate a YAML rule file (a mapping with a `rules:` list) without saving anything."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(_("not valid YAML: %(error)s") % {"error": exc}) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError(_("the file must hold a mapping with a 'rules' list"))
    out = []
    for data in doc["rules"]:
        clean = check_rule_data(data)
        clean["brand"] = str(data.get("brand") or "")
        out.append(clean)
    return out


@transaction.atomic
def do_import_rules(workspace: Workspace, text: str, *, replace: bool = False, actor: User | None = None) -> list[ListeningRule]:
    """Import rules from YAML, matched by name; with `replace`, rules not in the file are removed."""
    rules = parse_rules(text)
    brands = {b.name: b for b in Brand.objects.filter(workspace=workspace)}
    default_brand = next(iter(brands.values()), None)
    saved: list[ListeningRule] = []
    for data in rules:
        brand_name = data.pop("brand")
        brand = brands.get(brand_name) if brand_name else default_brand
        if brand is None:
            raise RuleError(_("unknown brand %(brand)s") % {"brand": brand_name})
        data["active"] = data.pop("is_active")
        saved.append(do_save_rule(workspace, brand, data, actor=actor))
    if replace:
        for gone in ListeningRule.objects.filter(workspace=workspace).exclude(pk__in=[r.pk for r in saved]):
            do_delete_rule(gone, actor=actor)
    return saved


# ---------------------------------------------------------------- the ingest seam


@dataclass
class Decision:
    """What ingest does with an inbound item: drop it, capture it on the stream, or open a conversation."""

    item: InboundItem
    drop: bool = False
    post_fields: dict[str, Any] = field(default_factory=dict)


def _engagement(raw: dict[str, Any]) -> float:
    total = 0.0
    for key in ("likes", "reposts", "replies", "like_count", "retweet_count", "reply_count"):
        value = raw.get(key)
        if isinstance(value, int | float) and value > 0:
            total += float(value)
    return total


def repeats_of(account: ChannelAccount, author_external_id: str) -> int:
    """How many posts the author sent (captured) in the last day: the repeated-poster signal."""
    since = timezone.now() - dt.timedelta(hours=24)
    # Two indexed lookups: filtering posts through a join on the author's handle made SQLite
    # scan every post of the channel account (41 ms a post at 10,000 posts).
    identity_id = (
        Identity.objects.filter(workspace_id=account.workspace_id, kind=account.kind, external_id=author_external_id)
        .values_list("pk", flat=True)
        .first()
    )
    if identity_id is None:
        return 0
    return Post.objects.filter(identity_id=identity_id, captured_at__gte=since).count()


def repeats_of_many(identity_ids: Iterable[int]) -> dict[int, int]:
    """`repeats_of` for many identities in one query per 500: {identity id: posts in the last day}."""
    ids = sorted(set(identity_ids))
    since = timezone.now() - dt.timedelta(hours=24)
    out: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        rows = (
            Post.objects.filter(identity_id__in=ids[start : start + 500], captured_at__gte=since)
            .values_list("identity_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
        out.update({identity_id: n for identity_id, n in rows})
    return out


def triage_fields(item: InboundItem, language: str, rule_id: int | None, repeats: int = 0) -> dict[str, Any]:
    """The triage columns of a captured post."""
    raw = item.raw or {}
    t: Triage = triage(
        item.text,
        language=language,
        followers=item.author.followers,
        verified=bool(raw.get("verified")),
        engagement=_engagement(raw),
        repeats=repeats,
    )
    fields = {
        "kind": t.kind,
        "urgency": t.urgency,
        "sentiment": t.sentiment,
        "influence": t.influence,
        "priority": t.priority,
        "matched_rule_id": rule_id,
    }
    if t.kind == "spam":
        # Noise never reaches agents; it stays countable (and can be undone) as dismissed.
        fields["status"] = Post.Status.DISMISSED
    return fields


def _triage_fields(account: ChannelAccount, item: InboundItem, language: str, rule_id: int | None, *, with_repeats: bool) -> dict[str, Any]:
    repeats = repeats_of(account, item.author.external_id) if with_repeats else 0
    return triage_fields(item, language, rule_id, repeats)


def decide(account: ChannelAccount, item: InboundItem) -> Decision:
    """Route an inbound item by the workspace's listening rules, and triage what is captured.

    Mentions of a brand's own accounts always become conversations; keyword matches on a
    stream are captured as posts; stream items that match nothing are dropped. Items that
    arrive as conversations (DMs, mail) stay conversations. A workspace without rules
    captures every stream item, as before listening existed.
    """
    matcher = matcher_for(account.workspace_id)
    if matcher.empty:
        if item.route == "stream" or item.public:
            language = item.language or item.author.language or detect_language(item.text)
            return Decision(item, post_fields=_triage_fields(account, item, language, None, with_repeats=False))
        return Decision(item)
    text = normalize(item.text)
    language = item.language or item.author.language or detect_language(item.text)
    hits = matcher.match(text, language=language, channel=account.kind, normalized=True)
    if not hits:
        if item.route == "stream":
            return Decision(item, drop=True)
        if item.public:
            return Decision(item, post_fields=_triage_fields(account, item, language, None, with_repeats=False))
        return Decision(item)
    hit = hits[0]
    fields = _triage_fields(account, item, language, hit.rule_id, with_repeats=True)
    if hit.mention:
        fields.pop("status", None)  # every mention is answered, even one that looks like spam
        return Decision(item.model_copy(update={"route": "conversation", "public": True}), post_fields=fields)
    return Decision(item, post_fields=fields)


@dataclass
class StreamDecision:
    """What `decide_many` says of one stream item; triage is left to the caller, which knows the
    author's repeat count at the moment the post is stored."""

    drop: bool = False
    mention: bool = False  # a brand's own account: goes to `do_ingest`, which opens a conversation
    rule_id: int | None = None
    language: str = ""
    with_repeats: bool = False


def decide_many(account: ChannelAccount, items: list[InboundItem]) -> list[StreamDecision]:
    """`decide` for a batch of `route="stream"` items, with the same outcome item by item.

    Texts are normalized and scanned in one pass each (`normalize_many`, `terms_in_many`);
    language is detected only for the few items that contain a rule term.
    """
    matcher = matcher_for(account.workspace_id)
    if matcher.empty:
        return [
            StreamDecision(language=item.language or item.author.language or detect_language(item.text))
            for item in items
        ]
    found = matcher.terms_in_many(normalize_many([item.text for item in items]))
    out: list[StreamDecision] = []
    drop = StreamDecision(drop=True)
    for index, item in enumerate(items):
        terms = found.get(index)
        if not terms:
            out.append(drop)
            continue
        language = item.language or item.author.language or detect_language(item.text)
        hits = matcher.rules_hit(terms, language=language, channel=account.kind)
        if not hits:
            out.append(drop)
        elif hits[0].mention:
            out.append(StreamDecision(mention=True, language=language))
        else:
            out.append(StreamDecision(rule_id=hits[0].rule_id, language=language, with_repeats=True))
    return out


# ---------------------------------------------------------------- live: new posts on the stream

_captured = threading.local()


def note_captured(workspace_id: int, post_ids: Iterable[int]) -> None:
    """Announce captured posts on the live bus (kind "listening.captured") once the transaction commits.

    Posts noted within one transaction become one event per workspace, so a firehose batch does
    not write an event per post. Posts that were rolled back, became conversations (mentions) or
    were filed as noise are not counted.
    """
    pending = getattr(_captured, "ids", None)
    if pending is None:
        pending = _captured.ids = {}
    pending.setdefault(workspace_id, []).extend(post_ids)
    transaction.on_commit(_announce_captured)


def _announce_captured() -> None:
    from madoguchi.inbox.events import publish

    pending: dict[int, list[int]] = getattr(_captured, "ids", None) or {}
    _captured.ids = {}
    for workspace_id, ids in pending.items():
        row = Post.objects.filter(
            pk__in=ids[-5000:], workspace_id=workspace_id, conversation__isnull=True,
            status__in=[Post.Status.NEW, Post.Status.SEEN],
        ).aggregate(n=Count("pk"), urgent=Count("pk", filter=Q(urgency__gte=2)))
        if row["n"]:
            publish(workspace_id, "listening.captured", count=row["n"], urgent=row["urgent"])


def on_post_saved(sender: Any, instance: Post, created: bool, **kwargs: Any) -> None:
    """post_save receiver: posts stored one by one (`do_ingest`) are announced too."""
    if created and instance.conversation_id is None:
        note_captured(instance.workspace_id, [instance.pk])


# ---------------------------------------------------------------- agents' handling of posts


def _handle(post: Post, status: str, user: User) -> Post:
    now = timezone.now()
    Post.objects.filter(pk=post.pk).update(status=status, handled_at=now, handled_by=user)
    post.status, post.handled_at, post.handled_by = status, now, user
    return post


@transaction.atomic
def do_mark_post_seen(post: Post, user: User) -> Post:
    """An agent has looked at a post; it stays on the stream until answered or dismissed."""
    if post.status == Post.Status.NEW:
        Post.objects.filter(pk=post.pk, status=Post.Status.NEW).update(status=Post.Status.SEEN)
        post.status = Post.Status.SEEN
    return post


@transaction.atomic
def do_dismiss_post(post: Post, user: User) -> Post:
    """Take a post off the stream as needing no answer."""
    if post.status in (Post.Status.ANSWERED, Post.Status.DISMISSED):
        return post
    return _handle(post, Post.Status.DISMISSED, user)


@transaction.atomic
def do_dismiss_posts(workspace_id: int, post_ids: Iterable[int], user: User) -> list[int]:
    """Bulk dismiss (noise); only the workspace's own unhandled posts are touched. Returns
    the ids dismissed, so that the agent can undo exactly those."""
    unhandled = Post.objects.select_for_update().filter(
        workspace_id=workspace_id, pk__in=list(post_ids), status__in=[Post.Status.NEW, Post.Status.SEEN]
    )
    ids = list(unhandled.values_list("pk", flat=True))
    Post.objects.filter(pk__in=ids).update(status=Post.Status.DISMISSED, handled_at=timezone.now(), handled_by=user)
    return ids


@transaction.atomic
def do_restore_posts(workspace_id: int, post_ids: Iterable[int], user: User) -> int:
    """Undo a dismissal: the workspace's dismissed posts go back on the stream, as seen."""
    return Post.objects.filter(workspace_id=workspace_id, pk__in=list(post_ids), status=Post.Status.DISMISSED).update(
        status=Post.Status.SEEN, handled_at=None, handled_by=None
    )


@transaction.atomic
def do_respond_to_post(post: Post, user: User):
    """Open a conversation with the post as its first message and the author as the contact.

    Idempotent: a post already answered returns its conversation.
    """
    from madoguchi.inbox import actions as inbox_actions
    from madoguchi.inbox.models import Conversation

    post = Post.objects.select_for_update().select_related("channel_account", "identity").get(pk=post.pk)
    if post.conversation_id:
        conversation = Conversation.objects.get(pk=post.conversation_id)
    else:
        conversation = inbox_actions.do_create_conversation(
            channel_account=post.channel_account,
            identity=post.identity,
            language=post.language,
            created_at=post.created_at,
        )
        inbox_actions.do_receive_message(
            conversation,
            identity=post.identity,
            text=post.text,
            external_id=post.external_id,
            public=True,
            language=post.language,
            created_at=post.created_at,
            raw=post.raw,
        )
        if post.urgency >= 2:
            inbox_actions.do_set_priority(conversation, 3)
        elif post.urgency == 1:
            inbox_actions.do_set_priority(conversation, 2)
        Post.objects.filter(pk=post.pk).update(conversation=conversation)
        post.conversation = conversation
    if post.status != Post.Status.ANSWERED:
        _handle(post, Post.Status.ANSWERED, user)
    return conversation

