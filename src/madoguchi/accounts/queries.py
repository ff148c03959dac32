"""Reads and access checks for users and tokens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from madoguchi.accounts.models import ApiToken, User, Workspace


def user_for_token(raw: str) -> User | None:
    """The active user owning a non-revoked API token, or None."""
    if not raw or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=ApiToken.hash(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None or token.user.workspace_id is None:
        return None
    now = timezone.now()
    # Record use at most once a minute: a write per GET would serialise SQLite readers.
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def workspace_id_of(user: User | AnonymousUser) -> int:
    """The id of the user's workspace; PermissionDenied for anonymous users and for superusers,
    who belong to none.

    Views and the API already refuse such users (`role_required`, `user_for_token`), so this only
    turns that guarantee into a type: reads scoped by it can never match "workspace IS NULL".
    """
    if not user.is_authenticated or user.workspace_id is None:
        raise PermissionDenied
    return user.workspace_id


def workspace_of(user: User) -> Workspace:
    """The user's workspace; PermissionDenied for superusers, who belong to none."""
    if user.workspace is None:
        raise PermissionDenied
    return user.workspace


def check_role(user: User, role: str) -> None:
    """Raise PermissionDenied unless the user has `role` or above in a workspace."""
    if not user.is_authenticated or user.workspace_id is None or not user.has_role(role):
        raise PermissionDenied


def role_required(role: str) -> Callable:
    """View decorator: logged in, in a workspace, with at least this role."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            check_role(request.user, role)  # type: ignore[arg-type]
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def workspace_users(user: User):
    return User.objects.filter(workspace_id=workspace_id_of(user), is_active=True).order_by("name", "email")
