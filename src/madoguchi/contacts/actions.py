"""Writes for contacts and identities: find-or-create from a channel author, add an identity to a
contact, merge, undo merge."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from madoguchi.accounts.models import AuditLog, User
from madoguchi.contacts.models import Contact, Identity

if TYPE_CHECKING:
    from madoguchi.connectors.base import InboundAuthor


class MergeError(ValueError):
    pass


class IdentityTaken(ValueError):
    """The identity asked for already belongs to another contact (merging is a separate act)."""

    def __init__(self, message: str, identity: Identity) -> None:
        super().__init__(message)
        self.identity = identity


def do_get_or_create_identity(workspace_id: int, kind: str, author: InboundAuthor) -> Identity:
    """The identity for this author on this channel kind, created with a new contact if unknown."""
    identity = (
        Identity.objects.select_related("contact")
        .filter(workspace_id=workspace_id, kind=kind, external_id=author.external_id)
        .first()
    )
    if identity is None:
        try:
            # A savepoint: when two items of a new author arrive at once (a webhook flood), the
            # second insert meets the first's unique key; it then takes the stored identity
            # instead of failing the whole delivery.
            with transaction.atomic():
                contact = Contact.objects.create(
                    workspace_id=workspace_id,
                    name=author.display_name or author.handle or author.email or author.external_id,
                    email=author.email if "@" in author.email else "",
                    language=author.language,
                )
                return Identity.objects.create(
                    workspace_id=workspace_id,
                    contact=contact,
                    kind=kind,
                    external_id=author.external_id,
                    handle=author.handle,
                    display_name=author.display_name,
                    avatar_url=author.avatar_url,
                    followers=author.followers,
                    language=author.language,
                )
        except IntegrityError:
            identity = Identity.objects.select_related("contact").get(
                workspace_id=workspace_id, kind=kind, external_id=author.external_id
            )
    # Profiles change: keep the latest public signals the platform gave us.
    changed = False
    for field in ("handle", "display_name", "avatar_url", "followers", "language"):
        value = getattr(author, field)
        if value not in ("", None) and getattr(identity, field) != value:
            setattr(identity, field, value)
            changed = True
    if changed:
        identity.updated_at = timezone.now()
        identity.save()
    return identity


def do_add_identity(contact: Contact, kind: str, author: InboundAuthor) -> Identity:
    """Attach this channel handle to an existing contact; IdentityTaken if another contact has it.

    Already the contact's own: returned as it is. Owned by someone else: refused, never moved,
    because deciding that two records are one person is a merge, done on the contacts page.
    Two requests adding the same handle at once store one row (the unique key decides).
    """
    identity = Identity.objects.filter(
        workspace_id=contact.workspace_id, kind=kind, external_id=author.external_id
    ).first()
    if identity is None:
        try:
            with transaction.atomic():
                return Identity.objects.create(
                    workspace_id=contact.workspace_id,
                    contact=contact,
                    kind=kind,
                    external_id=author.external_id,
                    handle=author.handle,
                    display_name=author.display_name or contact.name,
                    avatar_url=author.avatar_url,
                    followers=author.followers,
                    language=author.language,
                )
        except IntegrityError:  # created meanwhile by another request: judge that row instead
            identity = Identity.objects.get(
                workspace_id=contact.workspace_id, kind=kind, external_id=author.external_id
            )
    if identity.contact_id != contact.pk:
        raise IdentityTaken(
            _("%(handle)s already belongs to contact #%(id)s; merge the contacts first.")
            % {"handle": identity.handle or identity.external_id, "id": identity.contact_id},
            identity,
        )
    return identity


@transaction.atomic
def do_merge_contacts(source: Contact, target: Contact, actor: User | None) -> AuditLog:
    """Move everything of `source` to `target`; recorded so the merge can be undone."""
    from madoguchi.inbox.models import Conversation
    from madoguchi.ingest.models import Post

    if source.pk == target.pk:
        raise MergeError(_("A contact cannot be merged into itself."))
    if source.workspace_id != target.workspace_id:
        raise MergeError(_("Contacts of different workspaces cannot be merged."))
    if source.merged_into_id:
        raise MergeError(_("This contact was already merged."))
    identity_ids = list(source.identities.values_list("id", flat=True))
    conversation_ids = list(Conversation.objects.filter(contact=source).values_list("id", flat=True))
    post_ids = list(Post.objects.filter(contact=source).values_list("id", flat=True))
    log = AuditLog.objects.create(
        workspace_id=source.workspace_id,
        actor=actor,
        action="contact.merge",
        data={
            "source": source.pk,
            "target": target.pk,
            "identities": identity_ids,
            "conversations": conversation_ids,
            "posts": post_ids,
            "target_before": {"name": target.name, "email": target.email, "language": target.language},
        },
    )
    Identity.objects.filter(id__in=identity_ids).update(contact=target)
    Conversation.objects.filter(id__in=conversation_ids).update(contact=target)
    Post.objects.filter(id__in=post_ids).update(contact=target)
    for field in ("name", "email", "language"):
        if not getattr(target, field) and getattr(source, field):
            setattr(target, field, getattr(source, field))
    target.save()
    source.merged_into = target
    source.save(update_fields=["merged_into"])
    return log


@transaction.atomic
def do_undo_merge(log: AuditLog, actor: User | None) -> Contact:
    """Reverse a merge: the recorded identities, conversations and posts go back to the source."""
    from madoguchi.inbox.models import Conversation
    from madoguchi.ingest.models import Post

    log = AuditLog.objects.select_for_update().get(pk=log.pk)
    if log.action != "contact.merge" or log.undone_at:
        raise MergeError(_("This merge cannot be undone (already undone)."))
    data = log.data
    source = Contact.objects.get(pk=data["source"], workspace_id=log.workspace_id)
    target = Contact.objects.get(pk=data["target"], workspace_id=log.workspace_id)
    Identity.objects.filter(id__in=data["identities"], contact=target).update(contact=source)
    Conversation.objects.filter(id__in=data["conversations"], contact=target).update(contact=source)
    Post.objects.filter(id__in=data["posts"], contact=target).update(contact=source)
    for field, value in data.get("target_before", {}).items():
        setattr(target, field, value)
    target.save()
    source.merged_into = None
    source.save(update_fields=["merged_into"])
    log.undone_at = timezone.now()
    log.save(update_fields=["undone_at"])
    AuditLog.objects.create(
        workspace_id=log.workspace_id, actor=actor, action="contact.unmerge", data={"merge": log.pk}
    )
    return source


def do_update_contact(contact: Contact, *, name: str, email: str, language: str, notes: str) -> Contact:
    """Edit a contact's own fields."""
    contact.name, contact.email, contact.language, contact.notes = name, email, language, notes
    contact.save()
    return contact
