"""Contact list, the contact's timeline, merge and undo."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from madoguchi.accounts.models import AuditLog
from madoguchi.accounts.queries import role_required, workspace_id_of
from madoguchi.contacts import actions, queries


@role_required("agent")
def contact_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:100]
    page = Paginator(queries.contacts_for(request.user, q), 50).get_page(request.GET.get("page"))  # type: ignore[arg-type]
    return render(request, "contacts/list.html", {"page": page, "q": q})


@role_required("agent")
def contact_detail(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = queries.access_contact(request.user, contact_id)  # type: ignore[arg-type]
    merges = AuditLog.objects.filter(workspace_id=contact.workspace_id, action="contact.merge", undone_at__isnull=True, data__target=contact.pk)
    return render(
        request,
        "contacts/detail.html",
        {
            "contact": contact,
            "identities": contact.identities.all(),
            "timeline": queries.contact_timeline(contact),
            "merges": merges,
            "duplicates": [] if contact.merged_into_id else queries.possible_duplicates(contact),
        },
    )


@role_required("agent")
@require_POST
def merge(request: HttpRequest, contact_id: int) -> HttpResponse:
    target = queries.access_contact(request.user, contact_id)  # type: ignore[arg-type]
    source_id = request.POST.get("source", "")
    if not source_id.isdigit():
        messages.error(request, _("Enter the number of the contact to merge."))
        return redirect("contacts:detail", target.pk)
    source = queries.access_contact(request.user, int(source_id))  # type: ignore[arg-type]
    try:
        actions.do_merge_contacts(source, target, request.user)  # type: ignore[arg-type]
    except actions.MergeError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Merged %(source)s into %(target)s.") % {"source": source, "target": target})
    return redirect("contacts:detail", target.pk)


@role_required("agent")
@require_POST
def undo_merge(request: HttpRequest, log_id: int) -> HttpResponse:
    log = get_object_or_404(AuditLog, pk=log_id, workspace_id=workspace_id_of(request.user), action="contact.merge")
    try:
        source = actions.do_undo_merge(log, request.user)  # type: ignore[arg-type]
    except actions.MergeError as exc:
        messages.error(request, str(exc))
        return redirect("contacts:list")
    messages.success(request, _("Merge undone."))
    return redirect("contacts:detail", source.pk)
