"""Channel accounts in the admin: secrets can be replaced but are never displayed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from madoguchi.accounts.admin import WorkspaceAdmin
from madoguchi.connectors.models import ChannelAccount

MASK = "••••••••"


class ChannelAccountForm(forms.ModelForm):
    """The stored secrets are write-only: a new JSON object replaces them, empty keeps them."""

    replace_secrets = forms.JSONField(
        label=_("Replace secrets"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=_(
            "A JSON object. Leave empty to keep the stored secrets; they are never displayed."
        ),
    )

    class Meta:
        model = ChannelAccount
        fields = ["workspace", "brand", "kind", "name", "handle", "config", "is_active"]

    def clean_replace_secrets(self) -> dict | None:
        value = self.cleaned_data.get("replace_secrets")
        if value in (None, ""):
            return None
        if not isinstance(value, dict):
            raise ValidationError(_("Enter a JSON object."))
        return value


@admin.register(ChannelAccount)
class ChannelAccountAdmin(WorkspaceAdmin):
    form = ChannelAccountForm
    list_display = [
        "name",
        "kind",
        "brand",
        "handle",
        "is_active",
        "last_receive_at",
        "last_error_at",
        "workspace",
    ]
    list_filter = ["kind", "is_active"]
    list_select_related = ["brand", "workspace"]
    search_fields = ["name", "handle"]
    exclude = ["secrets"]
    readonly_fields = [
        "masked_secrets",
        "created_at",
        "last_receive_at",
        "last_send_at",
        "last_error",
        "last_error_at",
    ]

    @admin.display(description=_("secrets"))
    def masked_secrets(self, obj: ChannelAccount) -> str:
        """Which secrets are set, never their values."""
        if not obj.secrets:
            return "—"
        return ", ".join(f"{key}: {MASK}" for key in sorted(obj.secrets))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        new_secrets = form.cleaned_data.get("replace_secrets")
        if new_secrets is not None:
            obj.secrets = new_secrets
        super().save_model(request, obj, form, change)
