"""Replay an archive of public posts (JSON Lines) through the same path as live posts.

One post per line: `id`, `channel`, `author` (handle), `text`, `created_at` (ISO 8601 with a
zone) are required; `author_id`, `followers`, `lang`, `in_reply_to`, `url`, `verified`,
`likes`, `reposts`, `replies` are optional. Every line goes through `ingest.actions.do_ingest_posts`
as a stream item, so replaying a file twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from madoguchi.accounts.models import Workspace
from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.connectors.models import ChannelAccount

BATCH = 500


class ArchivedPost(BaseModel):
    """One line of a replay file."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=255)
    channel: str = Field(min_length=1, max_length=16)
    author: str = Field(min_length=1, max_length=255)
    author_id: str = Field(default="", max_length=255)
    text: str = Field(max_length=100_000)
    created_at: dt.datetime
    followers: int | None = Field(default=None, ge=0)
    lang: str = Field(default="", max_length=16)
    in_reply_to: str = Field(default="", max_length=255)
    url: str = Field(default="", max_length=1000)


@dataclass
class ReplaySummary:
    """What a replay did."""

    lines: int = 0
    captured: int = 0
    conversations: int = 0
    dropped: int = 0
    duplicates: int = 0
    quarantined: int = 0
    no_account: int = 0
    seconds: float = 0.0
    by_rule: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


def to_item(post: ArchivedPost) -> InboundItem:
    extra: dict[str, Any] = dict(post.model_extra or {})
    return InboundItem(
        external_id=post.id,
        author=InboundAuthor(
            external_id=post.author_id or post.author, handle=post.author, followers=post.followers
        ),
        text=post.text,
        created_at=post.created_at if post.created_at.tzinfo else post.created_at.replace(tzinfo=dt.UTC),
        reply_to=[post.in_reply_to] if post.in_reply_to else [],
        public=True,
        url=post.url,
        route="stream",
        language=post.lang,
        raw=extra,
    )


def do_replay(
    workspace: Workspace,
    lines: Iterable[str],
    *,
    account: ChannelAccount | None = None,
    progress: Callable[[ReplaySummary], None] | None = None,
) -> ReplaySummary:
    """Ingest every line as a live stream item would be, BATCH lines at a time.

    Each batch goes through `ingest.actions.do_ingest_posts` (the firehose path: the same
    decisions as `do_ingest` item by item, stored in bulk), one transaction per batch.
    """
    from madoguchi.ingest.actions import IngestResult, do_ingest_posts, do_quarantine
    from madoguchi.listening.models import ListeningRule

    accounts = {a.kind: a for a in ChannelAccount.objects.filter(workspace=workspace, is_active=True).order_by("-pk")}
    rule_names: dict[int, str] = {}
    summary = ReplaySummary()
    started = time.perf_counter()
    iterator = iter(lines)
    while True:
        batch = [line for _, line in zip(range(BATCH), iterator, strict=False)]
        if not batch:
            break
        with transaction.atomic():
            by_account: dict[int, tuple[ChannelAccount, list[InboundItem]]] = {}
            for line in batch:
                summary.lines += 1
                if not line.strip():
                    continue
                try:
                    post = ArchivedPost.model_validate(json.loads(line))
                    item = to_item(post)
                except (ValueError, ValidationError) as exc:
                    do_quarantine(account, f"replay line {summary.lines}: {exc}"[:5000], line, workspace_id=workspace.pk)
                    summary.quarantined += 1
                    continue
                target = account or accounts.get(post.channel)
                if target is None:
                    summary.no_account += 1
                    continue
                by_account.setdefault(target.pk, (target, []))[1].append(item)
            results: list[IngestResult] = []
            for target, items in by_account.values():
                results.extend(do_ingest_posts(target, items))
            missing = {r.post.matched_rule_id for r in results if r.created and r.post and r.post.matched_rule_id}
            missing -= set(rule_names)
            if missing:
                rule_names.update(ListeningRule.objects.filter(pk__in=missing).values_list("pk", "name"))
            for result in results:
                if result.dropped:
                    summary.dropped += 1
                elif result.quarantine is not None:
                    summary.quarantined += 1
                elif not result.created:
                    summary.duplicates += 1
                else:
                    if result.message is not None:
                        summary.conversations += 1
                    else:
                        summary.captured += 1
                    if result.post is not None:
                        summary.by_kind[result.post.kind or "-"] += 1
                        rule_id = result.post.matched_rule_id
                        summary.by_rule[rule_names.get(rule_id, str(rule_id)) if rule_id else "-"] += 1
        summary.seconds = time.perf_counter() - started
        if progress is not None:
            progress(summary)
    summary.seconds = time.perf_counter() - started
    return summary
