"""The channel alert banner on every page: a channel that needs a person is never silent."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from madoguchi.connectors import health


def channel_alerts(request: HttpRequest) -> dict[str, Any]:
    """`channel_alerts`: the workspace's accounts that need attention (evaluated only if shown)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.workspace_id is None:
        return {}
    workspace_id = user.workspace_id
    return {"channel_alerts": SimpleLazyObject(lambda: [h for h in health.workspace_health(workspace_id) if h.alert])}
