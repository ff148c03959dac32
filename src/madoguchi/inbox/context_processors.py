"""The stalled-outbox banner on every page: replies that no worker sends are never silent."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from madoguchi.inbox import queries


def outbox_alert(request: HttpRequest) -> dict[str, Any]:
    """`outbox_stalled`: how many replies wait for a worker, and since when (evaluated only if shown)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.workspace_id is None:
        return {}
    workspace_id = user.workspace_id
    return {"outbox_stalled": SimpleLazyObject(lambda: queries.stalled_outbox(workspace_id))}
