"""Reads of listening: access checks, the stream of captured posts, share handled, rule preview."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from madoguchi.accounts.models import User
from madoguchi.accounts.queries import workspace_id_of
from madoguchi.ingest.models import Post
from madoguchi.listening.matcher import Matcher, RuleSpec, normalize_many
from madoguchi.listening.models import ListeningRule

VIEWS = {
    "todo": _("To do"),
    "all": _("All"),
    "answered": _("Answered"),
    "dismissed": _("Dismissed"),
}
SORTS = {"priority": _("Most important"), "newest": _("Newest")}
KIND_NAMES = {
    "question": _("question"),
    "complaint": _("complaint"),
    "request": _("request"),
    "praise": _("praise"),
    "other": _("other"),
    "spam": _("spam"),
}
URGENCY_NAMES = {0: _("low"), 1: _("medium"), 2: _("high")}


def access_post(user: User, post_id: int) -> Post:
    """The post if it is in the user's workspace, else 404."""
    post = Post.objects.filter(pk=post_id, workspace_id=workspace_id_of(user)).first()
    if post is None:
        raise Http404
    return post


def access_rule(user: User, rule_id: int) -> ListeningRule:
    rule = ListeningRule.objects.filter(pk=rule_id, workspace_id=workspace_id_of(user)).first()
    if rule is None:
        raise Http404
    return rule


def stream_for(user: User, *, view: str = "todo", sort: str = "priority", kind: str = "") -> QuerySet[Post]:
    """Captured posts of the user's workspace that are not (yet) conversations, in one of the views."""
    qs = Post.objects.filter(workspace_id=workspace_id_of(user)).select_related(
        "identity", "matched_rule", "channel_account"
    )
    if view == "todo":
        # Mentions went straight to the inbox as conversations: they are not the stream's work.
        qs = qs.filter(status__in=[Post.Status.NEW, Post.Status.SEEN], conversation__isnull=True)
    elif view in ("answered", "dismissed"):
        qs = qs.filter(status=view)
    if kind in KIND_NAMES:
        qs = qs.filter(kind=kind)
    if sort == "newest":
        return qs.order_by("-captured_at", "-pk")
    return qs.order_by("-priority", "-captured_at", "-pk")


@dataclass
class Handled:
    """Of the posts captured in a period: how many were answered, dismissed, or left."""

    captured: int
    answered: int
    dismissed: int
    left: int

    @property
    def share_handled(self) -> float:
        return (self.answered + self.dismissed) / self.captured if self.captured else 0.0

    @property
    def share_answered(self) -> float:
        return self.answered / self.captured if self.captured else 0.0

    def _pct(self, n: int) -> int:
        return round(100 * n / self.captured) if self.captured else 0

    @property
    def pct_answered(self) -> int:
        return self._pct(self.answered)

    @property
    def pct_dismissed(self) -> int:
        return self._pct(self.dismissed)

    @property
    def pct_handled(self) -> int:
        return self._pct(self.answered + self.dismissed)

    @property
    def pct_left(self) -> int:
        return 100 - self.pct_handled if self.captured else 0


def handled(user: User, *, days: int = 7) -> Handled:
    """Share handled over the last `days` days (one query)."""
    since = timezone.now() - dt.timedelta(days=days)
    row = (
        Post.objects.filter(workspace_id=workspace_id_of(user), captured_at__gte=since)
        .exclude(conversation__isnull=False, status__in=[Post.Status.NEW, Post.Status.SEEN])  # mentions
        .aggregate(
        captured=Count("pk"),
        answered=Count("pk", filter=Q(status=Post.Status.ANSWERED)),
        dismissed=Count("pk", filter=Q(status=Post.Status.DISMISSED)),
        )
    )
    return Handled(row["captured"], row["answered"], row["dismissed"], row["captured"] - row["answered"] - row["dismissed"])


def rules_for(user: User) -> QuerySet[ListeningRule]:
    return ListeningRule.objects.filter(workspace_id=workspace_id_of(user)).select_related("brand")


@dataclass
class Preview:
    """What a (not yet saved) rule would have captured among recent posts."""

    count: int
    scanned: int
    hours: int
    sample: list[dict]
    truncated: bool  # more posts than PREVIEW_SCAN in the period: only the newest were scanned


PREVIEW_SCAN = 20_000


