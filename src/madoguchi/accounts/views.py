"""Personal settings: UI language and API tokens."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from madoguchi.accounts import actions
from madoguchi.accounts.models import ApiToken, User


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    new_token = None
    if request.method == "POST":
        if request.POST.get("form") == "language":
            actions.do_set_language(request.user, request.POST.get("language", ""))  # type: ignore[arg-type]
            messages.success(request, _("Language saved."))
            return redirect("settings")
        if request.POST.get("form") == "token":
            name = request.POST.get("name", "").strip()[:120]
            _token, new_token = actions.do_create_token(request.user, name)  # type: ignore[arg-type]
    user: User = request.user  # type: ignore[assignment]  # @login_required: never anonymous
    tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at")
    return render(request, "accounts/settings.html", {"tokens": tokens, "new_token": new_token})


@login_required
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    actions.do_revoke_token(token)
    messages.success(request, _("Token revoked."))
    return redirect("settings")
