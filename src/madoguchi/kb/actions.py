"""Writes for the knowledge base: articles and their workflow, versions, import, votes, vectors.

Every change to what is published bumps the workspace's index version after commit, so each
process's in-memory search index is rebuilt (incrementally) on its next search.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from madoguchi.accounts.models import Brand, User, Workspace
from madoguchi.kb.anonymize import anonymize
from madoguchi.kb.models import (
    Article,
    ArticleStatus,
    ArticleVector,
    ArticleVersion,
    ArticleVote,
    Category,
    KbState,
)
from madoguchi.text.normalize import detect_language

MAX_TITLE = 500
MAX_BODY = 100_000

# Which status changes are allowed, and whether they need a manager.
_TRANSITIONS: dict[tuple[str, str], bool] = {
    (ArticleStatus.DRAFT, ArticleStatus.REVIEW): False,
    (ArticleStatus.REVIEW, ArticleStatus.DRAFT): False,
    (ArticleStatus.REVIEW, ArticleStatus.PUBLISHED): True,
    (ArticleStatus.DRAFT, ArticleStatus.PUBLISHED): True,
    (ArticleStatus.PUBLISHED, ArticleStatus.ARCHIVED): True,
    (ArticleStatus.PUBLISHED, ArticleStatus.DRAFT): True,
    (ArticleStatus.ARCHIVED, ArticleStatus.DRAFT): True,
    (ArticleStatus.ARCHIVED, ArticleStatus.PUBLISHED): True,
}


class KbError(ValueError):
    """A knowledge-base request refused, with a message for the person who made it."""


_quiet = threading.local()


def _bump_index(workspace_id: int) -> None:
    """Tell every process that the published set changed (after commit), and queue embedding."""
    if getattr(_quiet, "workspaces", None) is not None:
        _quiet.workspaces.add(workspace_id)  # an import bumps once at its end
        return

    def bump() -> None:
        state, _created = KbState.objects.get_or_create(workspace_id=workspace_id)
        KbState.objects.filter(pk=state.pk).update(index_version=F("index_version") + 1)
        from madoguchi.kb import tasks

        tasks.enqueue_embedding(workspace_id)

    transaction.on_commit(bump)


def _check_text(title: str, body: str) -> tuple[str, str]:
    title, body = title.strip(), body.strip()
    if not title:
        raise KbError(_("An article needs a title."))
    if len(title) > MAX_TITLE:
        raise KbError(_("The title is longer than %(n)s characters.") % {"n": MAX_TITLE})
    if len(body) > MAX_BODY:
        raise KbError(_("The body is longer than %(n)s characters.") % {"n": MAX_BODY})
    return title, body


def do_create_category(workspace: Workspace, name: str, parent: Category | None = None, brand: Brand | None = None) -> Category:
    """Create (or return the existing) category `name` under `parent`."""
    name = name.strip()
    if not name:
        raise KbError(_("A category needs a name."))
    if parent is not None and parent.workspace_id != workspace.pk:
        raise KbError(_("That parent category does not exist."))
    category, _created = Category.objects.get_or_create(
        workspace=workspace, parent=parent, name=name[:200],
        defaults={"slug": slugify(name, allow_unicode=True)[:200] or "c", "brand": brand},
    )
    return category


def category_from_path(workspace: Workspace, path: str) -> Category | None:
    """The category for "Parent > Child" (or "Parent/Child"), created as needed."""
    parent = None
    for part in [p.strip() for p in path.replace("/", ">").split(">") if p.strip()]:
        parent = do_create_category(workspace, part, parent)
    return parent


@transaction.atomic
def do_create_article(
    workspace: Workspace,
    *,
    title: str,
    body: str = "",
    language: str = "",
    author: User | None = None,
    category: Category | None = None,
    brand: Brand | None = None,
    tags: Iterable[str] = (),
    external_id: str | None = None,
    status: str = ArticleStatus.DRAFT,
    source_conversation_id: int | None = None,
) -> Article:
    """Create an article and its first version."""
    title, body = _check_text(title, body)
    if category is not None and category.workspace_id != workspace.pk:
        raise KbError(_("That category does not exist."))
    now = timezone.now()
    article = Article.objects.create(
        workspace=workspace,
        brand=brand,
        category=category,
        title=title,
        body=body,
        language=language or detect_language(title + " " + body) or "en",
        status=status,
        external_id=external_id or None,
        tags=sorted({t.strip() for t in tags if t.strip()}),
        author=author,
        source_conversation_id=source_conversation_id,
        created_at=now,
        updated_at=now,
        published_at=now if status == ArticleStatus.PUBLISHED else None,
    )
    ArticleVersion.objects.create(article=article, number=1, title=title, body=body, author=author)
    if status == ArticleStatus.PUBLISHED:
        _bump_index(workspace.pk)
    return article


@transaction.atomic
def do_update_article(article: Article, *, author: User | None, **changes: object) -> Article:
    """Change an article's fields; a new title or body is saved as a new version."""
    allowed = {"title", "body", "language", "category", "brand", "tags"}
    unknown = set(changes) - allowed
    if unknown:
        raise KbError(_("Unknown fields: %(names)s") % {"names": ", ".join(sorted(unknown))})
    title = str(changes.get("title", article.title))
    body = str(changes.get("body", article.body))
    title, body = _check_text(title, body)
    category = cast("Category | None", changes.get("category", article.category))
    if category is not None and category.workspace_id != article.workspace_id:
        raise KbError(_("That category does not exist."))
    text_changed = (title, body) != (article.title, article.body)
    article.title, article.body = title, body
    article.category = category
    if "language" in changes:
        article.language = str(changes["language"]) or article.language
    if "brand" in changes:
        article.brand = changes["brand"]  # type: ignore[assignment]
    if "tags" in changes:
        article.tags = sorted({str(t).strip() for t in cast("Iterable[object]", changes["tags"]) if str(t).strip()})
    article.updated_at = timezone.now()
    if text_changed:
        article.version += 1
        ArticleVersion.objects.create(article=article, number=article.version, title=title, body=body, author=author)
    article.save()
    if article.status == ArticleStatus.PUBLISHED:
        _bump_index(article.workspace_id)
    return article


