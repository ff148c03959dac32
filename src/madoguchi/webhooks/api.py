"""Webhooks API (admin): register endpoints for events and look at their deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.http import Http404, HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import field_validator

from madoguchi.accounts.api import api_user
from madoguchi.accounts.models import User
from madoguchi.accounts.queries import workspace_id_of
from madoguchi.webhooks import actions
from madoguchi.webhooks.models import WebhookEndpoint

router = Router(tags=["webhooks"])

EventName = Literal["conversation.created", "conversation.updated", "message.created"]


def _url(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return actions.check_endpoint_url(value)
    except actions.WebhookError as exc:
        raise ValueError(str(exc)) from None


class EndpointOut(Schema):
    id: int
    url: str
    events: list[str]
    active: bool
    created_at: dt.datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="Shown once: verify X-Madoguchi-Signature with it")


class EndpointIn(Schema):
    url: str = Field(max_length=1000)
    events: list[EventName] = Field(min_length=1)
    secret: str | None = Field(default=None, min_length=16, max_length=128)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return _url(value)


class EndpointChange(Schema):
    url: str | None = Field(default=None, max_length=1000)
    events: list[EventName] | None = Field(default=None, min_length=1)
    active: bool | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return _url(value)


class DeliveryOut(Schema):
    id: int
    event: str
    status: str
    attempts: int
    response_code: int | None
    last_error: str
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    delivered_at: dt.datetime | None
    payload: dict


def _access_endpoint(user: User, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, workspace_id=workspace_id_of(user)).first()
    if endpoint is None:
        raise Http404
    return endpoint


@router.get("", response=list[EndpointOut], summary="List webhook endpoints (admin)")
def list_endpoints(request: HttpRequest) -> Any:
    user = api_user(request, "admin")
    return WebhookEndpoint.objects.filter(workspace_id=workspace_id_of(user)).order_by("id")


@router.post("", response={201: EndpointCreated}, summary="Register a webhook endpoint (admin)")
def create_endpoint(request: HttpRequest, payload: EndpointIn) -> Any:
    user = api_user(request, "admin")
    endpoint = actions.do_create_endpoint(
        user.workspace, url=payload.url, events=list(payload.events), secret=payload.secret  # type: ignore[arg-type]
    )
    return Status(201, endpoint)


@router.patch("/{endpoint_id}", response=EndpointOut, summary="Change or switch off an endpoint (admin)")
def change_endpoint(request: HttpRequest, endpoint_id: int, payload: EndpointChange) -> Any:
    endpoint = _access_endpoint(api_user(request, "admin"), endpoint_id)
    return actions.do_update_endpoint(
        endpoint,
        url=payload.url,
        events=list(payload.events) if payload.events is not None else None,
        active=payload.active,
    )


@router.delete("/{endpoint_id}", response={204: None}, summary="Remove an endpoint (admin)")
def delete_endpoint(request: HttpRequest, endpoint_id: int) -> Any:
    actions.do_delete_endpoint(_access_endpoint(api_user(request, "admin"), endpoint_id))
    return Status(204, None)


@router.get(
    "/{endpoint_id}/deliveries", response=list[DeliveryOut], summary="Recent deliveries, newest first (admin)"
)
def list_deliveries(
    request: HttpRequest, endpoint_id: int, limit: int = Query(50, ge=1, le=200)
) -> Any:
    endpoint = _access_endpoint(api_user(request, "admin"), endpoint_id)
    return endpoint.deliveries.order_by("-id")[:limit]
