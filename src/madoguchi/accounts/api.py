"""API authentication (bearer tokens) and the admin endpoints for users and teams."""

from __future__ import annotations

from typing import Any, Literal

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError
from ninja.security.http import HttpAuthBase
from pydantic import field_validator

from madoguchi.accounts import actions
from madoguchi.accounts.models import Team, User
from madoguchi.accounts.queries import check_role, user_for_token, workspace_id_of, workspace_users

router = Router(tags=["users and teams"])


class BearerToken(HttpAuthBase):
    """`Authorization: Bearer <token>`, checked against the stored hashes of API tokens."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    def __call__(self, request: HttpRequest) -> User | None:
        # Ninja's own HttpBearer logs a malformed header in DEBUG, token and all; we never do.
        scheme, _sep, raw = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        user = user_for_token(raw.strip())
        if user is not None:
            # The API acts as the token's owner, whatever session cookie the client also sent.
            request.user = user
        return user


def api_user(request: HttpRequest, role: str = "agent") -> User:
    """The authenticated user of an API request, with at least `role` (else 403)."""
    user: User = request.auth  # type: ignore[attr-defined]
    check_role(user, role)
    return user


class UserOut(Schema):
    id: int
    email: str
    name: str
    role: str
    is_active: bool


class UserIn(Schema):
    email: str = Field(max_length=254)
    name: str = Field(default="", max_length=120)
    role: Literal["agent", "manager", "admin"] = "agent"
    # Without a password the user cannot log in until one is set (e.g. by a reset link).
    password: str | None = Field(default=None, max_length=256)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        try:
            validate_email(value)
        except DjangoValidationError:
            raise ValueError("not a valid email address") from None
        return value.lower()

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                validate_password(value)
            except DjangoValidationError as exc:
                raise ValueError(" ".join(exc.messages)) from None
        return value


class TeamOut(Schema):
    id: int
    name: str
    members: list[int]

    @staticmethod
    def resolve_members(obj: Team) -> list[int]:
        return [m.pk for m in obj.members.all()]


class TeamIn(Schema):
    name: str = Field(min_length=1, max_length=120)
    members: list[int] = Field(default_factory=list, max_length=500)


class Detail(Schema):
    detail: Any


@router.get("/users", response=list[UserOut], summary="List the workspace's active users (admin)")
def list_users(request: HttpRequest) -> Any:
    return workspace_users(api_user(request, "admin"))


@router.post(
    "/users", response={201: UserOut, 409: Detail}, summary="Create an agent, manager or admin (admin)"
)
def create_user(request: HttpRequest, payload: UserIn) -> Any:
    admin = api_user(request, "admin")
    try:
        with transaction.atomic():
            user = actions.do_create_user(
                payload.email,
                workspace=admin.workspace,  # type: ignore[arg-type]
                role=payload.role,
                password=payload.password,
                name=payload.name,
            )
    except IntegrityError:
        raise HttpError(409, "A user with this email address already exists.") from None
    return Status(201, user)


@router.get("/teams", response=list[TeamOut], summary="List the workspace's teams (admin)")
def list_teams(request: HttpRequest) -> Any:
    admin = api_user(request, "admin")
    return Team.objects.filter(workspace_id=workspace_id_of(admin)).prefetch_related("members")


@router.post("/teams", response={201: TeamOut, 409: Detail}, summary="Create a team (admin)")
def create_team(request: HttpRequest, payload: TeamIn) -> Any:
    admin = api_user(request, "admin")
    members = list(workspace_users(admin).filter(pk__in=payload.members))
    missing = set(payload.members) - {m.pk for m in members}
    if missing:
        raise HttpError(422, f"Unknown users: {', '.join(str(i) for i in sorted(missing))}")
    try:
        with transaction.atomic():
            team = actions.do_create_team(admin.workspace, payload.name, members)  # type: ignore[arg-type]
    except IntegrityError:
        raise HttpError(409, "A team with this name already exists.") from None
    return Status(201, team)