@transaction.atomic
def do_set_status(article: Article, status: str, *, actor: User) -> Article:
    """Move an article through draft → review → published → archived; managers approve."""
    if status == article.status:
        return article
    needs_manager = _TRANSITIONS.get((article.status, status))
    if needs_manager is None:
        raise KbError(
            _("An article cannot go from %(old)s to %(new)s.") % {"old": article.get_status_display(), "new": status}
        )
    if needs_manager and not actor.has_role("manager"):
        raise KbError(_("Only a manager can publish or archive articles."))
    was_published = article.status == ArticleStatus.PUBLISHED
    article.status = status
    if status == ArticleStatus.PUBLISHED:
        article.published_at = timezone.now()
        article.reviewer = actor
    article.updated_at = timezone.now()
    article.save(update_fields=["status", "published_at", "reviewer", "updated_at"])
    if was_published or status == ArticleStatus.PUBLISHED:
        _bump_index(article.workspace_id)
    return article


@transaction.atomic
def do_restore_version(article: Article, number: int, *, actor: User) -> Article:
    """Bring back an earlier version's text as a new version (history is never rewritten)."""
    old = article.versions.filter(number=number).first()
    if old is None:
        raise KbError(_("Version %(n)s does not exist.") % {"n": number})
    return do_update_article(article, author=actor, title=old.title, body=old.body)


@transaction.atomic
def do_delete_article(article: Article) -> None:
    """Delete an article with its history."""
    published = article.status == ArticleStatus.PUBLISHED
    workspace_id = article.workspace_id
    article.delete()
    if published:
        _bump_index(workspace_id)


def do_link_translations(article: Article, other: Article) -> None:
    """Mark two articles of one workspace as translations of each other."""
    if article.workspace_id != other.workspace_id:
        raise KbError(_("That article does not exist."))
    group = article.translation_group or other.translation_group or uuid.uuid4()
    Article.objects.filter(pk__in=[article.pk, other.pk]).update(translation_group=group)
    for a in (article, other):
        a.translation_group = group


def do_record_view(article: Article) -> None:
    """Count one page view (callers skip bots)."""
    Article.objects.filter(pk=article.pk).update(views=F("views") + 1)


def do_vote(article: Article, *, visitor: str, helpful: bool, comment: str = "") -> bool:
    """Record a visitor's helpful vote once; returns False if this visitor already voted."""
    try:
        with transaction.atomic():
            ArticleVote.objects.create(article=article, visitor=visitor[:64], helpful=helpful, comment=comment[:2000])
            column = "helpful_yes" if helpful else "helpful_no"
            Article.objects.filter(pk=article.pk).update(**{column: F(column) + 1})
    except IntegrityError:
        return False
    return True


# -- Save as FAQ -----------------------------------------------------------------------------


def do_save_conversation_as_faq(conversation, *, actor: User) -> Article:
    """A draft article from a conversation: the customer's question and our answer, anonymized."""
    from madoguchi.inbox import queries as inbox_queries

    messages, _more = inbox_queries.history(conversation, limit=200)
    question = next((m.text for m in messages if m.direction == "in" and m.text.strip()), "")
    answer = next((m.text for m in reversed(messages) if m.direction == "out" and m.text.strip()), "")
    if not question and not answer:
        raise KbError(_("This conversation has no question or answer to save."))
    names = [str(conversation.contact), getattr(conversation.contact, "name", "")]
    names += [m.identity.label for m in messages if m.identity is not None]
    names += [m.author.display_name for m in messages if m.author is not None]
    title = anonymize(question, names).strip() or _("Untitled question")
    title = " ".join(title.split())[:200]
    return do_create_article(
        conversation.workspace,
        title=title,
        body=anonymize(answer, names).strip(),
        author=actor,
        brand=conversation.brand,
        status=ArticleStatus.DRAFT,
        source_conversation_id=conversation.pk,
    )


