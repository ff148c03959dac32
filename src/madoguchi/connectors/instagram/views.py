"""The Instagram webhook endpoints and settings page: Facebook's (facebook/views.py), for the
`instagram` object, routed by the Instagram account's id."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from madoguchi.accounts.queries import role_required
from madoguchi.connectors.facebook import graph
from madoguchi.connectors.facebook.views import settings_view
from madoguchi.connectors.instagram import inbound


@csrf_exempt
@require_http_methods(["GET", "POST"])
def webhook(request: HttpRequest, account_id: int) -> HttpResponse:
    """GET echoes hub.challenge for the right verify token; POST: 401 without X-Hub-Signature-256,
    403 with a wrong one, 200 once the delivery is stored."""
    return graph.webhook_view(request, account_id, "instagram", inbound.do_accept_delivery)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def app_webhook(request: HttpRequest) -> HttpResponse:
    """The Meta app's one callback URL for the `instagram` object: entries go to their account."""
    return graph.app_webhook_view(request, "instagram", "instagram", inbound.do_accept_delivery)


@role_required("admin")
def settings_page(request: HttpRequest, account_id: int) -> HttpResponse:
    return settings_view(request, account_id, "instagram")
