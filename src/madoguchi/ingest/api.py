"""Ingest API: push one normalized inbound item (a custom channel, a migration, a bridge)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.http import Http404, HttpRequest
from ninja import Router, Schema, Status

from madoguchi.accounts.api import api_user
from madoguchi.accounts.queries import workspace_id_of
from madoguchi.connectors.base import InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.ingest import actions
from madoguchi.ingest.models import Quarantine

router = Router(tags=["ingest"])


class IngestOut(Schema):
    created: bool
    conversation_id: int | None = None
    message_id: int | None = None
    post_id: int | None = None


class QuarantinedOut(Schema):
    quarantine_id: int
    detail: str


_ITEM_SCHEMA = InboundItem.model_json_schema()
for _attachment in _ITEM_SCHEMA.get("$defs", {}).values():
    if "content" in _attachment.get("properties", {}):
        _attachment["properties"]["content"] = {"type": "string", "format": "byte", "description": "base64"}


def _decode_attachments(data: Any) -> Any:
    """JSON has no bytes: attachment contents arrive base64-encoded."""
    if isinstance(data, dict) and isinstance(data.get("attachments"), list):
        data = {**data, "attachments": [dict(a) if isinstance(a, dict) else a for a in data["attachments"]]}
        for n, attachment in enumerate(data["attachments"]):
            if isinstance(attachment, dict) and isinstance(attachment.get("content"), str):
                try:
                    attachment["content"] = base64.b64decode(attachment["content"], validate=True)
                except (binascii.Error, ValueError):
                    raise ValueError(f"attachments.{n}.content: not valid base64") from None
    return data


@router.post(
    "/{channel_account_id}",
    response={200: IngestOut, 201: IngestOut, 422: QuarantinedOut},
    summary="Ingest one normalized inbound item (admin)",
    description=(
        "The body is a normalized inbound item (attachment `content` base64-encoded). Idempotent on"
        " (channel account, external_id).\n\n"
        "- **201**: stored; the ids of the conversation and message (or captured post).\n"
        "- **200**: a replay of an item already stored; the same ids as the first time.\n"
        "- **422**: the item was not valid (or not acceptable, e.g. an attachment too large). It is"
        " kept in quarantine for an admin to inspect; `quarantine_id` names it. Sending it again"
        " unchanged quarantines it again."
    ),
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ITEM_SCHEMA}}}
    },
)
def ingest_item(request: HttpRequest, channel_account_id: int) -> Any:
    user = api_user(request, "admin")
    account = ChannelAccount.objects.filter(pk=channel_account_id, workspace_id=workspace_id_of(user)).first()
    if account is None:
        raise Http404
    quarantine: Quarantine | None
    try:
        payload = _decode_attachments(json.loads(request.body))
    except ValueError as exc:  # not JSON, or bad base64: keep the raw body for the admin
        quarantine = actions.do_quarantine(account, str(exc), request.body)
    else:
        result = actions.do_ingest_payload(account, payload)
        quarantine = result.quarantine
    if quarantine is not None:
        return Status(422, {"quarantine_id": quarantine.pk, "detail": quarantine.reason})
    ids = {
        "created": result.created,
        "conversation_id": result.conversation_id,
        "message_id": result.message.pk if result.message else None,
        "post_id": result.post.pk if result.post else None,
    }
    return Status(201 if result.created else 200, ids)