# -- import / export -------------------------------------------------------------------------

FIELDS = ["external_id", "title", "body", "category", "language"]
_ALIASES = {"question": "title", "answer": "body", "lang": "language", "id": "external_id"}


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def parse_rows(data: bytes, filename: str = "") -> Iterable[tuple[int, dict | str]]:
    """Rows of a JSON Lines or CSV file as (line number, dict) or (line number, error)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield 0, _("The file is not UTF-8 text.")
        return
    is_jsonl = filename.endswith((".jsonl", ".json", ".ndjson")) or text.lstrip().startswith("{")
    if is_jsonl:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, _("not valid JSON (%(error)s)") % {"error": exc.msg}
                continue
            yield (n, row) if isinstance(row, dict) else (n, _("a line must be a JSON object"))
    else:
        reader = csv.DictReader(io.StringIO(text))
        for n, row in enumerate(reader, start=2):
            yield n, row


def _clean_row(row: dict) -> dict:
    out = {}
    for key, value in row.items():
        if key is None:
            continue
        name = _ALIASES.get(str(key).strip().lower(), str(key).strip().lower())
        if name in FIELDS:
            out[name] = "" if value is None else str(value).strip()
    return out


def do_import(
    workspace: Workspace,
    rows: Iterable[tuple[int, dict | str]],
    *,
    actor: User | None = None,
    status: str = ArticleStatus.PUBLISHED,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Create or update articles by external_id; a bad row is reported and skipped, never fatal."""
    _quiet.workspaces = set()
    try:
        return _import_rows(workspace, rows, actor=actor, status=status, progress=progress)
    finally:
        touched, _quiet.workspaces = _quiet.workspaces, None
        for workspace_id in touched:
            _bump_index(workspace_id)


def _import_rows(
    workspace: Workspace,
    rows: Iterable[tuple[int, dict | str]],
    *,
    actor: User | None,
    status: str,
    progress: Callable[[int], None] | None,
) -> ImportResult:
    result = ImportResult()
    for count, (line, raw) in enumerate(rows, start=1):
        if progress is not None:
            progress(count)
        if isinstance(raw, str):
            result.errors.append((line, raw))
            continue
        row = _clean_row(raw)
        external_id = row.get("external_id", "")
        if not external_id:
            result.errors.append((line, _("external_id is missing")))
            continue
        if len(external_id) > 200:
            result.errors.append((line, _("external_id is longer than 200 characters")))
            continue
        try:
            with transaction.atomic():
                category = category_from_path(workspace, row["category"]) if row.get("category") else None
                article = Article.objects.filter(workspace=workspace, external_id=external_id).first()
                if article is None:
                    do_create_article(
                        workspace, title=row.get("title", ""), body=row.get("body", ""), language=row.get("language", ""),
                        category=category, external_id=external_id, author=actor, status=status,
                    )
                    result.created += 1
                else:
                    before = (article.title, article.body, article.category_id, article.language)
                    after = (row.get("title", "").strip(), row.get("body", "").strip(), category.pk if category else None, row.get("language") or article.language)
                    if before == after:
                        result.unchanged += 1
                        continue
                    do_update_article(article, author=actor, title=row.get("title", ""), body=row.get("body", ""), category=category, language=row.get("language", ""))
                    result.updated += 1
        except KbError as exc:
            result.errors.append((line, str(exc)))
    return result


def export_rows(workspace: Workspace) -> Iterable[dict]:
    """Every article of a workspace as import-compatible rows."""
    from madoguchi.kb.queries import category_path

    paths = category_path(workspace.pk)
    for a in Article.objects.filter(workspace=workspace).order_by("pk").iterator():
        yield {
            "external_id": a.external_id or f"article-{a.pk}",
            "title": a.title,
            "body": a.body,
            "category": paths.get(a.category_id, "") if a.category_id is not None else "",
            "language": a.language,
        }


# -- vectors ---------------------------------------------------------------------------------


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def do_store_vectors(model: str, items: list[tuple[int, str, np.ndarray]]) -> None:
    """Save passage embeddings (article id, text hash, vector) for one model."""
    for article_id, digest, vec in items:
        ArticleVector.objects.update_or_create(
            article_id=article_id, model=model,
            defaults={"text_hash": digest, "vector": np.asarray(vec, dtype=np.float32).tobytes(), "created_at": timezone.now()},
        )


def do_set_embed_progress(workspace_id: int, done: int, total: int, *, bump: bool = False) -> None:
    """Record background embedding progress (and let searches pick up new vectors)."""
    KbState.objects.get_or_create(workspace_id=workspace_id)
    updates: dict = {"embed_done": done, "embed_total": total}
    if bump:
        updates["index_version"] = F("index_version") + 1
    KbState.objects.filter(workspace_id=workspace_id).update(**updates)
