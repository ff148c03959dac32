"""The hosted contact form of a brand, its embeddable variant, and the admins' snippet page.

    /connectors/webform/<brand id>/           the form on the help site's look (ja/en: ?lang=)
    /connectors/webform/<brand id>/embed/     the same form for an <iframe> on the brand's site
    /connectors/webform/<account id>/settings/  admins: the form's address and the embed snippet

The public pages are CSRF-exempt on purpose: the visitor is anonymous (there is no session to
ride on), and inside an iframe on another site the browser withholds our SameSite cookies, so a
CSRF check would refuse every embedded submission. The signed token in each rendered form
(inbound.spam_reason) is what ties a submission to a page we served.
"""

from __future__ import annotations

import html
import time
from functools import cache
from pathlib import Path
from typing import Any

from django.core.cache import cache as django_cache
from django.core.files.uploadedfile import UploadedFile
from django.http import Http404, HttpRequest, HttpResponse
from django.template import engines
from django.template.backends.django import Template
from django.urls import reverse
from django.utils import translation
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from madoguchi.accounts.queries import role_required, workspace_id_of
from madoguchi.connectors.base import InboundAttachment
from madoguchi.connectors.models import ChannelAccount, ChannelKind
from madoguchi.connectors.webform import inbound, queries
from madoguchi.connectors.webform.forms import HONEYPOT, TOKEN, ContactForm, categories

_TEMPLATES = Path(__file__).parent / "templates"
LANGS = ("ja", "en")
DEFAULT_PER_IP_PER_HOUR = 30


def within_rate(account: ChannelAccount, request: HttpRequest) -> bool:
    """Count a submission from this address in this hour; False over `config["max_per_ip_per_hour"]`.

    A person sends a handful of forms a day; a flood from one address is refused with 429 before
    anything is parsed or stored.
    """
    limit = int(account.config.get("max_per_ip_per_hour", DEFAULT_PER_IP_PER_HOUR))
    if limit <= 0:
        return True
    key = f"webform:rate:{account.pk}:{request.META.get('REMOTE_ADDR', '')}:{int(time.time() // 3600)}"
    django_cache.add(key, 0, timeout=2 * 3600)
    try:
        count = django_cache.incr(key)
    except ValueError:  # evicted between add and incr
        django_cache.set(key, 1, timeout=2 * 3600)
        count = 1
    return count <= limit


@cache
def template(name: str) -> Template:
    """A template of this folder (connectors are folders, not apps: no app template dir)."""
    return engines["django"].from_string((_TEMPLATES / name).read_text(encoding="utf-8"))  # type: ignore[return-value]


