"""Writes for the knowledge base: articles and their workflow, versions, import, votes, vectors.

Every change to what is published bumps the workspace's index version after commit, so each
process's in-memory search index is rebuilt (incrementally) on its next search.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from madoguchi.accounts.models import Brand, User, Workspace
from madoguchi.kb.anonymize import anonymize
from madoguchi.kb.models import (
    Article,
    ArticleDay,
    ArticleStatus,
    ArticleVector,
    ArticleVersion,
    ArticleVote,
    BrandKbSettings,
    Category,
    ConversationDoc,
    ImportJob,
    ImportState,
    KbCursor,
    KbState,
    SearchLog,
    SocialPost,
    SocialPosting,
    SocialPostStatus,
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


def allowed_statuses(article: Article, user: User) -> list[tuple[str, str]]:
    """The statuses `user` may move `article` to, as (value, label) in the workflow's order."""
    return [
        (value, str(label))
        for value, label in ArticleStatus.choices
        if (needs_manager := _TRANSITIONS.get((article.status, value))) is not None
        and (not needs_manager or user.has_role("manager"))
    ]


def may_edit(article: Article, user: User | None) -> bool:
    """Agents write drafts and proposals; what readers see (or saw) changes only with a manager.
    (No user: an import or a command run by the operator.)"""
    return user is None or user.has_role("manager") or article.status in (ArticleStatus.DRAFT, ArticleStatus.REVIEW)


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
    if not may_edit(article, author):
        raise KbError(_("Only a manager can change a published or archived article."))
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
        article.version = _next_version_number(article)
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
    if status == ArticleStatus.PUBLISHED:
        do_propose_social_posts(article)
    return article


def _next_version_number(article: Article) -> int:
    """Versions are numbered in the order they were written, proposals included."""
    last = article.versions.aggregate(n=Max("number"))["n"] or 0
    return max(last, article.version) + 1


@transaction.atomic
def do_propose_change(article: Article, *, author: User, title: str, body: str) -> ArticleVersion:
    """An agent's change to a published article, kept as a proposed version until a manager
    applies it; readers keep seeing the article as it is."""
    title, body = _check_text(title, body)
    if (title, body) == (article.title, article.body):
        raise KbError(_("Nothing was changed."))
    Article.objects.select_for_update().filter(pk=article.pk).first()  # two proposals never share a number
    return ArticleVersion.objects.create(
        article=article, number=_next_version_number(article), title=title, body=body, author=author, proposed=True
    )


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


@transaction.atomic
def do_link_translations(article: Article, other: Article, *, actor: User | None = None) -> None:
    """Mark two articles of one workspace as translations of each other (and of the other
    translations either already had: the two groups become one)."""
    if article.workspace_id != other.workspace_id or article.pk == other.pk:
        raise KbError(_("That article does not exist."))
    if not (may_edit(article, actor) and may_edit(other, actor)):
        raise KbError(_("Only a manager can change a published or archived article."))
    groups = [g for g in (article.translation_group, other.translation_group) if g is not None]
    group = groups[0] if groups else uuid.uuid4()
    Article.objects.filter(Q(pk__in=[article.pk, other.pk]) | Q(translation_group__in=groups), workspace_id=article.workspace_id).update(
        translation_group=group
    )
    for a in (article, other):
        a.translation_group = group


@transaction.atomic
def do_unlink_translation(article: Article, *, actor: User | None = None) -> None:
    """Take an article out of its group of translations (the others stay linked together)."""
    if not may_edit(article, actor):
        raise KbError(_("Only a manager can change a published or archived article."))
    group = article.translation_group
    if group is None:
        return
    Article.objects.filter(pk=article.pk).update(translation_group=None)
    article.translation_group = None
    rest = Article.objects.filter(translation_group=group)
    if rest.count() == 1:  # a group of one is no translation
        rest.update(translation_group=None)


