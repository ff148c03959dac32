"""The widget's endpoints (script, config, session, messages, typing, read marks, live events,
files) and the admins' settings page.

CSRF: the widget API is called cross-origin from the customer's own website, where no madoguchi
cookie or CSRF token exists, so its endpoints are csrf_exempt. They never read a session or a
cookie: a request acts only for the visitor whose signed token it carries in the
X-Madoguchi-Visitor header (a header a third-party page cannot make a browser add on its own),
and only from an allowed Origin. That is the protection CSRF tokens give to cookie sessions.

Browser rules this relies on:
- Origin is sent on every CORS request, and omitted on same-origin GET/HEAD
  (https://fetch.spec.whatwg.org/#origin-header); Sec-Fetch-Site says "same-origin" then
  (https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Sec-Fetch-Site).
- A custom request header makes the browser ask first with an OPTIONS preflight, and it only
  exposes a response whose Access-Control-Allow-Origin names the page's origin
  (https://developer.mozilla.org/en-US/docs/Web/HTTP/CORS).
- EventSource cannot send request headers (its init dictionary only has withCredentials:
  https://html.spec.whatwg.org/multipage/server-sent-events.html#the-eventsource-interface),
  so the widget reads the same text/event-stream format with fetch() and a stream reader.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.db import connection
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from madoguchi.accounts.queries import role_required, workspace_id_of
from madoguchi.connectors.base import InboundAttachment
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webchat import actions, inbound, queries
from madoguchi.connectors.webchat.forms import WidgetSettingsForm
from madoguchi.connectors.webchat.hours import back_text
from madoguchi.connectors.webchat.live import visitor_stream
from madoguchi.connectors.webchat.widget import (
    UPLOAD_TYPES,
    VISITOR_HEADER,
    Visitor,
    WidgetConfig,
    access_file,
    access_visitor,
    access_widget,
    check_rate,
    new_visitor,
    origin_allowed,
    sign_visitor,
)
from madoguchi.inbox.models import Attachment

STATIC = Path(__file__).resolve().parents[1] / "static" / "madoguchi" / "webchat"
ALLOW_HEADERS = f"Content-Type, {VISITOR_HEADER}, Last-Event-ID"
MAX_JSON_BYTES = 64 * 1024


def _json(data: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})


def _client_ip(request: HttpRequest) -> str:
    # Behind a reverse proxy, configure it to set REMOTE_ADDR (e.g. uvicorn --proxy-headers).
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _language(request: HttpRequest) -> str:
    lang = (request.GET.get("lang") or request.headers.get("Accept-Language") or "en")[:2].lower()
    return "ja" if lang == "ja" else "en"


def _origin(request: HttpRequest) -> str:
    """The requesting page's origin. Browsers send Origin on every cross-origin request; on a
    same-origin GET they omit it but say Sec-Fetch-Site: same-origin (the try-it page)."""
    origin = request.headers.get("Origin", "")
    if not origin and request.headers.get("Sec-Fetch-Site") == "same-origin":
        origin = f"{request.scheme}://{request.get_host()}"
    return origin


def _gate(request: HttpRequest, key: str) -> tuple[ChannelAccount, WidgetConfig, str] | HttpResponse:
    """The widget's account and settings for an allowed origin, or the refusal to send."""
    account = access_widget(key)
    if account is None:
        return _json({"error": "unknown widget key"}, 404)
    config = WidgetConfig.of(account)
    origin = _origin(request)
    if not origin_allowed(config, origin):
        return _json({"error": "this website may not use this chat widget"}, 403)
    if request.method != "OPTIONS" and not check_rate(account, "ip", _client_ip(request), config.ip_per_minute):
        return _cors(_json({"error": "too many requests"}, 429), origin)
    return account, config, origin


def _cors(response: HttpResponse | StreamingHttpResponse, origin: str) -> Any:
    response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin"
    return response


def _preflight(origin: str) -> HttpResponse:
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response["Access-Control-Max-Age"] = "600"
    return _cors(response, origin)


