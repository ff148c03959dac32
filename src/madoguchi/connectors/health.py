"""Channel health: what connectors record after talking to their platform, and the state it shows.

An account is *connected* while calls succeed, *degraded* when its last call failed for a reason
that may pass (rate limit, timeout, 5xx), and *disconnected* when the platform refused its
credentials (expired or revoked token): that needs a person, so it stays until a call succeeds.
The disconnected mark lives in `config["health"]` so no migration is needed for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from django.db import transaction
from django.utils import timezone

from madoguchi.connectors.models import ChannelAccount

State = Literal["connected", "degraded", "disconnected"]


def update_config(account: ChannelAccount, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Change an account's config under a row lock, so a poll cursor and a health mark never
    overwrite each other; `account.config` is refreshed with the stored value."""
    with transaction.atomic():
        row = ChannelAccount.objects.select_for_update().only("id", "config").get(pk=account.pk)
        config = dict(row.config or {})
        change(config)
        ChannelAccount.objects.filter(pk=account.pk).update(config=config)
    account.config = config
    return config


def do_record_channel_error(account: ChannelAccount, reason: str, *, disconnected: bool = False) -> None:
    """A call to the platform failed: keep the reason; a refused credential disconnects the account."""
    now = timezone.now()
    ChannelAccount.objects.filter(pk=account.pk).update(last_error=reason[:2000], last_error_at=now)
    account.last_error, account.last_error_at = reason[:2000], now
    if disconnected:

        def mark(config: dict[str, Any]) -> None:
            config["health"] = {"state": "disconnected", "reason": reason[:500], "since": now.isoformat()}

        update_config(account, mark)


def do_record_channel_ok(
    account: ChannelAccount, *, received: bool = False, sent: bool = False, reconnect: bool = True
) -> None:
    """A call to the platform succeeded: the account works again. A signed webhook proves only the
    webhook secret, not the API token, so receivers pass `reconnect=False`."""
    now = timezone.now()
    fields: dict[str, Any] = {}
    if received:
        fields["last_receive_at"] = now
    if sent:
        fields["last_send_at"] = now
    if fields:
        ChannelAccount.objects.filter(pk=account.pk).update(**fields)
        for name, value in fields.items():
            setattr(account, name, value)
    if reconnect and (account.config or {}).get("health"):
        update_config(account, lambda config: config.pop("health", None))


def channel_state(account: ChannelAccount) -> State:
    """connected, degraded (the latest call failed) or disconnected (credentials refused)."""
    if (account.config or {}).get("health", {}).get("state") == "disconnected":
        return "disconnected"
    if account.last_error_at is None:
        return "connected"
    last_ok = max((t for t in (account.last_receive_at, account.last_send_at) if t is not None), default=None)
    return "degraded" if last_ok is None or account.last_error_at > last_ok else "connected"
