"""Admins look at quarantined inbound items here."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from madoguchi.accounts.queries import role_required, workspace_id_of
from madoguchi.ingest import actions
from madoguchi.ingest.models import Quarantine


@role_required("admin")
def quarantine_list(request: HttpRequest) -> HttpResponse:
    qs = Quarantine.objects.filter(workspace_id=workspace_id_of(request.user), resolved_at__isnull=True).select_related("channel_account")
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(request, "ingest/quarantine.html", {"page": page})


@role_required("admin")
@require_POST
def quarantine_resolve(request: HttpRequest, item_id: int) -> HttpResponse:
    item = get_object_or_404(Quarantine, pk=item_id, workspace_id=workspace_id_of(request.user))
    actions.do_resolve_quarantine(item)
    return redirect("ingest:quarantine")
