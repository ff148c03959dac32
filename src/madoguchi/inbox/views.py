"""Agent screens of the inbox. Views parse, authorise, call one action or query, render."""

from __future__ import annotations

import datetime as dt

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import close_old_connections
from django.db.models import Max
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from madoguchi.accounts.models import Brand, Team, User
from madoguchi.accounts.queries import check_role, role_required, workspace_id_of, workspace_users
from madoguchi.connectors.models import ChannelAccount, ChannelKind
from madoguchi.connectors.queries import check_reply_mode, composer_hints
from madoguchi.inbox import actions, queries
from madoguchi.inbox.events import page_cursor
from madoguchi.inbox.live import stream_response
from madoguchi.inbox.models import (
    Attachment,
    Conversation,
    Label,
    MessageEvent,
    Priority,
    Status,
)
from madoguchi.listening.queries import poster_of_contact

PRIORITY_KEYS = {str(v): v for v in Priority.values}


def _filter_from(request: HttpRequest) -> queries.InboxFilter:
    g = request.GET
    def _int(name: str) -> int | None:
        try:
            return int(g[name]) if g.get(name) else None
        except ValueError:
            return None
    return queries.InboxFilter(
        view=g.get("view", "todo"),
        channel=g.get("channel", "")[:16],
        brand=_int("brand"),
        label=g.get("label", "")[:64],
        language=g.get("language", "")[:16],
        priority=_int("priority"),
        q=g.get("q", "")[:200].strip(),
    )


def _list_query(request: HttpRequest) -> str:
    """The list's filters from this URL; a live refresh's ?partial= and the page cursor dropped."""
    params = request.GET.copy()
    for name in ("cursor", "partial"):
        params.pop(name, None)
    return params.urlencode()


def _list_path(request: HttpRequest) -> str:
    query = _list_query(request)
    return reverse("inbox:index") + (f"?{query}" if query else "")


def _list_context(request: HttpRequest, live_after: int | None = None) -> dict:
    """The list pane's context; `live_after`, the page's live cursor if the caller read it first."""
    user: User = request.user  # type: ignore[assignment]
    if live_after is None:
        live_after = page_cursor()  # before the rows: see events.page_cursor
    workspace_id = workspace_id_of(user)
    f = _filter_from(request)
    try:
        rows, next_cursor = queries.page(queries.conversations_for(user, f), request.GET.get("cursor", ""))
    except ValueError:
        rows, next_cursor = [], ""
    query = _list_query(request)
    return {
        "filter": f,
        "conversations": rows,
        "next_cursor": next_cursor,
        "query_string": query,
        "list_path": _list_path(request),
        # The page's SSE stream starts after this event, so nothing published while it loads is lost.
        "live_after": live_after,
        "views": queries.VIEWS,
        "counts": queries.counts_for(user),
        "channels": [
            (kind, ChannelKind(kind).label if kind in ChannelKind.values else kind)
            for kind in ChannelAccount.objects.filter(workspace_id=workspace_id)
            .values_list("kind", flat=True)
            .distinct()
            .order_by("kind")
        ],
        "labels": Label.objects.filter(workspace_id=workspace_id),
        "brands": Brand.objects.filter(workspace_id=workspace_id),
    }


@role_required("agent")
def index(request: HttpRequest) -> HttpResponse:
    ctx = _list_context(request)
    if request.GET.get("partial") == "list":
        return render(request, "inbox/_list.html", ctx)
    return render(request, "inbox/inbox.html", ctx)