def _count_day(article_id: int, column: str) -> None:
    """Add one to an article's counter for today (UTC), creating the day's row if needed."""
    day = timezone.now().date()
    if ArticleDay.objects.filter(article_id=article_id, day=day).update(**{column: F(column) + 1}):
        return
    try:
        with transaction.atomic():
            ArticleDay.objects.create(article_id=article_id, day=day, **{column: 1})
    except IntegrityError:  # another request created it first
        ArticleDay.objects.filter(article_id=article_id, day=day).update(**{column: F(column) + 1})


def do_record_view(article: Article) -> None:
    """Count one page view (callers skip bots)."""
    Article.objects.filter(pk=article.pk).update(views=F("views") + 1)
    _count_day(article.pk, "views")


def do_record_insert(article: Article) -> None:
    """An agent inserted the article's link or text into a reply (a ranking signal)."""
    _count_day(article.pk, "inserts")


def do_vote(article: Article, *, visitor: str, helpful: bool, comment: str = "") -> bool:
    """Record a visitor's helpful vote once; returns False if this visitor already voted."""
    try:
        with transaction.atomic():
            ArticleVote.objects.create(article=article, visitor=visitor[:64], helpful=helpful, comment=comment[:2000])
            column = "helpful_yes" if helpful else "helpful_no"
            Article.objects.filter(pk=article.pk).update(**{column: F(column) + 1})
            _count_day(article.pk, column)
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
    lang = detect_language(question + " " + answer)
    title = anonymize(question, names, lang=lang).strip() or _("Untitled question")
    title = " ".join(title.split())[:200]
    return do_create_article(
        conversation.workspace,
        title=title,
        body=anonymize(answer, names, lang=lang).strip(),
        language=lang,
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
    named_json = filename.lower().endswith((".jsonl", ".json", ".ndjson"))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel in Japan saves CSV as Shift_JIS (Windows code page 932) unless told otherwise.
        try:
            text = "" if named_json else data.decode("cp932")
        except UnicodeDecodeError:
            text = ""
        if not text:
            yield 0, _("The file is not UTF-8 text.") if named_json else _("The file is neither UTF-8 nor Shift_JIS text.")
            return
    is_jsonl = named_json or text.lstrip().startswith("{")
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
        columns = {_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in reader.fieldnames or []}
        if not {"external_id", "title"} <= columns:
            # Said once for the file, rather than "external_id is missing" on every row.
            yield 1, _(
                "The first line must name the columns: external_id, title (or question), body (or answer), "
                "category, language. This file's first line has: %(found)s"
            ) % {"found": ", ".join(reader.fieldnames or []) or "—"}
            return
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


# An import job keeps this many bad rows to show (the count is exact).
MAX_IMPORT_ERRORS = 500


def do_queue_import(workspace: Workspace, data: bytes, filename: str, *, actor: User | None, status: str) -> ImportJob:
    """Store an upload and queue its import (kb.tasks.run_import); its page follows the progress."""
    from madoguchi.kb.tasks import run_import

    job = ImportJob.objects.create(workspace=workspace, actor=actor, filename=filename[-255:], data=data, publish_as=status)
    transaction.on_commit(lambda: run_import.enqueue(job.pk))
    return job


def do_run_import(job_id: int) -> ImportJob | None:
    """Import a queued job's file, saving progress as it goes (twice a second at most); None if
    another worker has it already. A row that fails is reported, never fatal; a file that cannot
    be read at all fails the job with the reason."""
    if not ImportJob.objects.filter(pk=job_id, state=ImportState.QUEUED).update(
        state=ImportState.RUNNING, heartbeat_at=timezone.now()
    ):
        return None
    job = ImportJob.objects.select_related("workspace", "actor").get(pk=job_id)
    try:
        rows = list(parse_rows(bytes(job.data), job.filename))
        ImportJob.objects.filter(pk=job.pk).update(total=len(rows))
        saved = time.monotonic()

        def progress(n: int) -> None:
            nonlocal saved
            if time.monotonic() - saved >= 0.5:
                ImportJob.objects.filter(pk=job.pk).update(done_rows=n - 1, heartbeat_at=timezone.now())
                saved = time.monotonic()

        result = do_import(job.workspace, rows, actor=job.actor, status=job.publish_as, progress=progress)
    except Exception as exc:  # a bug or the database: say so on the job rather than leave it "importing"
        ImportJob.objects.filter(pk=job.pk).update(
            state=ImportState.FAILED, message=f"{type(exc).__name__}: {exc}"[:500], finished_at=timezone.now()
        )
        raise
    ImportJob.objects.filter(pk=job.pk).update(
        state=ImportState.DONE,
        done_rows=len(rows),
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        errors=[list(e) for e in result.errors[:MAX_IMPORT_ERRORS]],
        error_count=len(result.errors),
        data=b"",
        finished_at=timezone.now(),
    )
    job.refresh_from_db()
    return job


# A running import saves its progress every half second; one silent this long lost its worker
# (a restart cut it off) and is queued again. Rows are matched on external_id, so running a file
# again only adds what is missing.
IMPORT_STALL = dt.timedelta(minutes=2)


def do_requeue_stalled_imports() -> list[int]:
    """Imports whose worker went away go back in the queue; their ids."""
    stalled = list(
        ImportJob.objects.filter(state=ImportState.RUNNING, heartbeat_at__lt=timezone.now() - IMPORT_STALL).values_list(
            "pk", flat=True
        )
    )
    ImportJob.objects.filter(pk__in=stalled, state=ImportState.RUNNING).update(state=ImportState.QUEUED, done_rows=0)
    return stalled


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


# -- searches --------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")


def normalize_query(q: str) -> str:
    """The form searches are counted under: NFKC, case-folded, spaces collapsed, personal data
    (emails, phone and order numbers) replaced, so the report never stores who searched."""
    q = unicodedata.normalize("NFKC", q).casefold()
    q = _EDGE_PUNCT.sub("", _SPACES.sub(" ", anonymize(q)).strip())
    return q[:200]


def do_log_search(workspace_id: int, source: str, q: str, *, good: bool, quality: float) -> None:
    """Count one search under its normalized query for today (no visitor, no user)."""
    query = normalize_query(q)
    if len(query) < 2:
        return
    now = timezone.now()
    day = now.date()
    updates = {"searches": F("searches") + 1, "last_at": now, "no_good": F("no_good") + (0 if good else 1)}
    rows = SearchLog.objects.filter(workspace_id=workspace_id, source=source, query=query, day=day)
    if not rows.update(**updates):
        try:
            with transaction.atomic():
                SearchLog.objects.create(
                    workspace_id=workspace_id, source=source, query=query, day=day, searches=1,
                    no_good=0 if good else 1, best_quality=quality, last_at=now,
                )
                return
        except IntegrityError:
            rows.update(**updates)
    rows.filter(best_quality__lt=quality).update(best_quality=quality)


# -- resolved conversations as search documents ----------------------------------------------

QUESTION_CHARS = 1000
ANSWER_CHARS = 4000


def conversation_pair(conversation) -> tuple[str, str]:
    """The customer's question (inbound text before our first answer) and our last answer,
    anonymized; ("", "") if either is missing."""
    from madoguchi.inbox.models import Direction, Message

    messages = list(
        Message.objects.filter(conversation=conversation, direction__in=[Direction.INBOUND, Direction.OUTBOUND], deleted_at=None)
        .select_related("identity", "author").order_by("id")[:200]
    )
    question_parts: list[str] = []
    for m in messages:
        if m.direction == Direction.OUTBOUND:
            break
        if m.text.strip():
            question_parts.append(m.text.strip())
    answer = next((m.text.strip() for m in reversed(messages) if m.direction == Direction.OUTBOUND and m.text.strip()), "")
    if not question_parts or not answer:
        return "", ""
    names = [str(conversation.contact), getattr(conversation.contact, "name", "")]
    names += [m.identity.label for m in messages if m.identity is not None]
    names += [m.author.display_name for m in messages if m.author is not None]
    question = anonymize("\n".join(question_parts), names).strip()[:QUESTION_CHARS]
    return question, anonymize(answer, names).strip()[:ANSWER_CHARS]


EVENT_BATCH = 2000
# Live events younger than this are read again next time: a transaction that was still open
# when we read may commit an event with a smaller id later.
_SETTLE = dt.timedelta(minutes=2)
_CURSOR = "resolved-conversations"


def do_index_resolved_conversations() -> int:
    """Add conversations resolved since the last run to the similar-conversation index.

    Incremental without scanning conversations: every resolve publishes a
    "conversation.updated" live event, and a cursor on the live-event id (a primary-key range)
    says how far we read. A reopened and resolved-again conversation is indexed again with its
    new answer; one already indexed for the same resolve is skipped. Returns how many documents
    were written; the caller queues embedding when that is more than zero.
    """
    from madoguchi.inbox.models import LiveEvent

    start = KbCursor.read(_CURSOR)
    events = list(
        LiveEvent.objects.filter(pk__gt=start, kind="conversation.updated")
        .order_by("pk").values_list("pk", "conversation_id", "data", "created_at")[:EVENT_BATCH]
    )
    ids = list(dict.fromkeys(c for _pk, c, data, _at in events if c and (data or {}).get("status") == "resolved"))
    written = index_conversations(ids)
    settled = timezone.now() - _SETTLE
    if len(events) == EVENT_BATCH:
        done = max((pk for pk, _c, _d, at in events if at < settled), default=start)
    else:
        done = LiveEvent.objects.filter(created_at__lt=settled).order_by("-created_at", "-pk").values_list("pk", flat=True).first() or 0
    if done > start:
        KbCursor.advance(_CURSOR, done)
    return written


def do_backfill_resolved_conversations(workspace: Workspace, *, batch: int = 500) -> int:
    """Index every resolved conversation of a workspace (for data from before the indexer ran)."""
    from madoguchi.inbox.models import Conversation, Status

    written = 0
    ids = list(Conversation.objects.filter(workspace=workspace, status=Status.RESOLVED).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), batch):
        written += index_conversations(ids[start : start + batch])
    return written


