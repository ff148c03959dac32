"""Conversations, messages and labels in the admin, scoped to the admin's workspace."""

from django.contrib import admin
from django.http import HttpRequest

from madoguchi.accounts.admin import ReadOnlyWorkspaceAdmin, WorkspaceAdmin
from madoguchi.inbox.models import Conversation, Label, Message


@admin.register(Conversation)
class ConversationAdmin(WorkspaceAdmin):
    list_display = [
        "id",
        "contact",
        "channel_account",
        "status",
        "priority",
        "assignee",
        "last_message_at",
        "workspace",
    ]
    # Only choice filters: a foreign-key filter would list the rows of every workspace.
    list_filter = ["status", "priority"]
    list_select_related = ["contact", "channel_account", "assignee", "workspace"]
    search_fields = ["subject", "preview", "contact__name"]
    # What ingest and the actions maintain is shown but never edited here.
    readonly_fields = [
        "contact",
        "channel_account",
        "brand",
        "preview",
        "message_count",
        "created_at",
        "last_message_at",
        "waiting_since",
        "seen_at",
        "resolved_at",
    ]
    fields = ["subject", "status", "priority", "assignee", "team", "labels", "language", *readonly_fields]
    filter_horizontal = ["labels"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # conversations are opened by ingest


@admin.register(Message)
class MessageAdmin(ReadOnlyWorkspaceAdmin):
    list_display = ["id", "conversation", "direction", "short_text", "delivery", "created_at"]
    list_filter = ["direction", "delivery"]
    list_select_related = ["conversation"]
    search_fields = ["text"]
    exclude = ["raw"]

    @admin.display(description="text")
    def short_text(self, obj: Message) -> str:
        return obj.text[:80]


@admin.register(Label)
class LabelAdmin(WorkspaceAdmin):
    list_display = ["name", "color", "workspace"]
    search_fields = ["name"]