def preview(user: User, data: dict, *, hours: int = 24, limit: int = 5, scan: int = PREVIEW_SCAN) -> Preview:
    """How many of the last `hours` of captured posts a rule would match, and the newest few.

    The rule alone is compiled with the same matcher as ingestion, and run over at most `scan`
    of the newest posts (text only, in batches), so a preview costs the same whatever the history.
    """
    spec = RuleSpec(
        id=0,
        name=data.get("name", ""),
        accounts=tuple(data.get("accounts", ())),
        any_of=tuple(data.get("any_of", ())),
        all_of=tuple(data.get("all_of", ())),
        none_of=tuple(data.get("none_of", ())),
        languages=frozenset(data.get("languages", ())),
        channels=frozenset(data.get("channels", ())),
    )
    matcher = Matcher.build([spec])
    since = timezone.now() - dt.timedelta(hours=hours)
    rows = list(
        Post.objects.filter(workspace_id=workspace_id_of(user), captured_at__gte=since)
        .order_by("-captured_at", "-pk")
        .values_list("pk", "text", "language", "channel_account__kind")[: scan + 1]
    )
    truncated = len(rows) > scan
    rows = rows[:scan]
    count, hit_ids = 0, list[int]()
    if not matcher.empty:
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            found = matcher.terms_in_many(normalize_many([r[1] for r in chunk]))
            for index, terms in sorted(found.items()):
                pk, _text, language, channel = chunk[index]
                if matcher.rules_hit(terms, language=language, channel=channel):
                    count += 1
                    if len(hit_ids) < limit:
                        hit_ids.append(pk)
    posts = Post.objects.filter(pk__in=hit_ids).select_related("identity", "channel_account").order_by("-captured_at", "-pk")
    sample = [
        {
            "id": p.pk,
            "handle": p.identity.handle or p.identity.external_id,
            "channel": p.channel_account.get_kind_display(),
            "text": p.text[:280],
            "when": timezone.localtime(p.captured_at).strftime("%Y-%m-%d %H:%M"),
            "url": reverse("listening:post", args=[p.pk]),
        }
        for p in posts
    ]
    return Preview(count, len(rows), hours, sample, truncated)


def rule_changes(user: User, *, limit: int = 20) -> list[dict]:
    """Who changed which rule when, newest first, with the fields that changed."""
    from madoguchi.accounts.models import AuditLog

    logs = (
        AuditLog.objects.filter(workspace_id=workspace_id_of(user), action__startswith="listening.rule.")
        .select_related("actor")
        .order_by("-created_at", "-pk")[:limit]
    )
    out = []
    for log in logs:
        before, after = log.data.get("before") or {}, log.data.get("after") or {}
        changed = [f for f in ("name", "brand", "is_active", *RULE_FIELD_NAMES) if before.get(f) != after.get(f)]
        out.append(
            {
                "when": log.created_at,
                "actor": log.actor,
                "action": log.action.rsplit(".", 1)[-1],
                "name": after.get("name") or before.get("name") or "",
                "changed": changed if before and after else [],
            }
        )
    return out


RULE_FIELD_NAMES = ("accounts", "any_of", "all_of", "none_of", "languages", "channels")


def export_rules(workspace) -> str:
    """The workspace's rules as YAML, in the shape `do_import_rules` reads back."""
    import yaml

    rules = []
    for r in ListeningRule.objects.filter(workspace=workspace).select_related("brand").order_by("brand__name", "name"):
        data: dict = {"name": r.name, "brand": r.brand.name}
        for f in ("accounts", "any_of", "all_of", "none_of", "languages", "channels"):
            if getattr(r, f):
                data[f] = list(getattr(r, f))
        if not r.is_active:
            data["active"] = False
        rules.append(data)
    return yaml.safe_dump({"rules": rules}, allow_unicode=True, sort_keys=False)


# Pictographs, dingbats, symbols and flags: what people call emoji.
_EMOJI_RE = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\U0001f1e6-\U0001f1ff]")


def _emoji_count(text: str) -> int:
    return len(_EMOJI_RE.findall(text))


@dataclass
class Author:
    """The poster as an agent should read them before answering: history, reach and habits."""

    posts: list[Post]
    conversations: list
    followers: int | None
    languages: list[tuple[str, int]]
    emoji_per_post: float


def author_of(user: User, post: Post) -> Author:
    """The post author's earlier captured posts and conversations (this workspace only) and their habits."""
    from madoguchi.inbox.models import Conversation

    posts = list(
        Post.objects.filter(workspace_id=workspace_id_of(user), contact_id=post.contact_id)
        .exclude(pk=post.pk)
        .select_related("matched_rule")
        .order_by("-created_at")[:20]
    )
    conversations = list(
        Conversation.objects.filter(workspace_id=workspace_id_of(user), contact_id=post.contact_id)
        .select_related("channel_account")
        .order_by("-last_message_at")[:10]
    )
    everything = [post, *posts]
    languages = Counter(p.language or "?" for p in everything).most_common()
    emoji = sum(_emoji_count(p.text) for p in everything) / len(everything)
    return Author(posts, conversations, post.identity.followers, languages, round(emoji, 1))


def poster_of_contact(workspace_id: int, contact_id: int) -> Author | None:
    """Beside the inbox composer: the contact's captured public posts (newest first), reach and
    habits; None when they never posted publicly where we listen. Conversations are left out:
    the inbox lists them already."""
    from madoguchi.contacts.models import Identity

    posts = list(
        Post.objects.filter(workspace_id=workspace_id, contact_id=contact_id)
        .select_related("matched_rule")
        .order_by("-created_at")[:10]
    )
    if not posts:
        return None
    followers = (
        Identity.objects.filter(contact_id=contact_id, contact__workspace_id=workspace_id, followers__isnull=False)
        .order_by("-followers")
        .values_list("followers", flat=True)
        .first()
    )
    languages = Counter(p.language or "?" for p in posts).most_common()
    emoji = sum(_emoji_count(p.text) for p in posts) / len(posts)
    return Author(posts, [], followers, languages, round(emoji, 1))