def index_conversations(conversation_ids: list[int]) -> int:
    """Write or refresh the documents of these conversations if they are resolved and answered."""
    from madoguchi.inbox.models import Conversation, Status

    if not conversation_ids:
        return 0
    conversations = list(
        Conversation.objects.filter(pk__in=conversation_ids, status=Status.RESOLVED, resolved_at__isnull=False).select_related("contact")
    )
    known = dict(
        ConversationDoc.objects.filter(conversation_id__in=[c.pk for c in conversations]).values_list("conversation_id", "resolved_at")
    )
    written = 0
    touched: set[int] = set()
    for conversation in conversations:
        if known.get(conversation.pk) == conversation.resolved_at:
            continue
        question, answer = conversation_pair(conversation)
        if not question:
            continue
        doc = ConversationDoc.objects.filter(conversation=conversation).first()
        if doc is None:
            ConversationDoc.objects.create(
                workspace_id=conversation.workspace_id, conversation=conversation, question=question, answer=answer,
                language=conversation.language or detect_language(question), resolved_at=conversation.resolved_at or timezone.now(),
            )
        else:
            changed = (doc.question, doc.answer) != (question, answer)
            ConversationDoc.objects.filter(pk=doc.pk).update(
                question=question, answer=answer, resolved_at=conversation.resolved_at, updated_at=timezone.now(),
                version=F("version") + (1 if changed else 0),
                **({"vector": None, "vector_model": ""} if changed else {}),
            )
        written += 1
        touched.add(conversation.workspace_id)
    _bump_conversations(touched)
    return written


