"""What arrived from outside before it became work: captured public posts and quarantine."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from madoguchi.accounts.models import Workspace
from madoguchi.connectors.models import ChannelAccount
from madoguchi.contacts.models import Contact, Identity


class Post(models.Model):
    """A public item captured by listening (a mention or keyword match)."""

    class Status(models.TextChoices):
        NEW = "new", _("New")
        SEEN = "seen", _("Seen")
        ANSWERED = "answered", _("Answered")
        DISMISSED = "dismissed", _("Dismissed")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    channel_account = models.ForeignKey(ChannelAccount, on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=255)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="posts")
    identity = models.ForeignKey(Identity, on_delete=models.CASCADE, related_name="posts")
    text = models.TextField()
    url = models.URLField(max_length=1000, blank=True)
    language = models.CharField(max_length=16, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    conversation = models.ForeignKey(
        "inbox.Conversation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    captured_at = models.DateTimeField(default=timezone.now)
    raw = models.JSONField(default=dict, blank=True)
    # Triage, set by madoguchi.listening when the post is captured (see listening/triage.py).
    kind = models.CharField(max_length=16, blank=True)
    urgency = models.PositiveSmallIntegerField(default=0)  # 0 low, 1 medium, 2 high
    sentiment = models.FloatField(default=0.0)  # -1 .. 1
    influence = models.PositiveSmallIntegerField(default=0)  # 0 .. 100
    priority = models.IntegerField(default=0)  # urgency first, influence second
    matched_rule = models.ForeignKey(
        "listening.ListeningRule", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Set when the author edits or deletes the post on the platform (ingest.do_ingest_event); the
    # text it replaced stays on the MessageEvent of the edit, a deleted post keeps its text.
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        unique_together = [("channel_account", "external_id")]
        indexes = [
            models.Index(fields=["contact", "-created_at"]),
            models.Index(fields=["workspace", "status", "-priority"]),
            models.Index(fields=["workspace", "-captured_at"]),
        ]


class Quarantine(models.Model):
    """An inbound item that could not be ingested, kept with the reason for a person to look at."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    channel_account = models.ForeignKey(
        ChannelAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.TextField()
    payload = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
