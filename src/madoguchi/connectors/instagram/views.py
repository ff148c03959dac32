"""The Instagram webhook endpoint: the same handshake and signature as Facebook (graph.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from madoguchi.connectors.facebook import graph
from madoguchi.connectors.instagram import inbound


@csrf_exempt
@require_http_methods(["GET", "POST"])
def webhook(request: HttpRequest, account_id: int) -> HttpResponse:
    """GET echoes hub.challenge for the right verify token; POST: 401 without X-Hub-Signature-256,
    403 with a wrong one, 200 once the delivery is stored."""
    return graph.webhook_view(request, account_id, "instagram", inbound.do_accept_delivery)