def _bump_conversations(workspace_ids: Iterable[int]) -> None:
    """Tell every process's conversation index that documents or vectors changed."""
    for workspace_id in workspace_ids:
        KbState.objects.get_or_create(workspace_id=workspace_id)
        KbState.objects.filter(workspace_id=workspace_id).update(conversations_version=F("conversations_version") + 1)


def do_store_conversation_vectors(model: str, items: list[tuple[int, np.ndarray]]) -> None:
    """Save question embeddings of conversation documents (by conversation id)."""
    now = timezone.now()
    ids = [conversation_id for conversation_id, _vec in items]
    for conversation_id, vec in items:
        ConversationDoc.objects.filter(conversation_id=conversation_id).update(
            vector=np.asarray(vec, dtype=np.float32).tobytes(), vector_model=model, updated_at=now
        )
    _bump_conversations(set(ConversationDoc.objects.filter(conversation_id__in=ids).values_list("workspace_id", flat=True)))


# -- social posts ----------------------------------------------------------------------------

# Channels whose adapters publish a public message without `in_reply_to` as a new post. Facebook
# and Instagram adapters answer comments and messages only (a page post needs another endpoint).
SOCIAL_KINDS = ("x", "mastodon", "bluesky")
TIP_CHARS = 100


def tip_text(article: Article, url: str) -> str:
    """A short tip: the question (cut to fit every platform's limit) and the link."""
    title = " ".join(article.title.split())
    if len(title) > TIP_CHARS:
        title = title[: TIP_CHARS - 1] + "…"
    return f"{title}\n{url}"


