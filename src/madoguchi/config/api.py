"""The JSON API under /api/v1/: one NinjaAPI, one router per app, bearer-token auth only.

Session cookies are deliberately not accepted here, so the API needs no CSRF protection and a
browser tab can never be tricked into calling it.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI

from madoguchi.accounts.api import BearerToken
from madoguchi.accounts.api import router as accounts_router
from madoguchi.contacts.actions import MergeError
from madoguchi.contacts.api import router as contacts_router
from madoguchi.inbox.actions import InboxError
from madoguchi.inbox.api import router as inbox_router
from madoguchi.ingest.api import router as ingest_router
from madoguchi.kb.actions import KbError
from madoguchi.kb.api import router as kb_router
from madoguchi.listening.api import router as listening_router
from madoguchi.webhooks.api import router as webhooks_router

api = NinjaAPI(
    title="madoguchi API",
    version="1",
    description=(
        "Send `Authorization: Bearer <token>` with every request; create tokens in the settings page."
        " Errors are JSON objects with a `detail` field."
    ),
    auth=BearerToken(),
    urls_namespace="api-v1",
)


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return api.create_response(request, {"detail": "You do not have permission to do that."}, status=403)


@api.exception_handler(InboxError)
def _inbox_error(request: HttpRequest, exc: InboxError) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc)}, status=400)


@api.exception_handler(KbError)
def _kb_error(request: HttpRequest, exc: KbError) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc)}, status=400)


@api.exception_handler(MergeError)
def _merge_error(request: HttpRequest, exc: MergeError) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc)}, status=400)


api.add_router("/", inbox_router)
api.add_router("/contacts", contacts_router)
api.add_router("/ingest", ingest_router)
api.add_router("/", accounts_router)
api.add_router("/webhooks", webhooks_router)
api.add_router("/listening", listening_router)
api.add_router("/", kb_router)
