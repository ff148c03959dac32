"""The Channels page: every connected account with its health, so nothing goes silent unnoticed."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

from madoguchi.accounts.queries import role_required, workspace_id_of
from madoguchi.connectors import health

# Pages a connector may offer for one account, by convention under /connectors/<kind>/<id>/.
CONNECTOR_PAGES = ("settings", "test")


def _pages(kind: str, account_id: int) -> list[str]:
    pages = []
    for page in CONNECTOR_PAGES:
        try:
            resolve(f"/connectors/{kind}/{account_id}/{page}/")
        except Resolver404:
            continue
        pages.append(page)
    return pages


@role_required("agent")
def channels(request: HttpRequest) -> HttpResponse:
    """Everyone sees the state of every channel; admins get the links to fix them."""
    rows = health.workspace_health(workspace_id_of(request.user))
    is_admin = request.user.has_role("admin")  # type: ignore[union-attr]
    return render(
        request,
        "connectors/channels.html",
        {
            "rows": [
                {"h": h, "pages": _pages(h.account.kind, h.account.pk) if is_admin else []}
                for h in rows
            ],
            "is_admin": is_admin,
        },
    )
