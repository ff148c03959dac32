"""The listening team's screens: the stream of captured posts, and the rules. Views parse, authorise, call, render."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from madoguchi.accounts.models import User
from madoguchi.accounts.queries import role_required, workspace_id_of, workspace_of
from madoguchi.listening import actions, queries

PAGE_SIZE = 50


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    ok = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return redirect(target if target and ok else reverse("listening:stream"))


@role_required("agent")
def stream(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    view = request.GET.get("view", "todo")
    view = view if view in queries.VIEWS else "todo"
    sort = request.GET.get("sort", "priority")
    sort = sort if sort in queries.SORTS else "priority"
    kind = request.GET.get("kind", "")
    page = Paginator(queries.stream_for(user, view=view, sort=sort, kind=kind), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "listening/stream.html",
        {
            "page": page,
            "view": view,
            "sort": sort,
            "kind": kind,
            "views": queries.VIEWS,
            "sorts": queries.SORTS,
            "kinds": queries.KIND_NAMES,
            "urgency_names": queries.URGENCY_NAMES,
            "handled": queries.handled(user),
            "here": request.get_full_path(),
        },
    )


@role_required("agent")
def post(request: HttpRequest, post_id: int) -> HttpResponse:
    """One post with its author beside it: earlier posts, conversations, reach and habits. Opening it marks it seen."""
    user: User = request.user  # type: ignore[assignment]
    item = queries.access_post(user, post_id)
    actions.do_mark_post_seen(item, user)
    return render(request, "listening/post.html", {"post": item, "author": queries.author_of(user, item)})


@require_POST
@role_required("agent")
def respond(request: HttpRequest, post_id: int) -> HttpResponse:
    post = queries.access_post(request.user, post_id)  # type: ignore[arg-type]
    conversation = actions.do_respond_to_post(post, request.user)  # type: ignore[arg-type]
    return redirect(reverse("inbox:conversation", args=[conversation.pk]))


@require_POST
@role_required("agent")
def dismiss(request: HttpRequest, post_id: int) -> HttpResponse:
    post = queries.access_post(request.user, post_id)  # type: ignore[arg-type]
    actions.do_dismiss_post(post, request.user)  # type: ignore[arg-type]
    return _back(request)


@require_POST
@role_required("agent")
def seen(request: HttpRequest, post_id: int) -> HttpResponse:
    post = queries.access_post(request.user, post_id)  # type: ignore[arg-type]
    actions.do_mark_post_seen(post, request.user)  # type: ignore[arg-type]
    return _back(request)


@require_POST
@role_required("agent")
def bulk_dismiss(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    ids = [int(v) for v in request.POST.getlist("post") if v.isdigit()][:500]
    n = actions.do_dismiss_posts(workspace_id_of(user), ids, user)
    messages.success(request, _("%(n)s posts dismissed") % {"n": n})
    return _back(request)


@role_required("manager")
def rules(request: HttpRequest) -> HttpResponse:
    """Rules as YAML: managers edit, preview against the last day's posts, and save."""
    user: User = request.user  # type: ignore[assignment]
    text = queries.export_rules(user.workspace)
    preview = None
    if request.method == "POST":
        text = request.POST.get("yaml", "")[:500_000]
        try:
            if request.POST.get("do") == "preview":
                preview = [
                    (data["name"], *queries.preview(user, data)) for data in actions.parse_rules(text)
                ]
            else:
                saved = actions.do_import_rules(workspace_of(user), text, replace=True)
                messages.success(request, _("%(n)s rules saved") % {"n": len(saved)})
                return redirect(reverse("listening:rules"))
        except actions.RuleError as exc:
            messages.error(request, str(exc))
    return render(request, "listening/rules.html", {"yaml": text, "preview": preview, "rules": queries.rules_for(user)})
