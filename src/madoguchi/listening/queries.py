"""Reads of listening: access checks, the stream of captured posts, share handled, rule preview."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from madoguchi.accounts.models import User
from madoguchi.accounts.queries import workspace_id_of
from madoguchi.ingest.models import Post
from madoguchi.listening.matcher import Matcher, RuleSpec
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


def preview(user: User, data: dict, *, hours: int = 24, limit: int = 5, scan: int = 20_000) -> tuple[int, list[Post]]:
    """How many of the last day's captured posts a (not yet saved) rule would match, and a few of them."""
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
    posts = Post.objects.filter(workspace_id=workspace_id_of(user), captured_at__gte=since).select_related(
        "channel_account"
    ).order_by("-captured_at")[:scan]
    count, sample = 0, list[Post]()
    for post in posts:
        if matcher.match(post.text, language=post.language, channel=post.channel_account.kind):
            count += 1
            if len(sample) < limit:
                sample.append(post)
    return count, sample


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
