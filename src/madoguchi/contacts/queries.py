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


def possible_duplicates(contact: Contact, limit: int = 8) -> list[dict[str, Any]]:
    """Other contacts of the workspace that may be the same person, newest first, each with why:
    the same name, email or handle. Someone who writes on a second channel arrives as a second
    contact (platforms share no identifiers); the agent decides and merges (and can undo)."""
    name = contact.name.strip()
    handles = {h for h in contact.identities.values_list("handle", flat=True) if h}
    match = Q()
    if len(name) >= 2:
        match |= Q(name__iexact=name)
    if contact.email:
        match |= Q(email__iexact=contact.email)
    if handles:
        match |= Q(identities__handle__in=handles)
    if not match:
        return []
    rows = list(
        Contact.objects.filter(match, workspace_id=contact.workspace_id, merged_into__isnull=True)
        .exclude(pk=contact.pk)
        .distinct()
        .prefetch_related("identities")
        .order_by("-created_at", "-id")[:limit]
    )
    out = []
    for other in rows:
        identities = list(other.identities.all())
        why = []
        if len(name) >= 2 and other.name.strip().casefold() == name.casefold():
            why.append("name")
        if contact.email and other.email.casefold() == contact.email.casefold():
            why.append("email")
        if handles & {i.handle for i in identities}:
            why.append("handle")
        out.append({"contact": other, "why": why, "kinds": sorted({i.kind for i in identities})})
    return out


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
