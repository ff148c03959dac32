"""Quarantined inbound items in the admin, read-only and scoped to the admin's workspace."""

from django.contrib import admin

from madoguchi.accounts.admin import ReadOnlyWorkspaceAdmin
from madoguchi.ingest.models import Quarantine


@admin.register(Quarantine)
class QuarantineAdmin(ReadOnlyWorkspaceAdmin):
    list_display = ["id", "created_at", "channel_account", "short_reason", "resolved_at"]
    list_select_related = ["channel_account"]
    search_fields = ["reason"]
    date_hierarchy = "created_at"

    @admin.display(description="reason")
    def short_reason(self, obj: Quarantine) -> str:
        return obj.reason[:120]
