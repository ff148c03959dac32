"""Contacts and their identities in the admin, scoped to the admin's workspace."""

from django.contrib import admin
from django.http import HttpRequest

from madoguchi.accounts.admin import ReadOnlyWorkspaceAdmin, WorkspaceAdmin, is_superuser
from madoguchi.contacts.models import Contact, Identity


@admin.register(Contact)
class ContactAdmin(WorkspaceAdmin):
    list_display = ["id", "name", "email", "language", "created_at", "workspace"]
    search_fields = ["name", "email", "identities__handle"]
    readonly_fields = ["merged_into", "created_at"]

    # Contacts arrive through ingest; merging has its own undoable screen.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request)


@admin.register(Identity)
class IdentityAdmin(ReadOnlyWorkspaceAdmin):
    list_display = ["label", "kind", "handle", "contact", "followers", "updated_at"]
    list_filter = ["kind"]
    list_select_related = ["contact"]
    search_fields = ["handle", "display_name", "external_id"]
