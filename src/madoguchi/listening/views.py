"""The listening team's screens: the stream of captured posts, and the rules. Views parse, authorise, call, render."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from madoguchi.accounts.models import User
from madoguchi.accounts.queries import role_required, workspace_id_of, workspace_of
from madoguchi.connectors.models import ChannelKind
from madoguchi.inbox.events import page_cursor
from madoguchi.ingest.models import Post
from madoguchi.listening import actions, queries
from madoguchi.listening.forms import RuleForm

PAGE_SIZE = 50


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    ok = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return redirect(target if target and ok else reverse("listening:stream"))


@role_required("agent")
def stream(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    live_after = page_cursor()  # before the posts are read: see inbox.events.page_cursor
    undo = request.session.pop(UNDO_KEY, [])  # posts the agent just dismissed in bulk, shown once
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
            "has_rules": queries.rules_for(user).exists(),
            "live_after": live_after,
            "undo": undo,
        },
    )


@role_required("agent")
def post(request: HttpRequest, post_id: int) -> HttpResponse:
    """One post with its author beside it: earlier posts, conversations, reach and habits. Opening it marks it seen."""
    user: User = request.user  # type: ignore[assignment]
    item = queries.access_post(user, post_id)
    actions.do_mark_post_seen(item, user)
    return render(
        request,
        "listening/post.html",
        {
            "post": item,
            "author": queries.author_of(user, item),
            "kind_label": queries.KIND_NAMES.get(item.kind, item.kind or "-"),
            "urgency_label": queries.URGENCY_NAMES.get(item.urgency, item.urgency),
        },
    )


@require_POST
@role_required("agent")
def respond(request: HttpRequest, post_id: int) -> HttpResponse:
    post = queries.access_post(request.user, post_id)  # type: ignore[arg-type]
    conversation = actions.do_respond_to_post(post, request.user)  # type: ignore[arg-type]
    return redirect(reverse("inbox:conversation", args=[conversation.pk]))


def _done(request: HttpRequest, post: Post) -> HttpResponse:
    """Back to the stream, or (keys on the stream page) the post's new state as JSON."""
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"id": post.pk, "status": post.status, "status_label": str(post.get_status_display())})
    return _back(request)


@require_POST
@role_required("agent")
def dismiss(request: HttpRequest, post_id: int) -> HttpResponse:
    post = queries.access_post(request.user, post_id)  # type: ignore[arg-type]
    return _done(request, actions.do_dismiss_post(post, request.user))  # type: ignore[arg-type]


@require_POST
@role_required("agent")
def seen(request: HttpRequest, post_id: int) -> HttpResponse:
    post = queries.access_post(request.user, post_id)  # type: ignore[arg-type]
    return _done(request, actions.do_mark_post_seen(post, request.user))  # type: ignore[arg-type]


# The session key of the posts dismissed by the last bulk dismissal: the stream offers to undo it.
UNDO_KEY = "listening_undo"


def _post_ids(request: HttpRequest) -> list[int]:
    return [int(v) for v in request.POST.getlist("post") if v.isdigit()][:500]


@require_POST
@role_required("agent")
def bulk_dismiss(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    request.session[UNDO_KEY] = actions.do_dismiss_posts(workspace_id_of(user), _post_ids(request), user)
    return _back(request)


@require_POST
@role_required("agent")
def restore(request: HttpRequest) -> HttpResponse:
    """Undo: dismissed posts (one from the keyboard, or a bulk dismissal) go back on the stream."""
    user: User = request.user  # type: ignore[assignment]
    n = actions.do_restore_posts(workspace_id_of(user), _post_ids(request), user)
    request.session.pop(UNDO_KEY, None)
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"restored": n, "status": Post.Status.SEEN, "status_label": str(Post.Status.SEEN.label)})
    messages.success(
        request, ngettext("%(n)s post is back on the stream", "%(n)s posts are back on the stream", n) % {"n": n}
    )
    return _back(request)