@role_required("agent")
def conversation(request: HttpRequest, conversation_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    live_after = page_cursor()  # before the thread is read: see events.page_cursor
    conv = queries.access_conversation(user, conversation_id)
    workspace_id = workspace_id_of(user)
    actions.do_mark_seen(conv, user)
    history, more = queries.history(conv)
    ctx = {
        "conversation": conv,
        "history": history,
        "more": more,
        "agents": workspace_users(user),
        "teams": Team.objects.filter(workspace_id=workspace_id),
        "statuses": Status.choices,
        "priorities": Priority.choices,
        "poster": poster_of_contact(workspace_id, conv.contact_id),
        "other_conversations": list(
            Conversation.objects.filter(contact_id=conv.contact_id, workspace_id=workspace_id)
            .exclude(pk=conv.pk)
            .select_related("channel_account")
            .order_by("-last_message_at")[:20]
        ),
        "composer": composer_hints(conv),
        "label_names": ", ".join(label.name for label in conv.labels.all()),
        # The customer's read marks (chat widget, platforms that send them): replies up to this
        # message id show "Read". One query, whatever the length of the thread.
        "read_up_to": MessageEvent.objects.filter(message__conversation=conv, kind="read").aggregate(
            upto=Max("message_id")
        )["upto"]
        or 0,
        # Back to the list keeps the view and filters the agent came from.
        "list_path": _list_path(request),
    }
    if request.GET.get("partial") == "conversation":
        return render(request, "inbox/_conversation.html", ctx)
    ctx.update(_list_context(request, live_after))
    return render(request, "inbox/inbox.html", ctx)


@role_required("agent")
def older_messages(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conv = queries.access_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        return HttpResponseBadRequest(_("before must be a message id"))
    history, more = queries.history(conv, before=before)
    return render(request, "inbox/_messages.html", {"history": history, "more": more, "conversation": conv})


def _safe_next(request: HttpRequest) -> str:
    """The posted `next` path if it stays on this site, else "" (no open redirects)."""
    target = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and allowed else ""


def _back(request: HttpRequest, conv: Conversation) -> HttpResponse:
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"ok": True, "status": conv.status})
    return redirect(_safe_next(request) or reverse("inbox:conversation", args=[conv.pk]))


def _error(request: HttpRequest, conv: Conversation, message: str) -> HttpResponse:
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"ok": False, "error": message}, status=400)
    messages.error(request, message)
    return redirect(reverse("inbox:conversation", args=[conv.pk]))


