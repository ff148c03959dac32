"""What listening captures: per-brand rules, and a per-workspace version that invalidates caches."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from madoguchi.accounts.models import Brand, Workspace
from madoguchi.lib.cursors import Cursor


class ListeningRule(models.Model):
    """What to capture for a brand: its own accounts (mentions), keyword groups, exclusions, languages, channels.

    A post matches when it mentions one of `accounts`, or when at least one `any_of` term (if any
    are given) and every `all_of` term occur, and no `none_of` term occurs; `languages` and
    `channels`, when not empty, narrow the rule to those. Terms are compared after
    `madoguchi.text.normalize`, Latin-script terms only on word boundaries.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="listening_rules")
    name = models.CharField(_("name"), max_length=120)
    accounts = models.JSONField(_("own accounts"), default=list, blank=True)
    any_of = models.JSONField(_("any of"), default=list, blank=True)
    all_of = models.JSONField(_("all of"), default=list, blank=True)
    none_of = models.JSONField(_("none of"), default=list, blank=True)
    languages = models.JSONField(_("languages"), default=list, blank=True)
    channels = models.JSONField(_("channels"), default=list, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        unique_together = [("workspace", "name")]
        ordering = ["brand__name", "name"]

    def __str__(self) -> str:
        return self.name


class RuleSetVersion(models.Model):
    """Bumped by every rule change; each process rebuilds its compiled matcher when it moves."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, primary_key=True, related_name="+")
    version = models.PositiveBigIntegerField(default=0)


class ListeningCursor(Cursor):
    """How far listening's background work has read the posts (the last post whose urgency was refined)."""
