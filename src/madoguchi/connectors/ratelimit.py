"""Rate-limit headers, read the same way for every platform that sends them.

X sends `x-rate-limit-{limit,remaining,reset}`, Mastodon `X-RateLimit-*` (reset as an ISO 8601
time), Bluesky's PDS `ratelimit-*` (IETF draft names, reset in Unix seconds). A connector reads
them after every call and waits out a used-up window instead of hammering the platform.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from madoguchi.connectors.models import ChannelAccount


@dataclass
class RateLimit:
    """One platform window: how many calls it allows, how many are left, when it resets."""

    limit: int | None
    remaining: int | None
    reset: float | None  # Unix seconds

    @classmethod
    def from_headers(cls, headers: httpx.Headers, prefix: str) -> RateLimit:
        """Read `<prefix>limit`, `<prefix>remaining` and `<prefix>reset` (missing ones are None)."""

        def number(name: str) -> int | None:
            try:
                return int(headers[prefix + name])
            except (KeyError, ValueError):
                return None

        return cls(number("limit"), number("remaining"), parse_reset(headers.get(prefix + "reset", "")))

    @classmethod
    def unknown(cls) -> RateLimit:
        return cls(None, None, None)

    def wait_seconds(self, now: float | None = None, *, keep: int = 0) -> float:
        """How long to wait before the next call: 0 unless at most `keep` calls are left."""
        if self.remaining is None or self.remaining > keep or self.reset is None:
            return 0.0
        return max(1.0, self.reset - (now or time.time()))


def parse_reset(value: str) -> float | None:
    """A reset time as Unix seconds, from Unix seconds or an ISO 8601 time."""
    value = value.strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def remember(account: ChannelAccount, endpoint: str, rate: RateLimit) -> None:
    """Keep a used-up window in `config["rate_limits"][endpoint]` (shared by every worker), so
    the outbox waits for its reset instead of calling; forget it once calls are allowed again."""
    from madoguchi.connectors import health

    limits = (account.config or {}).get("rate_limits", {})
    if rate.wait_seconds() > 0:

        def keep(config: dict[str, Any]) -> None:
            config.setdefault("rate_limits", {})[endpoint] = {"remaining": rate.remaining, "reset": rate.reset}

        health.update_config(account, keep)
    elif endpoint in limits:
        health.update_config(account, lambda config: config.get("rate_limits", {}).pop(endpoint, None))


def known_wait(account: ChannelAccount, endpoint: str) -> float:
    """Seconds until the remembered window of `endpoint` resets (0 when none is used up)."""
    known = (account.config or {}).get("rate_limits", {}).get(endpoint)
    if not known:
        return 0.0
    return RateLimit(None, int(known.get("remaining") or 0), known.get("reset")).wait_seconds()