@role_required("agent")
@require_POST
def reply(request: HttpRequest, conversation_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    conv = queries.access_conversation(user, conversation_id)
    uploads = request.FILES.getlist("attachments")[:10]
    # Refuse on the uploaded size before reading: a huge file must not be pulled into memory.
    too_big = next((f for f in uploads if (f.size or 0) > settings.ATTACHMENT_MAX_BYTES), None)
    if too_big is not None:
        return _error(
            request,
            conv,
            _("%(name)s is larger than the %(limit)s MB limit.")
            % {"name": too_big.name, "limit": settings.ATTACHMENT_MAX_BYTES // (1024 * 1024)},
        )
    files = [
        actions.NewAttachment(f.name or "file", f.content_type or "application/octet-stream", f.read())
        for f in uploads
    ]
    try:
        if request.POST.get("kind") == "note":
            actions.do_add_note(conv, author=user, text=request.POST.get("text", ""), attachments=files)
        else:
            try:
                public = check_reply_mode(conv, request.POST.get("reply_mode", ""))
            except ValueError as exc:
                return _error(request, conv, str(exc))
            actions.do_reply(conv, author=user, text=request.POST.get("text", ""), attachments=files, public=public)
            if request.POST.get("and_resolve"):
                actions.do_set_status(conv, Status.RESOLVED, actor=user)
    except actions.InboxError as exc:
        return _error(request, conv, str(exc))
    return _back(request, conv)


@role_required("agent")
@require_POST
def set_status(request: HttpRequest, conversation_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    conv = queries.access_conversation(user, conversation_id)
    until = None
    if request.POST.get("status") == Status.SNOOZED:
        until = _snooze_until(request.POST.get("until", ""))
    try:
        actions.do_set_status(conv, request.POST.get("status", ""), actor=user, snoozed_until=until)
    except actions.InboxError as exc:
        return _error(request, conv, str(exc))
    return _back(request, conv)


def _snooze_until(value: str) -> dt.datetime | None:
    now = timezone.now()
    presets = {"1h": dt.timedelta(hours=1), "4h": dt.timedelta(hours=4), "1d": dt.timedelta(days=1), "1w": dt.timedelta(weeks=1)}
    if value in presets:
        return now + presets[value]
    parsed = parse_datetime(value)
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


@role_required("agent")
@require_POST
def assign(request: HttpRequest, conversation_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    conv = queries.access_conversation(user, conversation_id)
    assignee_id, team_id = request.POST.get("assignee", ""), request.POST.get("team", "")
    assignee = User.objects.filter(pk=assignee_id, workspace_id=workspace_id_of(user)).first() if assignee_id.isdigit() else None
    team = Team.objects.filter(pk=team_id, workspace_id=workspace_id_of(user)).first() if team_id.isdigit() else None
    if (assignee_id.isdigit() and assignee is None) or (team_id.isdigit() and team is None):
        return _error(request, conv, _("That agent or team does not exist."))
    if not queries.may_assign(user, conv, assignee):
        raise PermissionDenied
    try:
        actions.do_assign(conv, assignee=assignee, team=team, actor=user)
    except actions.InboxError as exc:
        return _error(request, conv, str(exc))
    return _back(request, conv)


@role_required("agent")
@require_POST
def set_priority(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conv = queries.access_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    value = PRIORITY_KEYS.get(request.POST.get("priority", ""))
    if value is None:
        return _error(request, conv, _("Priority must be between 0 and 3."))
    actions.do_set_priority(conv, value)
    return _back(request, conv)


@role_required("agent")
@require_POST
def set_labels(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conv = queries.access_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    actions.do_set_labels(conv, request.POST.get("labels", "").split(",")[:20])
    return _back(request, conv)


@role_required("agent")
@require_POST
def presence(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conv = queries.access_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    try:
        actions.do_publish_presence(conv, request.user, request.POST.get("state", "viewing"))  # type: ignore[arg-type]
    except actions.InboxError as exc:
        return JsonResponse({"ok": False, "error": str(exc)}, status=400)
    return JsonResponse({"ok": True})


@role_required("agent")
@require_POST
def retry(request: HttpRequest, message_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    message = queries.access_message(user, message_id)
    try:
        actions.do_retry_delivery(message, actor=user)
    except actions.InboxError as exc:
        return _error(request, message.conversation, str(exc))
    return _back(request, message.conversation)


@role_required("agent")
@require_POST
def move_message(request: HttpRequest, message_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    message = queries.access_message(user, message_id)
    target_id = request.POST.get("target", "")
    if not target_id.isdigit():
        return _error(request, message.conversation, _("Choose a conversation."))
    target = queries.access_conversation(user, int(target_id))
    try:
        actions.do_move_message(message, target, actor=user)
    except actions.InboxError as exc:
        return _error(request, message.conversation, str(exc))
    return redirect("inbox:conversation", target.pk)


@role_required("agent")
@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()][:500]
    action = request.POST.get("action", "")
    convs = list(Conversation.objects.filter(workspace_id=workspace_id_of(user), pk__in=ids))
    if action == "assign_me":
        # Taking a colleague's conversation is a reassignment: managers only (skipped otherwise).
        convs = [c for c in convs if queries.may_assign(user, c, user)]
        for conv in convs:
            actions.do_assign(conv, assignee=user, team=conv.team, actor=user)
    elif action in (Status.RESOLVED, Status.OPEN, Status.PENDING):
        for conv in convs:
            actions.do_set_status(conv, action, actor=user)
    elif action.startswith("priority:") and action[9:] in PRIORITY_KEYS:
        for conv in convs:
            actions.do_set_priority(conv, PRIORITY_KEYS[action[9:]])
    else:
        return HttpResponseBadRequest(_("Unknown bulk action."))
    messages.success(
        request,
        ngettext("%(count)s conversation updated.", "%(count)s conversations updated.", len(convs))
        % {"count": len(convs)},
    )
    return redirect(_safe_next(request) or reverse("inbox:index"))


@login_required
def attachment(request: HttpRequest, attachment_id: int) -> HttpResponse | FileResponse:
    user: User = request.user  # type: ignore[assignment]
    check_role(user, "agent")
    att = Attachment.objects.filter(pk=attachment_id, workspace_id=workspace_id_of(user)).first()
    if att is None:
        raise Http404
    inline = att.is_image and request.GET.get("download") is None
    response = FileResponse(att.file.open("rb"), as_attachment=not inline, filename=att.filename, content_type=att.content_type if inline else "application/octet-stream")
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


async def events(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """Server-sent events of the user's workspace (new messages, status changes, presence)."""
    user = await request.auser()
    # The session and user lookups opened a database connection in this request's thread; the
    # stream may last hours and reads through the shared hub, so give the connection back now
    # (on PostgreSQL each open agent page would otherwise hold one).
    await sync_to_async(close_old_connections)()
    if not user.is_authenticated or user.workspace_id is None:
        return HttpResponse(status=401)
    # EventSource sends Last-Event-ID when it reconnects; the first connection names the
    # last event the page was rendered with (?after=), so events during page load are not lost.
    last_event_id = request.headers.get("Last-Event-ID") or request.GET.get("after", "")
    return stream_response(user.workspace_id, user.pk, last_event_id)
