"""The X Account Activity webhook endpoint: CRC handshake on GET, signed events on POST."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.x import webhooks


@csrf_exempt
@require_http_methods(["GET", "POST"])
def webhook(request: HttpRequest, account_id: int) -> HttpResponse:
    """GET answers the CRC challenge; POST: 401 without a signature, 403 with a wrong one."""
    account = ChannelAccount.objects.filter(pk=account_id, kind="x", is_active=True).first()
    if account is None:
        return HttpResponse("unknown channel", status=404, content_type="text/plain")
    secret = (account.secrets or {}).get("consumer_secret", "")
    if request.method == "GET":
        token = request.GET.get("crc_token", "")
        if not token or not secret:
            return HttpResponse("crc_token and a consumer secret are required", status=400, content_type="text/plain")
        return JsonResponse(webhooks.crc_response(secret, token))
    try:
        body = request.body
    except RequestDataTooBig:
        return HttpResponse("body too large", status=413, content_type="text/plain")
    signature = request.headers.get("x-twitter-webhooks-signature", "")
    if not signature:
        return HttpResponse("missing x-twitter-webhooks-signature", status=401, content_type="text/plain")
    if not webhooks.check_signature(secret, body, signature):
        return HttpResponse("bad signature", status=403, content_type="text/plain")
    webhooks.do_receive_activity(account, body)
    return HttpResponse("OK", content_type="text/plain")
