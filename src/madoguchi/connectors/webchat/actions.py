"""Writes of the web chat connector's settings (under a row lock on the account's config)."""

from __future__ import annotations

from typing import Any

from madoguchi.connectors.health import update_config
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webchat.widget import new_key


def do_setup_widget(account: ChannelAccount) -> str:
    """Give a web chat account a widget key if it has none; returns the key."""
    if not account.config.get("widget_key"):
        update_config(account, lambda c: c.setdefault("widget_key", new_key()))
    return str(account.config["widget_key"])


def do_regenerate_key(account: ChannelAccount) -> str:
    """A new widget key: pages with the old script tag stop working (visitors keep their history)."""
    key = new_key()
    update_config(account, lambda c: c.__setitem__("widget_key", key))
    return key


def do_update_widget_settings(
    account: ChannelAccount,
    *,
    allowed_origins: list[str],
    business_hours: dict[str, Any],
    rate_limits: dict[str, int],
    max_upload_bytes: int,
) -> None:
    """Save what the admin set on the settings page (already validated by the form)."""

    def change(config: dict[str, Any]) -> None:
        config["allowed_origins"] = allowed_origins
        config["business_hours"] = business_hours
        config["rate_limits"] = rate_limits
        config["max_upload_bytes"] = max_upload_bytes
        config.pop("simulated", None)  # a configured widget delivers through itself

    update_config(account, change)