def _is_manager(user: User) -> bool:
    return user.role in ("manager", "admin")


@role_required("agent")
def rules(request: HttpRequest) -> HttpResponse:
    """The rules: everyone reads them; managers also edit them as YAML (import/export) here."""
    user: User = request.user  # type: ignore[assignment]
    manager = _is_manager(user)
    text = queries.export_rules(user.workspace) if manager else ""
    preview = None
    if request.method == "POST":
        if not manager:
            raise PermissionDenied
        text = request.POST.get("yaml", "")[:500_000]
        try:
            if request.POST.get("do") == "preview":
                preview = [(data["name"], queries.preview(user, data)) for data in actions.parse_rules(text)]
            else:
                saved = actions.do_import_rules(workspace_of(user), text, replace=True, actor=user)
                messages.success(request, _("%(n)s rules saved") % {"n": len(saved)})
                return redirect(reverse("listening:rules"))
        except actions.RuleError as exc:
            messages.error(request, str(exc))
    return render(
        request,
        "listening/rules.html",
        {
            "yaml": text,
            "preview": preview,
            "rules": queries.rules_for(user),
            "manager": manager,
            "changes": queries.rule_changes(user) if manager else [],
            "channel_names": dict(ChannelKind.choices),
        },
    )


@role_required("manager")
def rule_edit(request: HttpRequest, rule_id: int | None = None) -> HttpResponse:
    """Create or change one rule, with a live preview against the last day's posts (see rule_preview)."""
    user: User = request.user  # type: ignore[assignment]
    rule = queries.access_rule(user, rule_id) if rule_id is not None else None
    ws = workspace_id_of(user)
    if request.method == "POST":
        form = RuleForm(request.POST, workspace_id=ws)
        if form.is_valid():
            try:
                saved = actions.do_save_rule(
                    workspace_of(user), form.cleaned_data["brand"], form.rule_data(), rule, actor=user, create_only=rule is None
                )
            except actions.RuleError as exc:
                form.add_error("name", str(exc))
            else:
                messages.success(request, _("Rule %(name)s saved") % {"name": saved.name})
                return redirect(reverse("listening:rules"))
    else:
        form = RuleForm(initial=RuleForm.initial_for(rule) if rule else {"is_active": True}, workspace_id=ws)
    return render(request, "listening/rule_form.html", {"form": form, "rule": rule, "preview_hours": 24})


@require_POST
@role_required("manager")
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    rule = queries.access_rule(user, rule_id)
    actions.do_delete_rule(rule, actor=user)
    messages.success(request, _("Rule %(name)s deleted") % {"name": rule.name})
    return redirect(reverse("listening:rules"))


@require_POST
@role_required("manager")
def rule_preview(request: HttpRequest) -> JsonResponse:
    """The editor's live preview: the form as typed so far, checked, and run over recent posts.

    A missing name is no reason not to preview; other errors come back per field, for the editor
    to show inline.
    """
    user: User = request.user  # type: ignore[assignment]
    data = request.POST.copy()
    if not data.get("name", "").strip():
        data["name"] = "preview"
    form = RuleForm(data, workspace_id=workspace_id_of(user))
    if not form.is_valid():
        errors = {field: [str(e) for e in errs] for field, errs in form.errors.items() if field != "brand"}
        if errors:
            return JsonResponse({"ok": False, "errors": errors})
    result = queries.preview(user, form.rule_data())
    return JsonResponse(
        {
            "ok": True,
            "count": result.count,
            "scanned": result.scanned,
            "truncated": result.truncated,
            "summary": ngettext(
                "This rule would have matched %(count)s post in the last %(hours)s hours",
                "This rule would have matched %(count)s posts in the last %(hours)s hours",
                result.count,
            ) % {"count": result.count, "hours": result.hours},
            "scanned_note": _("%(scanned)s captured posts scanned") % {"scanned": result.scanned},
            "sample": result.sample,
        }
    )
