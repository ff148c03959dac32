"""The X filtered stream, consumed in bounded runs by the worker.

Documentation (November 2026):
- https://docs.x.com/x-api/posts/filtered-stream/introduction — one JSON object per line
  (`data`, `includes.users`, `matching_rules`), a blank keep-alive line every 20 seconds.
- https://docs.x.com/x-api/fundamentals/handling-disconnections — reconnect when 20 seconds pass
  with nothing; back off linearly (250 ms steps up to 16 s) after network errors and stalls,
  exponentially from 5 s (up to 320 s) after HTTP errors, and exponentially from 1 minute after a
  429 (the 429 body says `"connection_issue": "TooManyConnections"` when another connection of
  the app is still open). Operational disconnects arrive as an `errors` line, then the close.

A run holds the connection for `config["stream_seconds"]` (default 240 s, at most 600, like the
email connector's IDLE) under a lease in `config["stream"]`, then frees the worker; the clock
queues the next run. The backoff state (`failures`, `wait_until`) lives in the same place, so a
new run on another worker respects it. Posts missed between two runs: Enterprise accounts
reconnect with `backfill_minutes` (up to 5); others lose at most the seconds between runs.
Every post goes through do_ingest with `route="stream"` (listening decides whether to capture
it), except mentions of and replies to the brand's own account, which open conversations.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from django.utils.translation import gettext as _
from pydantic import ValidationError

from madoguchi.connectors import health
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.x import inbound
from madoguchi.connectors.x.client import StreamItem, XAPIError, XClient
from madoguchi.ingest import actions as ingest
from madoguchi.lib import lanes

logger = logging.getLogger(__name__)

STALL_SECONDS = 20.0
RUN_SECONDS = 240.0
MAX_RUN_SECONDS = 600.0
QUEUED_SECONDS = 120.0


def backoff(kind: str, failures: int) -> float:
    """Seconds to wait before reconnect number `failures` (1 = the first retry) after `kind`."""
    n = max(1, failures)
    if kind == "network":
        return min(16.0, 0.25 * n)
    if kind == "http":
        return min(320.0, 5.0 * 2 ** (n - 1))
    return min(960.0, 60.0 * 2 ** (n - 1))  # "rate": 429


def _state(account: ChannelAccount) -> dict[str, Any]:
    return dict((account.config or {}).get("stream") or {})


def _save(account: ChannelAccount, **changes: Any) -> None:
    health.save_state(account, "stream", **changes)


def run_seconds(account: ChannelAccount) -> float:
    return min(float((account.config or {}).get("stream_seconds") or RUN_SECONDS), MAX_RUN_SECONDS)


def stall_seconds(account: ChannelAccount) -> float:
    return float((account.config or {}).get("stream_stall_seconds") or STALL_SECONDS)


def ready_to_run(account: ChannelAccount, now: float | None = None) -> bool:
    """Nobody holds the stream, no run is queued, and no backoff is pending."""
    now = now or time.time()
    state = _state(account)
    return all(float(state.get(k, 0)) <= now for k in ("lease_until", "queued_until", "wait_until"))


def mark_queued(account: ChannelAccount) -> None:
    _save(account, queued_until=time.time() + QUEUED_SECONDS)


def _claim(account: ChannelAccount, seconds: float) -> bool:
    lease = seconds + stall_seconds(account) + 30
    return health.claim_lease(account, "stream", now=time.time(), seconds=lease, drop=("queued_until",))


def handle_line(account: ChannelAccount, line: dict[str, Any]) -> str:
    """Ingest one post line of the stream; returns what happened to it."""
    own_id = str((account.config or {}).get("user_id", ""))
    try:
        item = StreamItem.model_validate(line)
    except ValidationError as exc:
        ingest.do_quarantine(account, f"X stream line: {exc}"[:5000], str(line))
        return "quarantined"
    tweet = item.data
    if own_id and tweet.author_id == own_id:
        return "own"
    users = {u.id: u for u in item.includes.users}
    own_username = str((account.config or {}).get("username") or account.handle or "")
    route = inbound.listen_route(tweet, own_id, own_username)
    try:
        return inbound.ingest_built(account, inbound.tweet_or_edit(account, tweet, users.get(tweet.author_id), route=route))
    except ValueError as exc:
        ingest.do_quarantine(account, f"X stream post {tweet.id}: {exc}"[:5000], str(line))
        return "quarantined"


def do_run_stream(account: ChannelAccount, *, seconds: float | None = None, client: XClient | None = None) -> dict[str, Any]:
    """Hold the filtered stream for up to `seconds`, reconnecting with the documented backoff."""
    seconds = min(seconds or run_seconds(account), MAX_RUN_SECONDS)
    if not _claim(account, seconds):
        return {"skipped": "another worker holds the stream"}
    counts: dict[str, Any] = {"connects": 0, "lines": 0, "keepalives": 0}
    own_client = client is None
    client = client or XClient(account)
    deadline = time.monotonic() + seconds
    enterprise = (account.config or {}).get("tier") == "enterprise"
    # When the stream last carried anything (an earlier run's end, else now: no history to fetch).
    last_seen = float(_state(account).get("last_seen_at") or time.time())
    try:
        while time.monotonic() < deadline:
            if lanes.stopping():  # the worker is shutting down: end now, lease released below
                counts["stopped"] = True
                break
            state = _state(account)
            wait = float(state.get("wait_until", 0)) - time.time()
            if wait > 0:
                if wait > deadline - time.monotonic():
                    counts["waiting"] = math.ceil(wait)
                    break
                if lanes.pause(wait):
                    counts["stopped"] = True
                    break
            # Enterprise can ask for what it missed while away (at most 5 minutes); ingest dedupes.
            backfill = min(5, math.ceil((time.time() - last_seen) / 60)) if enterprise else 0
            try:
                kind = _consume(account, client, counts, deadline, backfill)
            except XAPIError as exc:
                last_seen = time.time() if counts["connects"] else last_seen
                if exc.status == 0 and time.monotonic() >= deadline:
                    break  # the run ended while waiting for the next line: not a failure
                if exc.status == 401:
                    health.do_record_channel_error(account, _("X refused the app's bearer token for the stream (401): %(detail)s") % {"detail": exc.detail}, disconnected=True)
                    counts["error"] = "disconnected"
                    break
                kind = "network" if exc.status == 0 else "rate" if exc.status == 429 else "http"
                counts["error"] = str(exc)
                if kind == "network":  # dropped mid-stream, stalled, or could not connect
                    counts["disconnects"] = counts.get("disconnects", 0) + 1
                _failed(account, kind, exc)
                continue
            last_seen = time.time()
            if kind:  # the connection ended before the run did: reconnect after the backoff
                _failed(account, kind, None)
    finally:
        _save(account, lease_until=None, last_seen_at=last_seen)
        if own_client:
            client.close()
    return counts


def _consume(account: ChannelAccount, client: XClient, counts: dict[str, Any], deadline: float, backfill: int) -> str:
    """Read one connection until the run's end (""), or until X ends it ("network")."""
    with client.stream(stall_seconds=stall_seconds(account), backfill_minutes=backfill) as lines:
        counts["connects"] += 1
        healthy = False
        for line in lines:
            if not healthy:  # data flows: the backoff starts over next time
                healthy = True
                _save(account, failures=None, kind=None, wait_until=None)
                health.do_record_channel_ok(account, received=True, reconnect=False)  # app token only
            if line is None:
                counts["keepalives"] += 1
            elif "data" in line:
                counts["lines"] += 1
                outcome = handle_line(account, line)
                counts[outcome] = counts.get(outcome, 0) + 1
            elif line.get("errors"):
                detail = "; ".join(str(e.get("detail") or e.get("title") or e) for e in line["errors"] if isinstance(e, dict))
                logger.info("X stream of account %s: %s", account.pk, detail)
                counts["disconnects"] = counts.get("disconnects", 0) + 1
                return "network"
            # X sends a keep-alive every 20 s at least, so a stopping worker is seen in time.
            if time.monotonic() >= deadline or lanes.stopping():
                return ""
    counts["disconnects"] = counts.get("disconnects", 0) + 1
    return "network"


def _failed(account: ChannelAccount, kind: str, exc: XAPIError | None) -> None:
    state = _state(account)
    failures = int(state.get("failures", 0)) + 1 if state.get("kind") == kind else 1
    wait = backoff(kind, failures)
    if exc is not None and exc.status == 429:
        wait = max(wait, exc.rate.wait_seconds())
    _save(account, failures=failures, kind=kind, wait_until=time.time() + wait)
    if exc is None:
        return  # a dropped connection is routine; it only becomes an error if reconnecting fails
    if "TooManyConnections" in exc.detail:
        reason = _("X stream: another connection of this app is still open; reconnecting in %(seconds)s s") % {"seconds": round(wait)}
    else:
        reason = _("X stream failed (%(error)s); reconnecting in %(seconds)s s") % {"error": str(exc), "seconds": round(wait)}
    health.do_record_channel_error(account, reason)
