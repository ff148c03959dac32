"""Bluesky in: notifications polled with a resumable cursor, and the public Jetstream firehose.

Notifications (`app.bsky.notification.listNotifications`, see client.py) come newest first and
their `cursor` only pages back in time, so the poll keeps its own mark in `config["notifications"]`:
- `since_at` / `since_uris`: the newest `indexedAt` stored, and the uris stored at that instant.
  A poll pages back from the newest until it reaches the mark; nothing older is asked for again.
- While a poll walks several pages, `next_cursor` and `pending_at`/`pending_uris` are saved after
  each page is stored, so a worker that dies mid-way resumes at the next page; the mark moves to
  the pending one when the walk reaches it. Ingest is idempotent on the post's at:// uri, so a
  page seen twice changes nothing.
- `wait_until`: a used-up rate-limit window (or a 429) is waited out, never hammered.
Mentions, replies and quotes become public conversation items threaded by `reply.parent` and
`reply.root`; likes and reposts of our posts are reactions on them; follows are follow events.

Jetstream (https://github.com/bluesky-social/jetstream#consuming-jetstream): a WebSocket at
`/subscribe?wantedCollections=app.bsky.feed.post&cursor=<time_us>` that sends every public post
as JSON: `{did, time_us, kind: "commit", commit: {rev, operation, collection, rkey, cid, record}}`
(and `kind: "identity" | "account"` events we skip). It has no keyword filter: each post goes
through the listening rules (`listening.decide`, one Aho-Corasick pass) and only those that match
are kept; a post whose facets mention the brand's DID, or that replies to one of its posts, is a
mention and opens a conversation. `time_us` is saved in `config["jetstream"]["cursor"]`; a
reconnect rewinds a few seconds (duplicates are ignored by ingest), and deletions of posts we
hold become delete events. A workspace without listening rules does not read the firehose at all
(without rules ingest would keep every post of the network).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from madoguchi.connectors import health
from madoguchi.connectors.base import InboundAuthor, InboundEvent, InboundItem
from madoguchi.connectors.bluesky.client import (
    POST,
    AuthRefused,
    BlueskyClient,
    Notification,
    Profile,
    RateLimit,
    XRPCError,
    parse_datetime,
    split_uri,
)
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.polling import run_client, waits_out
from madoguchi.ingest import actions as ingest
from madoguchi.lib import lanes
from madoguchi.listening import actions as listening

logger = logging.getLogger(__name__)

POLL_SECONDS = 30
LEASE_SECONDS = 300
PAGE_SIZE = 100
MAX_PAGES_PER_POLL = 10
PROFILE_TTL = 3600.0
JETSTREAM_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
REWIND_US = 5_000_000  # a reconnect replays the last five seconds
SAVE_EVERY = 500  # events between two saves of the Jetstream cursor (and at least every second)
MAX_BACKOFF = 30.0
ITEM_REASONS = {"mention", "reply", "quote"}
REACTION_REASONS = {"like": "like", "repost": "repost"}

# --- identities ----------------------------------------------------------------------------------

_profiles: dict[str, tuple[float, Profile]] = {}


def known_profiles(client: BlueskyClient | None, dids: Iterable[str]) -> dict[str, Profile]:
    """Full profiles (with followersCount) of these DIDs: from a one-hour cache, the rest fetched
    25 at a time with getProfiles. A failed fetch leaves them out (items keep what they carry)."""
    now = time.monotonic()
    found: dict[str, Profile] = {}
    for did in set(dids):
        hit = _profiles.get(did)
        if hit is not None and now - hit[0] < PROFILE_TTL:
            found[did] = hit[1]
    missing = sorted({d for d in dids if d not in found})
    if missing and client is not None:
        try:
            for profile in client.profiles(missing):
                _profiles[profile.did] = (now, profile)
                found[profile.did] = profile
        except XRPCError as exc:
            logger.info("Bluesky getProfiles failed: %s", exc)
    if len(_profiles) > 50_000:
        _profiles.clear()
    return found


def author_of(profile: Profile, language: str = "") -> InboundAuthor:
    return InboundAuthor(
        external_id=profile.did,
        handle=profile.handle[:255] if profile.handle != "handle.invalid" else "",
        display_name=profile.display_name[:255],
        avatar_url=profile.avatar[:1000],
        followers=profile.followers_count,
        language=language,
    )


def _language(record: dict[str, Any]) -> str:
    langs = record.get("langs") or []
    return str(langs[0])[:16] if isinstance(langs, list) and langs and isinstance(langs[0], str) else ""


def _ref(record: dict[str, Any], name: str) -> str:
    ref = (record.get("reply") or {}).get(name) or {}
    return str(ref.get("uri") or "") if isinstance(ref, dict) else ""


def web_url(uri: str, handle: str = "") -> str:
    did, collection, rkey = split_uri(uri)
    if collection != POST or not rkey:
        return ""
    return f"https://bsky.app/profile/{handle or did}/post/{rkey}"


def post_item(
    uri: str,
    cid: str,
    record: dict[str, Any],
    profile: Profile,
    *,
    route: str = "conversation",
    extra: dict[str, Any] | None = None,
) -> InboundItem:
    """An app.bsky.feed.post record as a normalized, public item threaded by its reply refs."""
    parent, root = _ref(record, "parent"), _ref(record, "root")
    language = _language(record)
    return InboundItem(
        external_id=uri,
        author=author_of(profile, language),
        text=str(record.get("text") or ""),
        created_at=parse_datetime(str(record.get("createdAt") or "")),
        reply_to=[parent] if parent else [],
        thread_id=root or uri,
        public=True,
        url=web_url(uri, profile.handle if profile.handle != "handle.invalid" else ""),
        route=route,  # type: ignore[arg-type]
        language=language,
        raw={"uri": uri, "cid": cid, "record": record, **(extra or {})},
    )


def notification_entry(note: Notification, profile: Profile | None) -> InboundItem | InboundEvent | None:
    """What a notification is to us: a post (mention, reply, quote), an event, or nothing."""
    author = profile or note.author
    created = parse_datetime(str(note.record.get("createdAt") or "")) or parse_datetime(note.indexed_at)
    if note.reason in ITEM_REASONS:
        return post_item(note.uri, note.cid, note.record, author, extra={"reason": note.reason})
    if note.reason in REACTION_REASONS and note.reason_subject:
        return InboundEvent(
            external_id=note.uri,
            kind="reaction",
            author=author_of(author),
            target_external_id=note.reason_subject,
            emoji=REACTION_REASONS[note.reason],
            created_at=created,
            raw={"notification": note.model_dump(mode="json", by_alias=True)},
        )
    if note.reason == "follow":
        return InboundEvent(
            external_id=note.uri,
            kind="follow",
            author=author_of(author),
            created_at=created,
            raw={"notification": note.model_dump(mode="json", by_alias=True)},
        )
    return None


# --- polling notifications ---------------------------------------------------------------------


def _claim(account: ChannelAccount, key: str, now: float, *, force: bool, every: float) -> bool:
    """Take the lease of `key` if it is due, so two workers never run it at once."""
    return health.claim_lease(
        account, key, now=now, seconds=every, due_fields=("next_run_at", "wait_until"), force=force
    )


def _save(account: ChannelAccount, key: str, **changes: Any) -> None:
    health.save_state(account, key, **changes)


def _instant(note: Notification) -> dt.datetime:
    return parse_datetime(note.indexed_at) or dt.datetime.min.replace(tzinfo=dt.UTC)


def _newer(note: Notification, at: dt.datetime | None, uris: Iterable[str]) -> bool:
    """Whether a notification is after the mark (at, uris stored at that instant)."""
    if at is None:
        return True
    instant = _instant(note)
    return instant > at or (instant == at and note.uri not in set(uris))


def _mark(notes: list[Notification], at: dt.datetime | None, uris: list[str]) -> tuple[dt.datetime | None, list[str]]:
    """The mark after storing `notes`: the newest instant and every uri stored at it."""
    for note in notes:
        instant = _instant(note)
        if at is None or instant > at:
            at, uris = instant, [note.uri]
        elif instant == at and note.uri not in uris:
            uris = [*uris, note.uri]
    return at, uris[-200:]


def _ingest_notes(account: ChannelAccount, client: BlueskyClient, notes: list[Notification], counts: dict[str, Any]) -> None:
    own = client.did
    profiles = known_profiles(client, {n.author.did for n in notes if n.reason in ITEM_REASONS and n.author.did != own})
    for note in reversed(notes):  # oldest first, so a thread builds in order
        if note.author.did == own:
            continue
        try:
            entry = notification_entry(note, profiles.get(note.author.did))
            if entry is None:
                counts["skipped"] = counts.get("skipped", 0) + 1
                continue
            if isinstance(entry, InboundEvent):
                ingest.do_ingest_event(account, entry)
                counts["events"] = counts.get("events", 0) + 1
                continue
            result = ingest.do_ingest(account, entry)
        except ValueError as exc:  # an item we cannot read must not block the cursor
            ingest.do_quarantine(account, f"Bluesky notification {note.uri}: {exc}"[:5000], note.model_dump_json(by_alias=True))
            counts["quarantined"] = counts.get("quarantined", 0) + 1
            continue
        counts["created" if result.created else "duplicate"] += 1


def _polling(account: ChannelAccount, key: str, client: BlueskyClient | None) -> AbstractContextManager[BlueskyClient]:
    """The client of one poll run of `key`; afterwards the lease is released and the next run set."""
    poll_seconds = float((account.config or {}).get("poll_seconds", POLL_SECONDS))
    return run_client(client, lambda: BlueskyClient(account), lambda: _save(account, key, lease_until=None, next_run_at=time.time() + poll_seconds))


def do_poll_notifications(account: ChannelAccount, *, client: BlueskyClient | None = None, force: bool = False) -> dict[str, Any]:
    """Fetch and ingest new notifications of the account; returns what happened."""
    key = "notifications"
    if not _claim(account, key, time.time(), force=force, every=LEASE_SECONDS):
        return {"skipped": "not due"}
    counts: dict[str, Any] = {"created": 0, "duplicate": 0, "pages": 0}
    with _polling(account, key, client) as client:
        for _ in range(MAX_PAGES_PER_POLL):
            state = dict((account.config or {}).get(key, {}))
            since_at = parse_datetime(str(state.get("since_at") or ""))
            since_uris = list(state.get("since_uris") or [])
            cursor = str(state.get("next_cursor") or "")
            try:
                page, rate = client.notifications(cursor=cursor, limit=PAGE_SIZE)
            except XRPCError as exc:
                counts["error"] = _poll_failed(account, key, exc)
                return counts
            counts["pages"] += 1
            fresh = [n for n in page.notifications if _newer(n, since_at, since_uris)]
            _ingest_notes(account, client, fresh, counts)
            pending_at = parse_datetime(str(state.get("pending_at") or ""))
            pending_at, pending_uris = _mark(fresh, pending_at, list(state.get("pending_uris") or []))
            reached = len(fresh) < len(page.notifications)
            # The very first poll takes the newest page only: history before connecting is not ours.
            more = bool(page.cursor) and since_at is not None and not reached and bool(page.notifications)
            if more:
                _save(account, key, next_cursor=page.cursor, pending_at=pending_at.isoformat() if pending_at else None, pending_uris=pending_uris)
            else:
                new_at, new_uris = since_at, since_uris
                if pending_at is not None and (new_at is None or pending_at >= new_at):
                    new_uris = pending_uris if new_at is None or pending_at > new_at else sorted(set(new_uris) | set(pending_uris))
                    new_at = pending_at
                _save(
                    account,
                    key,
                    # Nothing at all yet: everything that comes later is new (no clock to trust).
                    since_at=(new_at or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).isoformat(),
                    since_uris=new_uris,
                    next_cursor=None,
                    pending_at=None,
                    pending_uris=None,
                )
            if waits_out(rate, counts, functools.partial(_save, account, key)):
                break
            if not more:
                break
        health.do_record_channel_ok(account, received=True)
    return counts


def dm_entry(log: dict[str, Any], profiles: dict[str, Profile], own_did: str) -> InboundItem | InboundEvent | None:
    """A chat log entry as a private item (a message to us) or a reaction event; None otherwise."""
    kind = str(log.get("$type") or "").rsplit("#", 1)[-1]
    convo = str(log.get("convoId") or "")
    message = log.get("message") or {}
    if not isinstance(message, dict) or not message.get("id"):
        return None
    if kind == "logCreateMessage":
        sender = str((message.get("sender") or {}).get("did") or "")
        if not sender or sender == own_did:
            return None
        return InboundItem(
            external_id=f"dm:{message['id']}",
            author=author_of(profiles.get(sender) or Profile(did=sender)),
            text=str(message.get("text") or ""),
            created_at=parse_datetime(str(message.get("sentAt") or "")),
            thread_id=f"dm:{convo}" if convo else "",
            public=False,
            raw={"chat_log": log},
        )
    if kind in {"logAddReaction", "logRemoveReaction"}:
        reaction = log.get("reaction") or {}
        sender = str((reaction.get("sender") or {}).get("did") or "")
        if not sender or sender == own_did:
            return None
        value = str(reaction.get("value") or "")
        added = kind == "logAddReaction"
        return InboundEvent(
            external_id=f"dm-{'reaction' if added else 'unreaction'}:{message['id']}:{sender}:{value}:{log.get('rev', '')}"[:255],
            kind="reaction" if added else "unreaction",
            author=author_of(profiles.get(sender) or Profile(did=sender)),
            target_external_id=f"dm:{message['id']}",
            emoji=value[:64],
            created_at=parse_datetime(str(reaction.get("createdAt") or "")),
            raw={"chat_log": log},
        )
    return None


def do_poll_dms(account: ChannelAccount, *, client: BlueskyClient | None = None, force: bool = False) -> dict[str, Any]:
    """Fetch and ingest new direct messages from the chat log (`config["dms"]["cursor"]`)."""
    key = "dms"
    if not _claim(account, key, time.time(), force=force, every=LEASE_SECONDS):
        return {"skipped": "not due"}
    counts: dict[str, Any] = {"created": 0, "duplicate": 0, "pages": 0}
    with _polling(account, key, client) as client:
        for _ in range(MAX_PAGES_PER_POLL):
            cursor = str(((account.config or {}).get(key) or {}).get("cursor") or "")
            try:
                logs, next_cursor = client.chat_log(cursor)
            except XRPCError as exc:
                counts["error"] = _poll_failed(account, key, exc)
                return counts
            counts["pages"] += 1
            own = client.did
            senders = {str(((log.get("message") or {}).get("sender") or {}).get("did") or "") for log in logs}
            profiles = known_profiles(client, {d for d in senders if d and d != own})
            for log in logs:
                try:
                    entry = dm_entry(log, profiles, own)
                    if entry is None:
                        continue
                    if isinstance(entry, InboundEvent):
                        ingest.do_ingest_event(account, entry)
                        counts["events"] = counts.get("events", 0) + 1
                        continue
                    result = ingest.do_ingest(account, entry)
                except ValueError as exc:
                    ingest.do_quarantine(account, f"Bluesky chat log {log.get('rev')}: {exc}"[:5000], json.dumps(log, ensure_ascii=False))
                    counts["quarantined"] = counts.get("quarantined", 0) + 1
                    continue
                counts["created" if result.created else "duplicate"] += 1
            _save(account, key, cursor=next_cursor or None)
            if not logs or not next_cursor or next_cursor == cursor:
                break
        health.do_record_channel_ok(account, received=True)
    return counts


def _poll_failed(account: ChannelAccount, key: str, exc: XRPCError) -> str:
    """Record a failed poll: wait out a rate limit, disconnect on refused credentials, else retry later."""
    if isinstance(exc, AuthRefused):
        health.do_record_channel_error(account, f"Bluesky refused the account's credentials ({exc.error}): {exc.message}", disconnected=True)
        return "disconnected"
    if "scope" in exc.message.lower():
        health.do_record_channel_error(account, "Bluesky: the app password does not allow direct messages; create one with access to direct messages")
        return "no access to direct messages"
    if exc.status == 429:
        wait = RateLimit(exc.rate.limit, 0, exc.rate.reset).wait_seconds() or 60.0
        _save(account, key, wait_until=time.time() + wait)
        health.do_record_channel_error(account, f"Bluesky rate limit reached; waiting {round(wait)} s")
        return "rate limited"
    health.do_record_channel_error(account, str(exc))
    return str(exc)


# --- Jetstream ---------------------------------------------------------------------------------


def _mentions(record: dict[str, Any], did: str) -> bool:
    for facet in record.get("facets") or []:
        for feature in (facet or {}).get("features") or [] if isinstance(facet, dict) else []:
            if isinstance(feature, dict) and feature.get("$type") == "app.bsky.richtext.facet#mention" and feature.get("did") == did:
                return True
    return False


def jetstream_item(event: dict[str, Any], brand_did: str) -> InboundItem | None:
    """A Jetstream post creation as an item: a mention (conversation) when it names or answers the
    brand, else a stream post for listening; None for anything else."""
    commit = event.get("commit") or {}
    if event.get("kind") != "commit" or commit.get("collection") != POST or commit.get("operation") != "create":
        return None
    record = commit.get("record") or {}
    did = str(event.get("did") or "")
    if not did or not commit.get("rkey") or not isinstance(record, dict) or did == brand_did:
        return None
    uri = f"at://{did}/{POST}/{commit['rkey']}"
    ours = f"at://{brand_did}/" if brand_did else None
    mention = bool(brand_did) and (
        _mentions(record, brand_did) or any(_ref(record, name).startswith(ours or "-") for name in ("parent", "root"))
    )
    return post_item(
        uri,
        str(commit.get("cid") or ""),
        record,
        Profile(did=did),
        route="conversation" if mention else "stream",
        extra={"time_us": event.get("time_us"), "source": "jetstream"},
    )


def _deleted_uri(event: dict[str, Any]) -> str:
    commit = event.get("commit") or {}
    if event.get("kind") == "commit" and commit.get("collection") == POST and commit.get("operation") == "delete":
        return f"at://{event.get('did')}/{POST}/{commit.get('rkey')}"
    return ""


def process_jetstream(account: ChannelAccount, events: list[dict[str, Any]], *, brand_did: str, client: BlueskyClient | None, counts: dict[str, Any]) -> None:
    """Ingest one batch of Jetstream events: keep what listening keeps, record deletions we hold."""
    from madoguchi.inbox.models import Message
    from madoguchi.ingest.models import Post

    kept: list[InboundItem] = []
    deletions: dict[str, dict[str, Any]] = {}
    for event in events:
        counts["events"] = counts.get("events", 0) + 1
        uri = _deleted_uri(event)
        if uri:
            deletions[uri] = event
            continue
        try:
            item = jetstream_item(event, brand_did)
        except ValueError as exc:
            ingest.do_quarantine(account, f"Bluesky Jetstream event: {exc}"[:5000], json.dumps(event, ensure_ascii=False))
            counts["quarantined"] = counts.get("quarantined", 0) + 1
            continue
        if item is None:
            continue
        # Listening decides (one automaton pass); profiles are fetched only for what it keeps.
        if item.route == "stream" and listening.decide(account, item).drop:
            counts["dropped"] = counts.get("dropped", 0) + 1
            continue
        kept.append(item)
    if kept:
        profiles = known_profiles(client, {i.author.external_id for i in kept})
        for item in kept:
            profile = profiles.get(item.author.external_id)
            if profile is not None:
                author = author_of(profile, item.author.language)
                url = web_url(item.external_id, author.handle)
                item = item.model_copy(update={"author": author, "url": url})
            result = ingest.do_ingest(account, item)
            outcome = "created" if result.created else "duplicate"
            counts[outcome] = counts.get(outcome, 0) + 1
    if deletions:
        uris = list(deletions)
        held: set[str] = set()
        for model in (Message, Post):
            held |= {u for u in model.objects.filter(channel_account=account, external_id__in=uris).values_list("external_id", flat=True) if u}
        for uri in sorted(held):
            event = deletions[uri]
            ingest.do_ingest_event(
                account,
                InboundEvent(
                    external_id=f"delete:{uri}",
                    kind="delete",
                    author=InboundAuthor(external_id=str(event.get("did"))),
                    target_external_id=uri,
                    created_at=dt.datetime.fromtimestamp(int(event.get("time_us") or 0) / 1e6, dt.UTC) if event.get("time_us") else None,
                    raw={"jetstream": event},
                ),
            )
            counts["deleted"] = counts.get("deleted", 0) + 1


def jetstream_url(account: ChannelAccount, cursor: int | None) -> str:
    base = str((account.config or {}).get("jetstream_url") or JETSTREAM_URL)
    url = f"{base}{'&' if '?' in base else '?'}wantedCollections={POST}"
    if cursor:
        url += f"&cursor={max(0, cursor - REWIND_US)}"
    return url


Connect = Callable[..., Any]


def _default_connect(url: str, timeout: float) -> Any:
    from websockets.sync.client import connect

    return connect(url, open_timeout=timeout, close_timeout=2, max_size=2**21, compression=None)


def do_listen_jetstream(
    account: ChannelAccount,
    *,
    max_seconds: float = 50.0,
    max_events: int = 100_000,
    connect: Connect | None = None,
    client: BlueskyClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Read Jetstream for at most `max_seconds` / `max_events`, reconnecting with backoff, and keep
    the posts listening wants; the cursor is saved as it goes. Returns what happened."""
    key = "jetstream"
    if listening.matcher_for(account.workspace_id).empty:
        return {"skipped": "no listening rules"}
    if not _claim(account, key, time.time(), force=True, every=max_seconds + 60):
        return {"skipped": "another worker is listening"}
    connect = connect or _default_connect
    brand_did = str((account.config or {}).get("did") or (account.secrets or {}).get("session", {}).get("did") or "")
    own_client = client is None and bool((account.secrets or {}).get("password"))
    if own_client:
        client = BlueskyClient(account)
    counts: dict[str, Any] = {"events": 0, "connections": 0}
    deadline = time.monotonic() + max_seconds
    failures = 0
    try:
        while time.monotonic() < deadline and counts["events"] < max_events:
            if lanes.stopping():  # the worker is shutting down: the cursor is saved, the lease freed
                counts["stopped"] = True
                break
            cursor = int(((account.config or {}).get(key) or {}).get("cursor") or 0) or None
            try:
                with connect(jetstream_url(account, cursor), min(10.0, max(1.0, deadline - time.monotonic()))) as ws:
                    counts["connections"] += 1
                    failures = 0
                    _read(account, ws, deadline, max_events, brand_did, client, counts)
            except Exception as exc:  # connection refused, dropped, bad handshake
                failures += 1
                counts["reconnects"] = counts.get("reconnects", 0) + 1
                reason = f"Bluesky Jetstream: {type(exc).__name__}: {exc}"[:500]
                logger.info("account %s: %s", account.pk, reason)
                if failures >= 3:
                    health.do_record_channel_error(account, reason)
                pause = min(MAX_BACKOFF, 0.5 * 2 ** (failures - 1), max(0.0, deadline - time.monotonic()))
                if pause > 0 and not lanes.stopping():
                    sleep(pause)
        if counts["connections"]:
            health.do_record_channel_ok(account, received=True, reconnect=False)
    finally:
        _save(account, key, lease_until=None, last_run_at=time.time())
        if own_client and client is not None:
            client.close()
    return counts


def _read(account: ChannelAccount, ws: Any, deadline: float, max_events: int, brand_did: str, client: BlueskyClient | None, counts: dict[str, Any]) -> None:
    batch: list[dict[str, Any]] = []
    last_save = time.monotonic()
    newest = 0

    def flush() -> None:
        nonlocal batch, last_save
        if batch:
            process_jetstream(account, batch, brand_did=brand_did, client=client, counts=counts)
            batch = []
        if newest:
            _save(account, "jetstream", cursor=newest)
        last_save = time.monotonic()

    try:
        while counts["events"] + len(batch) < max_events:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or lanes.stopping():
                break
            try:
                message = ws.recv(timeout=min(remaining, 1.0))
            except TimeoutError:
                flush()
                continue
            try:
                event = json.loads(message)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            batch.append(event)
            newest = max(newest, int(event.get("time_us") or 0))
            if len(batch) >= SAVE_EVERY or time.monotonic() - last_save >= 1.0:
                flush()
    finally:
        flush()
