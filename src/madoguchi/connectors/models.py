"""Channel accounts (one connected account on one channel kind) and their health."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from madoguchi.accounts.models import Brand, Workspace


class ChannelKind(models.TextChoices):
    INTERNAL = "internal", _("Internal")
    EMAIL = "email", _("Email")
    WEBCHAT = "webchat", _("Web chat")
    WEBFORM = "webform", _("Web form")
    PHONE = "phone", _("Phone")
    X = "x", "X"
    FACEBOOK = "facebook", "Facebook"
    INSTAGRAM = "instagram", "Instagram"
    LINE = "line", "LINE"
    MASTODON = "mastodon", "Mastodon"
    BLUESKY = "bluesky", "Bluesky"
    API = "api", _("Custom (API)")


class ChannelAccount(models.Model):
    """One connected account on one channel kind (an X handle, a mailbox, a LINE bot)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="channel_accounts")
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="channel_accounts")
    kind = models.CharField(_("channel"), max_length=16, choices=ChannelKind.choices)
    name = models.CharField(_("name"), max_length=120)
    handle = models.CharField(_("handle"), max_length=255, blank=True)
    # Platform settings (non-secret) and credentials; credentials are never logged or rendered.
    config = models.JSONField(default=dict, blank=True)
    secrets = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_receive_at = models.DateTimeField(null=True, blank=True)
    last_send_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        unique_together = [("workspace", "kind", "name")]
        ordering = ["brand__name", "name"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.name}"

    def __repr__(self) -> str:  # never show secrets
        return f"<ChannelAccount {self.pk} {self.kind} {self.name!r}>"


class InternalDelivery(models.Model):
    """What the built-in internal channel 'delivered': the platform side of the demo and tests."""

    account = models.ForeignKey(ChannelAccount, on_delete=models.CASCADE, related_name="+")
    idempotency_key = models.CharField(max_length=80, unique=True)
    external_id = models.CharField(max_length=80)
    recipient = models.CharField(max_length=255)
    text = models.TextField()
    in_reply_to = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
