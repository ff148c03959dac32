"""Knowledge-base articles, their categories, versions, stored embeddings, views and votes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from madoguchi.accounts.models import Brand, Workspace
from madoguchi.lib.cursors import Cursor


class Category(models.Model):
    """A node of a workspace's category tree (parent None: a top-level category)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="children")
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200, allow_unicode=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "parent", "name"], name="kb_category_unique_name")]

    def __str__(self) -> str:
        return self.name


class ArticleStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    REVIEW = "review", _("In review")
    PUBLISHED = "published", _("Published")
    ARCHIVED = "archived", _("Archived")


class Article(models.Model):
    """An FAQ entry: a question/title and a Markdown answer, with its workflow status and counters."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    brand = models.ForeignKey(Brand, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    category = models.ForeignKey(Category, on_delete=models.SET_NULL, null=True, blank=True, related_name="articles")
    title = models.CharField(_("title"), max_length=500)
    body = models.TextField(_("body (Markdown)"), blank=True)
    language = models.CharField(_("language"), max_length=16, default="ja")
    status = models.CharField(_("status"), max_length=16, choices=ArticleStatus.choices, default=ArticleStatus.DRAFT)
    external_id = models.CharField(_("external id"), max_length=200, null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    # Articles that say the same thing in other languages share one translation group.
    translation_group = models.UUIDField(null=True, blank=True, db_index=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    source_conversation_id = models.BigIntegerField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    views = models.PositiveIntegerField(default=0)
    helpful_yes = models.PositiveIntegerField(default=0)
    helpful_no = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "external_id"], condition=Q(external_id__isnull=False), name="kb_article_unique_external_id"
            )
        ]
        indexes = [models.Index(fields=["workspace", "status"])]

    def __str__(self) -> str:
        return self.title


class ArticleVersion(models.Model):
    """A saved state of an article, kept so edits can be compared and restored."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=500)
    body = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # An agent's change to a published article: kept here, not shown to readers, until a manager
    # applies it (as a newer version); open while no newer version exists.
    proposed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["article", "number"], name="kb_version_unique_number")]


class ArticleVector(models.Model):
    """An article's passage embedding (float32 bytes) for one model, valid for one text hash."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="vectors")
    model = models.CharField(max_length=100)
    text_hash = models.CharField(max_length=40)
    vector = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["article", "model"], name="kb_vector_unique_model")]


class KbState(models.Model):
    """Per-workspace search state: a counter bumped by every change to published articles."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    index_version = models.PositiveBigIntegerField(default=0)
    # Background embedding progress, for the UI: done of total published articles.
    embed_done = models.PositiveIntegerField(default=0)
    embed_total = models.PositiveIntegerField(default=0)
    # Bumped when resolved conversations are indexed or their vectors stored.
    conversations_version = models.PositiveBigIntegerField(default=0)


class ArticleVote(models.Model):
    """One visitor's "was this helpful?" answer; a visitor is an anonymous cookie id, not a person."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="votes")
    visitor = models.CharField(max_length=64)
    helpful = models.BooleanField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["article", "visitor"], name="kb_vote_once_per_visitor")]


class ArticleDay(models.Model):
    """One article's counters for one day (UTC), for trends: views, votes, agents' inserts."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="days")
    day = models.DateField()
    views = models.PositiveIntegerField(default=0)
    helpful_yes = models.PositiveIntegerField(default=0)
    helpful_no = models.PositiveIntegerField(default=0)
    # Agents inserting the article's link or text into a reply: a relevance signal for ranking.
    inserts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["article", "day"], name="kb_articleday_unique")]


class SearchSource(models.TextChoices):
    HELP = "help", _("Help site")
    AGENT = "agent", _("Agents")


class SearchLog(models.Model):
    """Searches aggregated by normalized query and day: what people look for, never who."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=8, choices=SearchSource.choices)
    query = models.CharField(max_length=200)
    day = models.DateField()
    searches = models.PositiveIntegerField(default=0)
    # Searches whose best result was not good enough (see queries._quality).
    no_good = models.PositiveIntegerField(default=0)
    best_quality = models.FloatField(default=0.0)
    last_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "source", "query", "day"], name="kb_searchlog_unique")
        ]
        indexes = [models.Index(fields=["workspace", "day"])]


class ConversationDoc(models.Model):
    """A resolved conversation as a searchable pair: the customer's question and our answer.

    Both texts are anonymized when stored (the answer is inserted into other customers' replies).
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    conversation = models.OneToOneField("inbox.Conversation", on_delete=models.CASCADE, related_name="+")
    question = models.TextField()
    answer = models.TextField()
    language = models.CharField(max_length=16, blank=True)
    resolved_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)
    vector = models.BinaryField(null=True, blank=True)
    vector_model = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["workspace", "resolved_at"]), models.Index(fields=["resolved_at"])]


class SocialPosting(models.TextChoices):
    OFF = "off", _("Off")
    APPROVAL = "approval", _("After a manager approves")
    AUTO = "auto", _("Automatically on publishing")


class BrandKbSettings(models.Model):
    """Per brand: whether newly published articles are posted as tips to its social accounts."""

    brand = models.OneToOneField(Brand, on_delete=models.CASCADE, related_name="+")
    social_posting = models.CharField(max_length=16, choices=SocialPosting.choices, default=SocialPosting.OFF)


class SocialPostStatus(models.TextChoices):
    PROPOSED = "proposed", _("Waiting for approval")
    POSTED = "posted", _("Sent to the outbox")
    DISCARDED = "discarded", _("Discarded")


class SocialPost(models.Model):
    """A short tip with a link to a published article, for one social account of its brand."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="social_posts")
    account = models.ForeignKey("connectors.ChannelAccount", on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    status = models.CharField(max_length=16, choices=SocialPostStatus.choices, default=SocialPostStatus.PROPOSED)
    message_id = models.BigIntegerField(null=True, blank=True)  # the inbox message carrying it
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["article", "account"], name="kb_socialpost_once")]


class KbCursor(Cursor):
    """A named position in an append-only log (the live-event id the conversation indexer read to)."""


class ImportState(models.TextChoices):
    QUEUED = "queued", _("Waiting for a worker")
    RUNNING = "running", _("Importing")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ImportJob(models.Model):
    """An uploaded file of articles imported in the background, with its progress and summary."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    filename = models.CharField(max_length=255, blank=True)
    # The upload itself (at most kb.views.MAX_IMPORT_BYTES), in the database so that a worker on
    # another machine reads it; emptied once imported.
    data = models.BinaryField(default=b"")
    publish_as = models.CharField(max_length=16, choices=ArticleStatus.choices, default=ArticleStatus.PUBLISHED)
    state = models.CharField(max_length=8, choices=ImportState.choices, default=ImportState.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done_rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list)  # [[line, message], …], the first MAX_IMPORT_ERRORS
    error_count = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)  # why an import failed as a whole
    created_at = models.DateTimeField(default=timezone.now)
    # Set as progress is saved: a running job that stops moving lost its worker (kb.tasks).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "-created_at"])]

    @property
    def finished(self) -> bool:
        return self.state in (ImportState.DONE, ImportState.FAILED)

    @property
    def percent(self) -> int:
        return 100 if self.finished else int(100 * self.done_rows / self.total) if self.total else 0
