"""The inbound endpoint for mail services that POST raw RFC 5322 mail, and the admins' test page.

`POST /connectors/email/<account id>/inbound/` with the raw mail as the body and
`X-Madoguchi-Signature: sha256=<hex HMAC-SHA256 of the body with secrets["inbound_secret"]>`.
401 on a missing or wrong signature, 413 over `config["max_message_bytes"]` (default 25 MB,
refused before the body is read), 202 once the mail is stored, quarantined or recognised as a
duplicate (a provider's retry changes nothing: ingest is idempotent on Message-ID).

`/connectors/email/<account id>/test/` (admins; linked from the Channels page) runs
`connection.check_connection` and shows each IMAP and SMTP step with what failed.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache
from pathlib import Path
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import engines
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from madoguchi.accounts.queries import role_required, workspace_id_of
from madoguchi.connectors.email import inbound
from madoguchi.connectors.email.connection import check_connection
from madoguchi.connectors.email.imap import DEFAULT_MAX_MESSAGE_BYTES
from madoguchi.connectors.models import ChannelAccount, ChannelKind

SIGNATURE_HEADER = "X-Madoguchi-Signature"


def sign(secret: str, body: bytes) -> str:
    """The signature header value a sender computes for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(secret: str, body: bytes, header: str) -> bool:
    return bool(secret) and hmac.compare_digest(sign(secret, body), header.strip())


@csrf_exempt
@require_POST
def inbound_mail(request: HttpRequest, account_id: int) -> JsonResponse:
    """Receive one raw mail for an email ChannelAccount."""
    account = ChannelAccount.objects.filter(
        pk=account_id, kind=ChannelKind.EMAIL, is_active=True
    ).first()
    if account is None:
        return JsonResponse({"error": "no such mailbox"}, status=404)
    limit = int(account.config.get("max_message_bytes") or DEFAULT_MAX_MESSAGE_BYTES)
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return JsonResponse({"error": "bad Content-Length"}, status=400)
    if declared > limit:
        return JsonResponse({"error": f"mail larger than {limit} bytes"}, status=413)
    # Read the stream ourselves: request.body would apply the form-upload limit, not ours.
    body = request.read(limit + 1)
    if len(body) > limit:
        return JsonResponse({"error": f"mail larger than {limit} bytes"}, status=413)
    secret = str(account.secrets.get("inbound_secret") or "")
    if not check_signature(secret, body, request.headers.get(SIGNATURE_HEADER, "")):
        return JsonResponse({"error": "bad signature"}, status=401)
    outcome = inbound.receive(account, body)
    return JsonResponse({"result": outcome.result, "message": outcome.message_id}, status=202)


STEP_LABELS = {
    "config": _("Settings"),
    "dns": _("Server name (DNS)"),
    "tcp": _("Connection (TCP)"),
    "tls": _("Encryption (TLS)"),
    "auth": _("Login"),
    "folder": _("Folder"),
}


@cache
def _test_template() -> Any:
    # Connectors are folders, not apps: their templates are not on the app template path.
    source = (Path(__file__).parent / "templates" / "test.html").read_text(encoding="utf-8")
    return engines["django"].from_string(source)


@role_required("admin")
@require_http_methods(["GET", "POST"])
def test_connection(request: HttpRequest, account_id: int) -> HttpResponse:
    """Admins: run the connection test of a mailbox of their workspace and show every step."""
    account = ChannelAccount.objects.filter(
        pk=account_id, kind=ChannelKind.EMAIL, workspace_id=workspace_id_of(request.user)
    ).first()
    if account is None:
        raise Http404
    steps = []
    if request.method == "POST":
        steps = [
            {**s, "label": STEP_LABELS.get(s["step"], s["step"])} for s in check_connection(account)
        ]
    failed = next((s for s in steps if s["ok"] is False), None)
    html = _test_template().render({"account": account, "steps": steps, "failed": failed}, request)
    return HttpResponse(html)
