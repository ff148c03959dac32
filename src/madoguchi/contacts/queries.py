"""Reads for contacts: access checks and the contact timeline."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from madoguchi.accounts.models import User
from madoguchi.accounts.queries import workspace_id_of
from madoguchi.contacts.models import Contact


def access_contact(user: User, contact_id: int) -> Contact:
    """The contact if it is in the user's workspace, else 404."""
    contact = Contact.objects.filter(pk=contact_id, workspace_id=workspace_id_of(user)).first()
    if contact is None:
        raise Http404
    return contact


def contacts_for(user: User, q: str = "") -> QuerySet[Contact]:
    qs = Contact.objects.filter(workspace_id=workspace_id_of(user), merged_into__isnull=True)
    if q:
        qs = qs.filter(
            Q(name__icontains=q) | Q(email__icontains=q) | Q(identities__handle__icontains=q)
        ).distinct()
    return qs.order_by("-created_at", "-id")


def contact_timeline(contact: Contact, limit: int = 100) -> list[dict]:
    """Every conversation and captured public post of the contact, newest first."""
    from madoguchi.inbox.models import Conversation
    from madoguchi.ingest.models import Post

    conversations = list(
        Conversation.objects.filter(contact=contact)
        .select_related("channel_account")
        .order_by("-last_message_at")[:limit]
    )
    posts = list(
        Post.objects.filter(contact=contact)
        .select_related("channel_account", "identity")
        .order_by("-created_at")[:limit]
    )
    items: list[dict[str, Any]] = [{"type": "conversation", "at": c.last_message_at, "obj": c} for c in conversations]
    items += [{"type": "post", "at": p.created_at, "obj": p} for p in posts]
    items.sort(key=lambda i: i["at"], reverse=True)
    return items[:limit]
