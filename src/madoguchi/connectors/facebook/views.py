"""The Facebook webhook endpoints (the subscription handshake on GET, signed deliveries on POST):
one per account, and one for the whole Meta app (every page it serves); and the account's
settings page, which says which URL to give Meta. Instagram's views are these, for its kind."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.template import engines
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from madoguchi.accounts.queries import role_required, workspace_id_of
from madoguchi.connectors.facebook import graph, inbound
from madoguchi.connectors.models import ChannelAccount

_TEMPLATES = Path(__file__).parent / "templates"
View = Callable[..., HttpResponse]


@cache
def _template(name: str) -> Any:
    """A template of this folder (connectors are folders, not apps: no app template dir)."""
    return engines["django"].from_string((_TEMPLATES / name).read_text(encoding="utf-8"))


def settings_view(request: HttpRequest, account_id: int, kind: str) -> HttpResponse:
    """The webhook URLs to give Meta for this account, with the page (or Instagram) id they route by."""
    account = ChannelAccount.objects.filter(pk=account_id, kind=kind, workspace_id=workspace_id_of(request.user)).first()
    if account is None:
        raise Http404
    context = {
        "account": account,
        "kind": kind,
        "network": graph.PLATFORM_NAMES[kind],
        "object": "page" if kind == "facebook" else "instagram",
        "fields": "feed, messages, message_reactions, message_reads, message_edits" if kind == "facebook" else "comments, mentions, messages, message_reactions",
        "entry_key": graph.ENTRY_ID_KEYS[kind],
        "entry_id": str((account.config or {}).get(graph.ENTRY_ID_KEYS[kind], "")),
        "app_url": request.build_absolute_uri(reverse(f"{kind}:app_webhook")),
        "account_url": request.build_absolute_uri(reverse(f"{kind}:webhook", args=[account.pk])),
        "has_verify_token": bool((account.secrets or {}).get("verify_token")),
        "has_app_secret": bool((account.secrets or {}).get("app_secret")),
    }
    return HttpResponse(_template("settings.html").render(context, request))


def meta_views(kind: str, object_: str, accept: Callable[[ChannelAccount, bytes], int]) -> tuple[View, View, View]:
    """A network's three views: its per-account webhook, the app-level webhook for its object
    (`page` or `instagram`), and the account's settings page."""

    @csrf_exempt
    @require_http_methods(["GET", "POST"])
    def webhook(request: HttpRequest, account_id: int) -> HttpResponse:
        """GET echoes hub.challenge for the right verify token; POST: 401 without
        X-Hub-Signature-256, 403 with a wrong one, 200 once the delivery is stored."""
        return graph.webhook_view(request, account_id, kind, accept)

    @csrf_exempt
    @require_http_methods(["GET", "POST"])
    def app_webhook(request: HttpRequest) -> HttpResponse:
        """The Meta app's one callback URL for the object: entries go to their page's account."""
        return graph.app_webhook_view(request, kind, object_, accept)

    @role_required("admin")
    def settings_page(request: HttpRequest, account_id: int) -> HttpResponse:
        return settings_view(request, account_id, kind)

    return webhook, app_webhook, settings_page


webhook, app_webhook, settings_page = meta_views("facebook", "page", inbound.do_accept_delivery)
