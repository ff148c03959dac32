"""Writes for workspaces, users, teams, brands and API tokens."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from madoguchi.accounts.models import ApiToken, Brand, Role, Team, User, Workspace


@transaction.atomic
def do_create_workspace(name: str, brand: str | None = None) -> Workspace:
    """A new workspace with its first brand."""
    slug = slugify(name) or f"ws-{Workspace.objects.count() + 1}"
    ws = Workspace.objects.create(name=name, slug=slug)
    Brand.objects.create(workspace=ws, name=brand or name)
    return ws


def do_create_user(
    email: str, *, workspace: Workspace, role: str, password: str | None, name: str = ""
) -> User:
    """A user of a workspace with a role."""
    if role not in Role.values:
        raise ValueError(f"role must be one of {', '.join(Role.values)}")
    return User.objects.create_user(email, password, workspace=workspace, role=role, name=name)


def do_set_role(user: User, role: str) -> User:
    """Change what a user may do."""
    if role not in Role.values:
        raise ValueError(f"role must be one of {', '.join(Role.values)}")
    user.role = role
    user.save(update_fields=["role"])
    return user


def do_create_team(workspace: Workspace, name: str, members: list[User]) -> Team:
    """A team of agents in one workspace."""
    team = Team.objects.create(workspace=workspace, name=name)
    team.members.set([m for m in members if m.workspace_id == workspace.pk])
    return team


def do_create_token(user: User, name: str = "") -> tuple[ApiToken, str]:
    """A new API token; the raw value is returned once and only its hash is stored."""
    raw = ApiToken.generate()
    token = ApiToken.objects.create(user=user, name=name, prefix=raw[:12], digest=ApiToken.hash(raw))
    return token, raw


def do_revoke_token(token: ApiToken) -> None:
    """Stop a token from working."""
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())


def do_set_language(user: User, language: str) -> None:
    """The user's UI language ('' follows the browser)."""
    user.language = language if language in ("", "en", "ja") else ""
    user.save(update_fields=["language"])
