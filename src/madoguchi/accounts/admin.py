"""Django admin for workspace admins: every page is scoped to the admin's own workspace.

Django's admin normally needs `is_staff` and model permissions. Here an active user with the
admin role in a workspace may enter (superusers too), and WorkspaceAdmin decides per model
what they may do and only ever shows rows, and offers choices, of their workspace.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from madoguchi.accounts.models import ApiToken, Brand, Role, Team, User, Workspace


def is_workspace_admin(user: Any) -> bool:
    """An active user with the admin role in a workspace."""
    return bool(
        user.is_authenticated
        and user.is_active
        and getattr(user, "workspace_id", None) is not None
        and getattr(user, "role", None) == Role.ADMIN
    )


def may_enter_admin(user: Any) -> bool:
    return bool(user.is_active and (user.is_superuser or is_workspace_admin(user)))


def is_superuser(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


def workspace_id_of(request: HttpRequest) -> int | None:
    return getattr(request.user, "workspace_id", None)


def _has_admin_permission(request: HttpRequest) -> bool:
    return may_enter_admin(request.user)


class WorkspaceAdminLoginForm(AdminAuthenticationForm):
    """The admin login form, accepting workspace admins who are not `is_staff`."""

    def confirm_login_allowed(self, user: Any) -> None:
        if not user.is_active:
            raise ValidationError(self.error_messages["inactive"], code="inactive")
        if not may_enter_admin(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


admin.site.has_permission = _has_admin_permission  # type: ignore[method-assign]
admin.site.login_form = WorkspaceAdminLoginForm
admin.site.site_header = _("madoguchi administration")
admin.site.site_title = _("madoguchi admin")


def scope_to_workspace(
    model: type[models.Model], qs: QuerySet, workspace_id: int | None
) -> QuerySet:
    """The rows of `qs` that belong to the workspace; nothing for a model we cannot scope."""
    if model is Workspace:
        return qs.filter(pk=workspace_id)
    if model is ApiToken:
        return qs.filter(user__workspace_id=workspace_id)
    field_names = {f.name for f in model._meta.get_fields()}
    if "workspace" in field_names:
        return qs.filter(workspace_id=workspace_id)
    return qs.none()


class WorkspaceAdmin(admin.ModelAdmin):
    """A ModelAdmin that shows a workspace admin only their workspace's rows.

    Querysets and foreign-key / many-to-many choices are filtered to the workspace, the
    workspace field is hidden and set on save, and `read_only` admins allow viewing only.
    Superusers see and edit everything.
    """

    read_only = False

    def _scoped(self, request: HttpRequest) -> bool:
        return not is_superuser(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if self._scoped(request):
            qs = scope_to_workspace(self.model, qs, workspace_id_of(request))
        return qs

    def get_field_queryset(
        self, db: str | None, db_field: Any, request: HttpRequest
    ) -> QuerySet | None:
        qs = super().get_field_queryset(db, db_field, request)
        if not self._scoped(request):
            return qs
        model = db_field.remote_field.model
        if qs is None:
            qs = model._default_manager.using(db).all()
        return scope_to_workspace(model, qs, workspace_id_of(request))

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])
        if self._scoped(request) and self._has_workspace_field():
            exclude.append("workspace")
        return exclude

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_fields(request, obj)
        if self._scoped(request):
            fields = [f for f in fields if f != "workspace"]
        return fields

    def get_list_display(self, request: HttpRequest) -> Any:
        fields = super().get_list_display(request)
        if self._scoped(request):
            fields = [f for f in fields if f != "workspace"]
        return fields

    def _has_workspace_field(self) -> bool:
        return any(f.name == "workspace" for f in self.model._meta.get_fields())

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if self._scoped(request) and self._has_workspace_field():
            obj.workspace_id = workspace_id_of(request)
        super().save_model(request, obj, form, change)

    def _in_workspace(self, request: HttpRequest, obj: Any) -> bool:
        if obj is None or not self._scoped(request):
            return True
        return scope_to_workspace(
            self.model, self.model._default_manager.filter(pk=obj.pk), workspace_id_of(request)
        ).exists()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request) or is_workspace_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_superuser(request):
            return True
        return is_workspace_admin(request.user) and self._in_workspace(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        if is_superuser(request):
            return True
        return not self.read_only and is_workspace_admin(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_superuser(request):
            return True
        return (
            not self.read_only
            and is_workspace_admin(request.user)
            and self._in_workspace(request, obj)
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_superuser(request):
            return True
        return (
            not self.read_only
            and is_workspace_admin(request.user)
            and self._in_workspace(request, obj)
        )


class ReadOnlyWorkspaceAdmin(WorkspaceAdmin):
    """Workspace admins may look but not touch; superusers keep full access."""

    read_only = True


@admin.register(Workspace)
class WorkspaceModelAdmin(ReadOnlyWorkspaceAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]


class UserCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name", "role")


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserModelAdmin(WorkspaceAdmin, DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    list_display = ["email", "name", "role", "workspace", "is_active", "last_login"]
    list_filter = ["role", "is_active"]
    search_fields = ["email", "name"]
    ordering = ["email"]
    filter_horizontal = ()
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["email", "password", "name", "role", "language", "is_active"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    superuser_fieldsets = [
        (
            None,
            {"fields": ["email", "password", "name", "workspace", "role", "language", "is_active"]},
        ),
        (_("Permissions"), {"fields": ["is_staff", "is_superuser", "groups", "user_permissions"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"fields": ["email", "name", "role", "password1", "password2"]})]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            if is_superuser(request):
                return [
                    (
                        None,
                        {
                            "fields": [
                                "email",
                                "name",
                                "workspace",
                                "role",
                                "password1",
                                "password2",
                            ]
                        },
                    )
                ]
            return self.add_fieldsets
        return self.superuser_fieldsets if is_superuser(request) else self.fieldsets


@admin.register(Team)
class TeamModelAdmin(WorkspaceAdmin):
    list_display = ["name", "workspace"]
    search_fields = ["name"]
    filter_horizontal = ["members"]


@admin.register(Brand)
class BrandModelAdmin(WorkspaceAdmin):
    list_display = ["name", "workspace"]
    search_fields = ["name"]


@admin.register(ApiToken)
class ApiTokenModelAdmin(ReadOnlyWorkspaceAdmin):
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__email"]
    # Only the prefix identifies a token to a person; the digest is of no use on screen.
    exclude = ["digest"]