def render_here(
    request: HttpRequest, name: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    context = {**context, "fields_template": template("_fields.html")}
    return HttpResponse(template(name).render(context, request), status=status)


def _language(request: HttpRequest) -> str:
    asked = request.POST.get("lang") or request.GET.get("lang") or ""
    if asked in LANGS:
        return asked
    current = (translation.get_language() or "en").split("-")[0]
    return current if current in LANGS else "en"


def _attachments(files: list[UploadedFile]) -> list[InboundAttachment]:
    return [
        InboundAttachment(
            filename=(f.name or "attachment")[:255],
            content_type=(f.content_type or "application/octet-stream")[:255],
            content=f.read(),
        )
        for f in files
    ]


def _typed(form: ContactForm) -> dict[str, object]:
    """What the visitor typed, for the quarantine record (file names and sizes only)."""
    data: dict[str, object] = {
        key: form.data.get(key, "")
        for key in ("name", "email", "category", "subject", "message", HONEYPOT, "lang")
    }
    data["attachments"] = [
        {"filename": f.name, "size": f.size} for f in form.files.getlist("attachments")
    ]
    return data


def _form_page(request: HttpRequest, brand_id: int, *, embed: bool) -> HttpResponse:
    account = queries.form_account(brand_id)
    if account is None:
        raise Http404
    lang = _language(request)
    page = "embed.html" if embed else "form.html"
    with translation.override(lang):
        context: dict[str, Any] = {
            "brand": account.brand,
            "account": account,
            "lang": lang,
            "embed": embed,
            "action": request.path,
            "other_lang": "en" if lang == "ja" else "ja",
        }
        if request.method != "POST":
            form = ContactForm(account, lang)
            return render_here(
                request, page, {**context, "form": form, "token": inbound.new_token(account)}
            )
        if not within_rate(account, request):
            return render_here(request, page, {**context, "limited": True}, status=429)
        form = ContactForm(account, lang, request.POST, request.FILES)
        if not form.is_valid():
            if form.header_injection():
                inbound.quarantine(
                    account,
                    "web form: line breaks in a one-line field (mail header injection attempt)",
                    _typed(form),
                )
            # Keep the page's token: the time spent correcting counts as time spent filling in.
            token = request.POST.get(TOKEN) or inbound.new_token(account)
            return render_here(request, page, {**context, "form": form, "token": token}, status=400)
        reason, nonce = inbound.spam_reason(
            account, form.cleaned_data.get(HONEYPOT, ""), form.cleaned_data.get(TOKEN, "")
        )
        if reason:
            inbound.quarantine(account, f"web form {reason}", _typed(form))
            # The same page a person sees: a robot learns nothing about what gave it away.
            return render_here(request, page, {**context, "sent": True})
        category = form.cleaned_data.get("category") or ""
        outcome = inbound.receive(
            account,
            inbound.Submission(
                name=form.cleaned_data["name"],
                email=form.cleaned_data["email"],
                subject=form.cleaned_data["subject"],
                message=form.cleaned_data["message"],
                language=lang,
                category=category,
                attachments=_attachments(form.cleaned_data.get("attachments") or []),
                nonce=nonce,
                page=("embed " if embed else "hosted ") + request.headers.get("Referer", "")[:400],
            ),
        )
        return render_here(
            request, page, {**context, "sent": True, "reference": outcome.conversation_id}
        )


@csrf_exempt
def contact_form(request: HttpRequest, brand_id: int) -> HttpResponse:
    """The hosted form: GET shows it, POST submits it."""
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    return _form_page(request, brand_id, embed=False)


@csrf_exempt
@xframe_options_exempt
def embed_form(request: HttpRequest, brand_id: int) -> HttpResponse:
    """The form without the help site around it, for an iframe on the brand's own pages.

    `config["embed_origins"]` (e.g. ["https://www.acme.example"]) limits which sites may frame it.
    """
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    response = _form_page(request, brand_id, embed=True)
    account = queries.form_account(brand_id)
    origins = (
        [o for o in (account.config.get("embed_origins") or []) if isinstance(o, str)]
        if account
        else []
    )
    if origins:
        safe = [
            o
            for o in origins
            if o.startswith(("https://", "http://")) and not any(c in o for c in " ;,\r\n")
        ]
        response["Content-Security-Policy"] = "frame-ancestors 'self' " + " ".join(safe)
    return response


def embed_snippet(request: HttpRequest, account: ChannelAccount, lang: str) -> str:
    """The one line a brand pastes into its site."""
    url = (
        request.build_absolute_uri(reverse("webform:embed", args=[account.brand_id]))
        + f"?lang={lang}"
    )
    title = html.escape(translation.gettext("Contact form"))
    return (
        f'<iframe src="{html.escape(url)}" title="{title}" loading="lazy" '
        'style="width:100%;min-height:920px;border:0"></iframe>'
    )


@role_required("admin")
def form_settings(request: HttpRequest, account_id: int) -> HttpResponse:
    """Admins: where the form lives, the snippet to embed it, and its categories."""
    account = (
        ChannelAccount.objects.select_related("brand")
        .filter(pk=account_id, kind=ChannelKind.WEBFORM, workspace_id=workspace_id_of(request.user))
        .first()
    )
    if account is None:
        raise Http404
    lang = _language(request)
    return render_here(
        request,
        "settings.html",
        {
            "account": account,
            "hosted_url": request.build_absolute_uri(
                reverse("webform:form", args=[account.brand_id])
            ),
            "snippets": [(code, embed_snippet(request, account, code)) for code in LANGS],
            "categories": categories(account, lang),
            "is_default": queries.form_account(account.brand_id) == account,
        },
    )
