"""Conversations (the unit of work), their messages, attachments, labels, the outbox and live events."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from madoguchi.accounts.models import Brand, Team, Workspace
from madoguchi.connectors.models import ChannelAccount
from madoguchi.contacts.models import Contact, Identity


class Status(models.TextChoices):
    NEW = "new", _("New")
    OPEN = "open", _("Open")
    PENDING = "pending", _("Pending")
    SNOOZED = "snoozed", _("Snoozed")
    RESOLVED = "resolved", _("Resolved")


TODO_STATUSES = (Status.NEW, Status.OPEN)


class Priority(models.IntegerChoices):
    LOW = 0, _("Low")
    NORMAL = 1, _("Normal")
    HIGH = 2, _("High")
    URGENT = 3, _("Urgent")


class Label(models.Model):
    """A tag agents put on conversations."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(_("name"), max_length=64)
    color = models.CharField(max_length=7, default="#6b7280")

    class Meta:
        unique_together = [("workspace", "name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Conversation(models.Model):
    """One customer's thread on one channel account: status, assignee, priority, labels."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="conversations")
    channel_account = models.ForeignKey(ChannelAccount, on_delete=models.PROTECT, related_name="+")
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(_("subject"), max_length=500, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.NEW)
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority.choices, default=Priority.NORMAL
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    labels = models.ManyToManyField(Label, blank=True, related_name="conversations")
    language = models.CharField(_("language"), max_length=16, blank=True)
    # The platform's thread id (a DM thread, an email References root), for threading.
    thread_key = models.CharField(max_length=255, blank=True)
    preview = models.CharField(max_length=200, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_message_at = models.DateTimeField(default=timezone.now)
    # Since when the customer has been waiting for us (None: we spoke last).
    waiting_since = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)
    seen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    snoozed_until = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["workspace", "-last_message_at", "-id"],
                condition=Q(status__in=["new", "open"]),
                name="conv_todo_idx",
            ),
            models.Index(fields=["workspace", "status", "-last_message_at", "-id"], name="conv_status_idx"),
            models.Index(fields=["workspace", "-last_message_at", "-id"], name="conv_all_idx"),
            models.Index(fields=["assignee", "status", "-last_message_at"], name="conv_assignee_idx"),
            models.Index(fields=["contact", "-last_message_at"], name="conv_contact_idx"),
            models.Index(fields=["channel_account", "thread_key"], name="conv_thread_idx"),
            models.Index(fields=["status", "snoozed_until"], name="conv_snooze_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject or self.preview[:40]}"

    @property
    def is_todo(self) -> bool:
        return self.status in TODO_STATUSES


class Direction(models.TextChoices):
    INBOUND = "in", _("Inbound")
    OUTBOUND = "out", _("Outbound")
    NOTE = "note", _("Internal note")


class Delivery(models.TextChoices):
    NONE = "", "-"
    QUEUED = "queued", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class Message(models.Model):
    """One item in a conversation: inbound, outbound or an internal note."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    # No index of its own: msg_conv_idx (conversation, id) serves every lookup by conversation.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    direction = models.CharField(max_length=4, choices=Direction.choices)
    channel_account = models.ForeignKey(
        ChannelAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    identity = models.ForeignKey(
        Identity, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)  # sanitized with nh3 before it is stored
    external_id = models.CharField(max_length=255, null=True, blank=True)
    reply_to_external_id = models.CharField(max_length=255, blank=True)
    public = models.BooleanField(default=False)
    language = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivery = models.CharField(max_length=8, choices=Delivery.choices, blank=True, default="")
    delivery_error = models.TextField(blank=True)
    raw = models.JSONField(default=dict, blank=True)
    # Set when the author edits or deletes the item on the platform; the original text stays in
    # the MessageEvent that records the change, and a deleted message keeps its text for audit.
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel_account", "external_id"],
                condition=Q(external_id__isnull=False),
                name="message_external_unique",
            )
        ]
        indexes = [models.Index(fields=["conversation", "id"], name="msg_conv_idx")]

    def __str__(self) -> str:
        return f"{self.direction} {self.text[:40]}"

    @property
    def reaction_summary(self) -> list[tuple[str, int]]:
        """Current reactions as (emoji, count): each person's latest reaction per emoji counts."""
        latest: dict[tuple[int | None, str], str] = {}
        for event in sorted(self.events.all(), key=lambda e: (e.created_at, e.pk)):
            if event.kind in ("reaction", "unreaction"):
                latest[(event.identity_id, event.emoji)] = event.kind
        counts: dict[str, int] = {}
        for (_who, emoji), kind in latest.items():
            if kind == "reaction":
                counts[emoji or "+"] = counts.get(emoji or "+", 0) + 1
        return sorted(counts.items(), key=lambda pair: -pair[1])

    @property
    def edit_history(self) -> list[MessageEvent]:
        """The edits of this message, oldest first, each with the text it replaced."""
        return sorted((e for e in self.events.all() if e.kind == "edit"), key=lambda e: (e.created_at, e.pk))


class MessageEvent(models.Model):
    """A reaction, edit, deletion, follow/unfollow or read mark from the platform.

    Attached to the message it concerns; `message` is empty until that message arrives (platforms
    deliver out of order) or for events about the customer rather than a message (follows).
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    channel_account = models.ForeignKey(ChannelAccount, on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=16)
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    target_external_id = models.CharField(max_length=255, blank=True)
    identity = models.ForeignKey(
        Identity, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    emoji = models.CharField(max_length=64, blank=True)
    text = models.TextField(blank=True)  # edit: the new text
    previous_text = models.TextField(blank=True)  # edit: the text before, kept for audit
    created_at = models.DateTimeField(default=timezone.now)
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel_account", "external_id"], name="message_event_unique")
        ]
        indexes = [models.Index(fields=["channel_account", "target_external_id"], name="msgevent_target_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.target_external_id}"


def attachment_path(instance: Attachment, filename: str) -> str:
    return f"attachments/{instance.workspace_id}/{timezone.now():%Y/%m}/{filename}"


class Attachment(models.Model):
    """A file on a message, stored under the media root and served only to the workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=500)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveIntegerField()

    @property
    def is_image(self) -> bool:
        return self.content_type in ("image/png", "image/jpeg", "image/gif", "image/webp")


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class Outbox(models.Model):
    """An outgoing reply, stored with its message and sent by a worker until the platform accepts it."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="outbox")
    idempotency_key = models.CharField(max_length=80, unique=True)
    status = models.CharField(max_length=8, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A claimed row whose worker died is picked up again once its lock expires.
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due_idx")]


class LiveEvent(models.Model):
    """An event for connected browsers; an append-only log that SSE streams tail across processes."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32)
    conversation_id = models.BigIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
