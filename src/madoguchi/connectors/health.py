"""Channel health: what connectors record after talking to their platform, and the state it shows.

An account is *connected* while calls succeed, *degraded* when its last call failed for a reason
that may pass (rate limit, timeout, 5xx), and *disconnected* when the platform refused its
credentials (expired or revoked token): that needs a person, so it stays until a call succeeds.
The disconnected mark lives in `config["health"]` so no migration is needed for it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from django.db import transaction
from django.utils import timezone

from madoguchi.connectors.models import ChannelAccount

logger = logging.getLogger(__name__)

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
    starts_failing = channel_state(account) == "connected"
    ChannelAccount.objects.filter(pk=account.pk).update(last_error=reason[:2000], last_error_at=now)
    account.last_error, account.last_error_at = reason[:2000], now
    if disconnected or starts_failing:

        def mark(config: dict[str, Any]) -> None:
            if starts_failing:
                config["failing_since"] = now.isoformat()
            if disconnected:
                config["health"] = {"state": "disconnected", "reason": reason[:500], "since": now.isoformat()}

        update_config(account, mark)


def do_record_channel_ok(
    account: ChannelAccount,
    *,
    received: bool = False,
    sent: bool = False,
    checked: bool = False,
    reconnect: bool = True,
) -> None:
    """A call to the platform succeeded: the account works again. A signed webhook proves only the
    webhook secret, not the API token, so receivers pass `reconnect=False`. `checked`: a credential
    check (a token probe, a session refresh) succeeded without receiving or sending anything; its
    time (`config["checked_ok_at"]`) counts as a success for the state like a receive or a send."""
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
    clear = reconnect and bool((account.config or {}).get("health"))
    if checked or clear:

        def mark(config: dict[str, Any]) -> None:
            if checked:
                config["checked_ok_at"] = now.isoformat()
            if reconnect:
                config.pop("health", None)

        update_config(account, mark)


def channel_state(account: ChannelAccount) -> State:
    """connected, degraded (the latest call failed) or disconnected (credentials refused)."""
    if (account.config or {}).get("health", {}).get("state") == "disconnected":
        return "disconnected"
    if account.last_error_at is None:
        return "connected"
    last_ok = _last_ok(account)
    return "degraded" if last_ok is None or account.last_error_at > last_ok else "connected"


# A failure that keeps going this long (no success since) is worth a person's attention.
DEGRADED_ALERT_AFTER = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class Health:
    """What the channels page and the alert banner show for one account."""

    account: ChannelAccount
    state: State
    reason: str
    since: dt.datetime | None
    alert: bool  # needs a person: disconnected, or failing for DEGRADED_ALERT_AFTER

    @property
    def last_ok(self) -> dt.datetime | None:
        return _last_ok(self.account)


def _last_ok(account: ChannelAccount) -> dt.datetime | None:
    """The latest success: a receive, a send, or a credential check (config["checked_ok_at"])."""
    checked = _parse_time((account.config or {}).get("checked_ok_at"))
    times = (account.last_receive_at, account.last_send_at, checked)
    return max((t for t in times if t is not None), default=None)


def health_of(account: ChannelAccount, now: dt.datetime | None = None) -> Health:
    """The account's state, why, since when, and whether it needs a person now."""
    now = now or timezone.now()
    state = channel_state(account)
    if state == "disconnected":
        mark = (account.config or {}).get("health", {})
        since = _parse_time(mark.get("since")) or account.last_error_at
        return Health(account, state, mark.get("reason") or account.last_error, since, True)
    if state == "degraded":
        since = _parse_time((account.config or {}).get("failing_since")) or account.last_error_at
        failing_for = now - (since or now)
        return Health(account, state, account.last_error, since, failing_for >= DEGRADED_ALERT_AFTER)
    return Health(account, state, "", _last_ok(account), False)


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def workspace_health(workspace_id: int) -> list[Health]:
    """Every active account of a workspace with its health, brand then name (one query)."""
    accounts = ChannelAccount.objects.filter(workspace_id=workspace_id, is_active=True).select_related("brand")
    now = timezone.now()
    return [health_of(account, now) for account in accounts]


