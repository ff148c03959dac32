"""The LINE webhook endpoint: verify the signature on the raw bytes, keep the delivery, answer 200."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from madoguchi.connectors.line import inbound
from madoguchi.connectors.models import ChannelAccount


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, account_id: int) -> HttpResponse:
    """401 without a signature, 403 with a wrong one; 200 once the delivery is stored."""
    account = ChannelAccount.objects.filter(pk=account_id, kind="line", is_active=True).first()
    if account is None:
        return HttpResponse("unknown channel", status=404, content_type="text/plain")
    try:
        body = request.body
    except RequestDataTooBig:
        return HttpResponse("body too large", status=413, content_type="text/plain")
    signature = request.headers.get("x-line-signature", "")
    if not signature:
        return HttpResponse("missing x-line-signature", status=401, content_type="text/plain")
    if not inbound.check_signature(account.secrets.get("channel_secret", ""), body, signature):
        return HttpResponse("bad signature", status=403, content_type="text/plain")
    inbound.do_accept_delivery(account, body)
    return HttpResponse("OK", content_type="text/plain")