def article_url(article: Article) -> str:
    from django.conf import settings
    from django.urls import reverse

    return settings.SITE_URL.rstrip("/") + reverse("kb:public_article", args=[article.pk])


def social_accounts(article: Article) -> list:
    from madoguchi.connectors.models import ChannelAccount

    if article.brand_id is None:
        return []
    return list(ChannelAccount.objects.filter(brand_id=article.brand_id, kind__in=SOCIAL_KINDS, is_active=True).order_by("pk"))


def do_set_social_posting(brand: Brand, mode: str) -> BrandKbSettings:
    if mode not in SocialPosting.values:
        raise KbError(_("Unknown social posting setting."))
    row, _created = BrandKbSettings.objects.update_or_create(brand=brand, defaults={"social_posting": mode})
    return row


def do_propose_social_posts(article: Article) -> list[SocialPost]:
    """On publishing: one tip per social account of the article's brand, posted at once or
    left for a manager to approve, as the brand's setting says. Never twice per account."""
    if article.brand_id is None or article.status != ArticleStatus.PUBLISHED:
        return []
    mode = BrandKbSettings.objects.filter(brand_id=article.brand_id).values_list("social_posting", flat=True).first()
    if mode in (None, SocialPosting.OFF):
        return []
    posts = []
    for account in social_accounts(article):
        post, created = SocialPost.objects.get_or_create(
            article=article, account=account,
            defaults={"workspace_id": article.workspace_id, "text": tip_text(article, article_url(article))},
        )
        if created:
            posts.append(post)
    if mode == SocialPosting.AUTO:
        for post in posts:
            _send_social_post(post, actor=None)
    return posts


def _send_social_post(post: SocialPost, actor: User | None) -> None:
    from madoguchi.inbox.actions import do_post_public

    message = do_post_public(post.account, text=post.text, author=actor)
    post.status = SocialPostStatus.POSTED
    post.message_id = message.pk
    post.decided_by = actor
    post.decided_at = timezone.now()
    post.save(update_fields=["status", "message_id", "decided_by", "decided_at"])


@transaction.atomic
def do_decide_social_post(post: SocialPost, *, approve: bool, actor: User) -> SocialPost:
    """A manager approves (the tip goes to the outbox) or discards a proposed tip."""
    if not actor.has_role("manager"):
        raise KbError(_("Only a manager can approve social posts."))
    post = SocialPost.objects.select_for_update().get(pk=post.pk)
    if post.status != SocialPostStatus.PROPOSED:
        raise KbError(_("This post was already handled."))
    if approve:
        _send_social_post(post, actor)
    else:
        post.status = SocialPostStatus.DISCARDED
        post.decided_by = actor
        post.decided_at = timezone.now()
        post.save(update_fields=["status", "decided_by", "decided_at"])
    return post