def do_send_health_alerts() -> int:
    """Email each workspace's admins once per incident when an account needs a person, and once
    when it recovers. The incident mark lives in `config["health_alert"]`. Returns emails sent."""
    sent = 0
    now = timezone.now()
    for account in ChannelAccount.objects.filter(is_active=True).select_related("brand", "workspace"):
        if (account.config or {}).get("simulated"):
            continue
        health = health_of(account, now)
        marked = bool((account.config or {}).get("health_alert"))
        # Raise when it needs a person; clear only once it is connected again (not merely quiet).
        if health.alert == marked or (marked and health.state != "connected"):
            continue
        if not _claim_alert(account, raise_it=health.alert, state=health.state, now=now):
            continue  # another worker's clock got there first
        try:
            sent += _email_admins(health, recovered=not health.alert)
        except Exception:
            logger.exception("could not email the health alert for account %s", account.pk)
            _claim_alert(account, raise_it=not health.alert, state=health.state, now=now)  # try again
    return sent


def _claim_alert(account: ChannelAccount, *, raise_it: bool, state: str, now: dt.datetime) -> bool:
    """Set or clear the incident mark under the row lock; False if it already was that way."""
    changed: list[bool] = []

    def change(config: dict[str, Any]) -> None:
        if raise_it and not config.get("health_alert"):
            config["health_alert"] = {"state": state, "at": now.isoformat()}
            changed.append(True)
        elif not raise_it and config.get("health_alert"):
            config.pop("health_alert")
            changed.append(True)

    update_config(account, change)
    return bool(changed)


def _email_admins(health: Health, *, recovered: bool) -> int:
    from django.conf import settings
    from django.core.mail import send_mail
    from django.utils import translation
    from django.utils.translation import gettext as _

    from madoguchi.accounts.models import Role, User

    account = health.account
    admins = User.objects.filter(workspace_id=account.workspace_id, role=Role.ADMIN, is_active=True)
    sent = 0
    for admin in admins:
        with translation.override(admin.language or settings.LANGUAGE_CODE):
            names = {"channel": account.get_kind_display(), "name": account.name}
            if recovered:
                subject = _("[madoguchi] %(channel)s %(name)s works again") % names
                body = _("%(channel)s account %(name)s receives and sends again.") % names
            else:
                subject = _("[madoguchi] %(channel)s %(name)s needs attention") % names
                body = _(
                    "%(channel)s account %(name)s is %(state)s since %(since)s.\n\nReason: %(reason)s\n\n"
                    "Open the Channels page of madoguchi to reconnect it. Until then, messages on this "
                    "channel may not arrive or leave."
                ) % {**names, "state": state_label(health.state), "since": health.since or "-", "reason": health.reason or "-"}
        send_mail(subject, body, None, [admin.email], fail_silently=False)
        sent += 1
    return sent


def state_label(state: str) -> str:
    """The state as a person reads it."""
    from django.utils.translation import gettext as _

    return {"connected": _("connected"), "degraded": _("degraded"), "disconnected": _("disconnected")}.get(state, state)


# --- per-account work state: cursors, leases and waits kept in config[key] ---------------------


def save_state(account: ChannelAccount, key: str, **changes: Any) -> None:
    """Update `config[key]` under the row lock; a value of None removes that entry."""

    def apply(config: dict[str, Any]) -> None:
        state = config.setdefault(key, {})
        for name, value in changes.items():
            if value is None:
                state.pop(name, None)
            else:
                state[name] = value

    update_config(account, apply)


def claim_lease(
    account: ChannelAccount,
    key: str,
    *,
    now: float,
    seconds: float,
    due_fields: tuple[str, ...] = (),
    wait_until: float = 0.0,
    account_wait: Callable[[dict[str, Any]], float] | None = None,
    force: bool = False,
    drop: tuple[str, ...] = (),
) -> bool:
    """Take the lease on `config[key]` so two workers never poll or stream one account at once.

    Refused while another worker holds it, and (unless `force`) while any of `due_fields`
    (Unix seconds, e.g. the next poll time) lies in the future; `wait_until` (a rate-limit wait
    the caller knows of) is never skipped, nor is `account_wait(config)` (an account-wide wait
    read under the same lock). On success the lease runs `seconds` from `now` and the `drop`
    entries are removed."""
    claimed = False

    def take(config: dict[str, Any]) -> None:
        nonlocal claimed
        state = config.setdefault(key, {})
        due = 0.0 if force else max((float(state.get(f, 0) or 0) for f in due_fields), default=0.0)
        waits = max(wait_until, account_wait(config) if account_wait else 0.0)
        if float(state.get("lease_until", 0)) > now or max(due, waits) > now:
            return
        state["lease_until"] = now + seconds
        for name in drop:
            state.pop(name, None)
        claimed = True

    update_config(account, take)
    return claimed