View = Callable[..., HttpResponse]


def widget_api(*, visitor: bool = True, methods: tuple[str, ...] = ("GET", "POST")) -> Callable[[View], View]:
    """Origin check, CORS, IP rate limit and (unless `visitor=False`) the visitor token."""

    def decorator(view: View) -> View:
        @csrf_exempt  # token-authenticated cross-origin API: see the module docstring
        @wraps(view)
        def wrapped(request: HttpRequest, key: str, *args: Any, **kwargs: Any) -> HttpResponse:
            gate = _gate(request, key)
            if isinstance(gate, HttpResponse):
                return gate
            account, config, origin = gate
            if request.method == "OPTIONS":
                return _preflight(origin)
            if request.method not in methods:
                return _cors(_json({"error": "method not allowed"}, 405), origin)
            who: Visitor | None = None
            if visitor:
                who = access_visitor(account, request.headers.get(VISITOR_HEADER, ""))
                if who is None:
                    return _cors(_json({"error": "missing or invalid visitor token"}, 401), origin)
            with translation.override(_language(request)):
                response = view(request, account, config, who, *args, **kwargs)
            return _cors(response, origin)

        return wrapped

    return decorator


def _body(request: HttpRequest) -> dict[str, Any]:
    if request.content_type != "application/json":
        return dict(request.POST.items())
    if len(request.body) > MAX_JSON_BYTES:
        return {}
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@cache
def _static(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def widget_js(request: HttpRequest) -> HttpResponse:
    """The loader every host page includes; it reads its own data-key and src."""
    response = HttpResponse(_static("widget.js"), content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response


def widget_css(request: HttpRequest) -> HttpResponse:
    """The widget's styles, loaded into its Shadow DOM (no host page CSS reaches it)."""
    response = HttpResponse(_static("widget.css"), content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response


def widget_strings() -> dict[str, str]:
    """The widget's text, through gettext like every other string (translated with the rest)."""
    return {
        "open": _("Chat with us"),
        "close": _("Close chat"),
        "title": _("Chat"),
        "intro": _("Ask us anything. We usually reply within a few minutes."),
        "name": _("Your name (optional)"),
        "email": _("Email (optional)"),
        "start": _("Start chatting"),
        "placeholder": _("Write a message…"),
        "send": _("Send"),
        "attach": _("Attach a file"),
        "typing": _("%(name)s is typing…") % {"name": "{name}"},
        "someone": _("Support"),
        "read": _("Read"),
        "sent": _("Sent"),
        "failed": _("Not sent. Tap to try again."),
        "too_big": _("This file is too large (at most %(mb)s MB).") % {"mb": "{mb}"},
        "bad_type": _("Only pictures, PDF and text files can be sent."),
        "rate": _("You are sending too fast. Please wait a moment."),
        "earlier": _("Show earlier messages"),
    }


@widget_api(visitor=False, methods=("GET",))
def config(request: HttpRequest, account: ChannelAccount, cfg: WidgetConfig, _v: None) -> HttpResponse:
    """Title, business hours and the text in the visitor's language (?lang=ja|en)."""
    return _json(
        {
            "title": cfg.title,
            "open": cfg.hours.is_open(),
            "back": back_text(cfg.hours),
            "strings": widget_strings(),
            "max_upload_bytes": cfg.max_upload_bytes,
            "upload_types": list(UPLOAD_TYPES),
            "lang": translation.get_language(),
        }
    )


@widget_api(visitor=False, methods=("POST",))
def session(request: HttpRequest, account: ChannelAccount, cfg: WidgetConfig, _v: None) -> HttpResponse:
    """Start or resume a visitor: a fresh token (renewed on every visit), with name and email."""
    data = _body(request)
    visitor = access_visitor(account, request.headers.get(VISITOR_HEADER, ""))
    if visitor is None:
        visitor = new_visitor(account)
    name = str(data.get("name", visitor.name) or "").replace("\x00", "").strip()[:120]
    email = str(data.get("email", visitor.email) or "").replace("\x00", "").strip()[:254]
    if email and ("@" not in email or " " in email):
        return _json({"error": _("Please check the email address.")}, 400)
    visitor = Visitor(account.pk, visitor.id, name, email)
    return _json({"token": sign_visitor(visitor), "name": visitor.name, "email": visitor.email})


@widget_api(methods=("GET", "POST"))
def messages_view(request: HttpRequest, account: ChannelAccount, cfg: WidgetConfig, visitor: Visitor) -> HttpResponse:
    """GET: the visitor's history. POST: a message (JSON) or a file (multipart)."""
    if request.method == "GET":
        before = request.GET.get("before", "")
        return _json(queries.history(account, visitor, int(before) if before.isdigit() else None))
    if not check_rate(account, "visitor", visitor.id, cfg.visitor_per_minute):
        return _json({"error": _("You are sending too fast. Please wait a moment.")}, 429)
    attachments = []
    if request.content_type == "multipart/form-data":
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > cfg.max_upload_bytes + 64 * 1024:  # refuse before the body is read
            return _too_big(cfg)
        upload = request.FILES.get("file")
        if upload is not None:
            if (upload.size or 0) > cfg.max_upload_bytes:
                return _too_big(cfg)
            content_type = (upload.content_type or "").split(";")[0].strip().lower()
            if content_type not in UPLOAD_TYPES:
                return _json({"error": _("Only pictures, PDF and text files can be sent.")}, 415)
            attachments.append(InboundAttachment(filename=(upload.name or "file")[-200:], content_type=content_type, content=upload.read()))
    data = _body(request)
    try:
        result = inbound.do_visitor_message(
            account,
            visitor,
            text=str(data.get("text") or ""),
            client_id=str(data.get("client_id") or uuid.uuid4().hex),
            language=str(data.get("lang") or ""),
            attachments=attachments,
            page_url=str(data.get("page") or ""),
        )
    except inbound.VisitorError as exc:
        return _json({"error": str(exc)}, 400)
    if result.message is None:
        return _json({"error": _("The message could not be stored.")}, 400)
    message = queries.visitor_message(account, visitor, result.message.pk)
    assert message is not None
    return _json({"message": queries.message_payload(message, visitor)}, 201 if result.created else 200)


def _too_big(cfg: WidgetConfig) -> HttpResponse:
    mb = max(1, cfg.max_upload_bytes // (1024 * 1024))
    return _json({"error": _("This file is too large (at most %(mb)s MB).") % {"mb": mb}}, 413)


@widget_api(methods=("POST",))
def typing(request: HttpRequest, account: ChannelAccount, cfg: WidgetConfig, visitor: Visitor) -> HttpResponse:
    """The visitor is typing (the widget sends this at most every few seconds)."""
    if not check_rate(account, "signal", visitor.id, cfg.visitor_per_minute * 3):
        return _json({"error": "too many requests"}, 429)
    return _json({"ok": inbound.do_visitor_typing(account, visitor)})


@widget_api(methods=("POST",))
def read(request: HttpRequest, account: ChannelAccount, cfg: WidgetConfig, visitor: Visitor) -> HttpResponse:
    """The visitor has seen the team's replies up to a message id."""
    if not check_rate(account, "signal", visitor.id, cfg.visitor_per_minute * 3):
        return _json({"error": "too many requests"}, 429)
    up_to = _body(request).get("up_to")
    if not isinstance(up_to, int):
        return _json({"error": "up_to must be a message id"}, 400)
    return _json({"read": inbound.do_visitor_read(account, visitor, up_to)})


def _gate_and_close(request: HttpRequest, key: str) -> tuple[ChannelAccount, WidgetConfig, str] | HttpResponse:
    try:
        return _gate(request, key)
    finally:
        connection.close()


@csrf_exempt  # token-authenticated cross-origin API: see the module docstring
async def events(request: HttpRequest, key: str) -> HttpResponse | StreamingHttpResponse:
    """The visitor's live events (SSE). Read with fetch() so the token travels in a header,
    not in the URL (EventSource cannot send headers)."""
    # Not thread_sensitive: that thread and its database connection would live as long as the
    # stream (hours); a pool thread that closes its connection at once holds nothing.
    gate = await sync_to_async(_gate_and_close, thread_sensitive=False)(request, key)
    if isinstance(gate, HttpResponse):
        return gate
    account, _cfg, origin = gate
    if request.method == "OPTIONS":
        return _preflight(origin)
    visitor = access_visitor(account, request.headers.get(VISITOR_HEADER, ""))
    if visitor is None:
        return _cors(_json({"error": "missing or invalid visitor token"}, 401), origin)
    last = request.headers.get("Last-Event-ID") or request.GET.get("after", "")
    response = StreamingHttpResponse(visitor_stream(account, visitor, last), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    _cors(response, origin)
    return response


def file(request: HttpRequest, signed: str) -> FileResponse:
    """A file of the visitor's conversation, by a signed link that only the history hands out."""
    found = access_file(signed)
    if found is None:
        raise Http404
    account_id, visitor_id, attachment_id = found
    att = Attachment.objects.filter(
        pk=attachment_id,
        message__conversation__channel_account_id=account_id,
        message__conversation__thread_key=visitor_id,
    ).first()
    if att is None:
        raise Http404
    inline = att.is_image
    response = FileResponse(
        att.file.open("rb"),
        as_attachment=not inline,
        filename=att.filename,
        content_type=att.content_type if inline else "application/octet-stream",
    )
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _account_for_admin(request: HttpRequest, account_id: int) -> ChannelAccount:
    account = ChannelAccount.objects.filter(
        pk=account_id, kind="webchat", workspace_id=workspace_id_of(request.user)
    ).first()
    if account is None:
        raise Http404
    return account


@role_required("agent")
def try_page(request: HttpRequest, account_id: int) -> HttpResponse:
    """A stand-in for the customer's website with the widget on it (for trying and demos)."""
    account = ChannelAccount.objects.filter(
        pk=account_id, kind="webchat", workspace_id=workspace_id_of(request.user)
    ).select_related("brand").first()
    if account is None or not account.config.get("widget_key"):
        raise Http404
    return render(
        request,
        "webchat/try.html",
        {"account": account, "snippet": _snippet(request, account), "lang": "ja" if request.GET.get("lang") == "ja" else "en"},
    )


def _snippet(request: HttpRequest, account: ChannelAccount) -> str:
    script = request.build_absolute_uri(reverse("webchat:widget_js"))
    return f'<script src="{escape(script)}" data-key="{escape(account.config["widget_key"])}" async></script>'


@role_required("admin")
def settings_page(request: HttpRequest, account_id: int) -> HttpResponse:
    """The embed snippet, allowed origins, business hours and limits; regenerate the key."""
    account = _account_for_admin(request, account_id)
    actions.do_setup_widget(account)
    if request.method == "POST" and request.POST.get("action") == "regenerate":
        actions.do_regenerate_key(account)
        messages.success(request, _("A new widget key was made. Update the script tag on your website."))
        return redirect("webchat:settings", account.pk)
    if request.method == "POST":
        form = WidgetSettingsForm(request.POST)
        if form.is_valid():
            actions.do_update_widget_settings(account, **form.to_config())
            messages.success(request, _("Chat widget settings saved."))
            return redirect("webchat:settings", account.pk)
    else:
        form = WidgetSettingsForm(initial=WidgetSettingsForm.initial_from(account.config))
    snippet = _snippet(request, account)
    cfg = WidgetConfig.of(account)
    return render(
        request,
        "webchat/settings.html",
        {
            "account": account,
            "form": form,
            "snippet": snippet,
            "is_open": cfg.hours.is_open(),
            "back": back_text(cfg.hours),
        },
    )
