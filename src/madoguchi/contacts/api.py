"""Contacts API: a contact with its identities, merging two contacts and undoing a merge."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404, HttpRequest
from ninja import Router, Schema

from madoguchi.accounts.api import api_user
from madoguchi.accounts.models import AuditLog
from madoguchi.accounts.queries import workspace_id_of
from madoguchi.contacts import actions, queries
from madoguchi.contacts.models import Contact

router = Router(tags=["contacts"])


class IdentityOut(Schema):
    id: int
    kind: str
    external_id: str
    handle: str
    display_name: str
    avatar_url: str
    followers: int | None
    language: str


class ContactOut(Schema):
    id: int
    name: str
    email: str
    language: str
    notes: str
    created_at: dt.datetime
    merged_into_id: int | None
    identities: list[IdentityOut]

    @staticmethod
    def resolve_identities(obj: Contact) -> list:
        return list(obj.identities.order_by("id"))


class MergeIn(Schema):
    source: int


class MergeOut(Schema):
    merge_id: int
    contact: ContactOut


class Detail(Schema):
    detail: Any


@router.get("/{contact_id}", response=ContactOut, summary="Get a contact with its identities")
def get_contact(request: HttpRequest, contact_id: int) -> Any:
    return queries.access_contact(api_user(request), contact_id)


@router.post(
    "/{contact_id}/merge",
    response={200: MergeOut, 400: Detail},
    summary="Merge contact `source` into this one; undo with the returned merge_id",
)
def merge_contact(request: HttpRequest, contact_id: int, payload: MergeIn) -> Any:
    user = api_user(request)
    target = queries.access_contact(user, contact_id)
    source = queries.access_contact(user, payload.source)
    log = actions.do_merge_contacts(source, target, user)
    return {"merge_id": log.pk, "contact": queries.access_contact(user, target.pk)}


@router.post(
    "/merges/{merge_id}/undo",
    response={200: ContactOut, 400: Detail},
    summary="Undo a merge: the source contact gets its identities and conversations back",
)
def undo_merge(request: HttpRequest, merge_id: int) -> Any:
    user = api_user(request)
    log = AuditLog.objects.filter(pk=merge_id, workspace_id=workspace_id_of(user), action="contact.merge").first()
    if log is None:
        raise Http404
    return actions.do_undo_merge(log, user)
