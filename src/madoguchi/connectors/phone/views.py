"""The telephony providers' call-event endpoint, and the agents' "log a call" form target.

POST /connectors/phone/<account id>/events/      signed JSON call events (see inbound.py)
POST /connectors/phone/contacts/<contact id>/log/  from the contact page
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from madoguchi.accounts.queries import role_required, workspace_id_of
from madoguchi.connectors.models import ChannelAccount, ChannelKind
from madoguchi.connectors.phone import inbound
from madoguchi.contacts.queries import access_contact


@csrf_exempt
@require_POST
def call_events(request: HttpRequest, account_id: int) -> JsonResponse:
    """401 without a signature, 403 with a wrong or stale one, 400 for a body that is not a call
    event (with the reason), 413 over 1 MB; 202 once the call is stored (or was already)."""
    account = ChannelAccount.objects.filter(
        pk=account_id, kind=ChannelKind.PHONE, is_active=True
    ).first()
    if account is None:
        return JsonResponse({"error": "no such phone line"}, status=404)
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return JsonResponse({"error": "bad Content-Length"}, status=400)
    if declared > inbound.MAX_BODY_BYTES:
        return JsonResponse({"error": "body larger than 1 MB"}, status=413)
    try:
        body = request.body
    except RequestDataTooBig:
        return JsonResponse({"error": "body larger than 1 MB"}, status=413)
    if len(body) > inbound.MAX_BODY_BYTES:
        return JsonResponse({"error": "body larger than 1 MB"}, status=413)
    try:
        inbound.verify(
            str(account.secrets.get("webhook_secret") or ""),
            body,
            request.headers.get(inbound.SIGNATURE_HEADER, ""),
        )
    except inbound.SignatureError as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    try:
        event = inbound.parse_event(body)
        message = inbound.receive_event(account, event)
    except inbound.PhoneError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(
        {"result": "stored", "conversation": message.conversation_id, "message": message.pk},
        status=202,
    )


class LogCallForm(forms.Form):
    """What an agent writes down about a call."""

    direction = forms.ChoiceField(
        choices=[("in", gettext_lazy("Incoming")), ("out", gettext_lazy("Outgoing"))]
    )
    number = forms.CharField(max_length=64)
    minutes = forms.IntegerField(min_value=0, max_value=24 * 60, required=False)
    seconds = forms.IntegerField(min_value=0, max_value=59, required=False)
    summary = forms.CharField(max_length=10_000, required=False, widget=forms.Textarea)
    account = forms.IntegerField(required=False)

    def clean_number(self) -> str:
        try:
            return inbound.normalize_number(self.cleaned_data["number"])
        except inbound.PhoneError as exc:
            raise forms.ValidationError(str(exc)) from None


def _errors(form: forms.Form) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


@role_required("agent")
@require_POST
def log_call(request: HttpRequest, contact_id: int) -> HttpResponse:
    """Log a call on a contact, then show the conversation it went into."""
    contact = access_contact(request.user, contact_id)  # type: ignore[arg-type]
    back = reverse("contacts:detail", args=[contact.pk])
    form = LogCallForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, _("The call was not logged: %(errors)s") % {"errors": _errors(form)}
        )
        return redirect(back)
    lines = ChannelAccount.objects.filter(
        workspace_id=workspace_id_of(request.user), kind=ChannelKind.PHONE, is_active=True
    ).order_by("pk")
    if form.cleaned_data["account"]:
        lines = lines.filter(pk=form.cleaned_data["account"])
    account = lines.first()
    if account is None:
        messages.error(request, _("No phone line is set up: an admin adds one under Channels."))
        return redirect(back)
    duration = (form.cleaned_data["minutes"] or 0) * 60 + (form.cleaned_data["seconds"] or 0)
    try:
        message = inbound.log_call(
            account,
            contact,
            agent=request.user,  # type: ignore[arg-type]
            direction=form.cleaned_data["direction"],
            number=form.cleaned_data["number"],
            duration_seconds=duration,
            summary=form.cleaned_data["summary"],
        )
    except inbound.PhoneError as exc:
        messages.error(request, _("The call was not logged: %(errors)s") % {"errors": str(exc)})
        return redirect(back)
    messages.success(request, _("Call logged."))
    return redirect(reverse("inbox:conversation", args=[message.conversation_id]))
