"""Keeping a mailbox in sync over IMAP (RFC 3501): polling from the worker clock, IDLE on request.

Account settings (`ChannelAccount.config`; the password in `secrets["imap_password"]`):

    imap_host, imap_port       port defaults: 993 for "tls", 143 otherwise
    imap_security              "tls" (default), "starttls", "none" (loopback only)
    imap_username, imap_folder folder defaults to INBOX (sent as modified UTF-7, RFC 3501 §5.1.3)
    imap_after                 "seen" (default: flag \\Seen), "move" (to imap_move_to), "keep"
    imap_move_to               target folder for "move"
    max_message_bytes          bigger mail is quarantined with its headers only (default 25 MB)
    tls_ca_file                a CA bundle for a private server's certificate
    poll_seconds               how often the clock queues a sync (default 60)
    imap_idle_seconds          opt-in IDLE (RFC 2177): after each sync the worker waits up to
                               this long (at most 300) and fetches new mail the moment it lands

Where we are is `config["imap_state"] = {"uidvalidity", "last_uid"}`: UIDs only grow within one
UIDVALIDITY, so fetching `last_uid+1:*` never skips or repeats mail across restarts. `UID FETCH
n:*` returns the newest message even when its UID is below n (RFC 3501 §6.4.8), hence the
filter. A new UIDVALIDITY (a restored or recreated mailbox) means every UID may have changed:
we fetch everything again, and ingest (idempotent on Message-ID) keeps each mail once.

Order per message: ingest (commits), then flag or move, then advance the stored UID. A crash in
between refetches that one mail, which ingest ignores; nothing is ever skipped.
"""

from __future__ import annotations

import base64
import datetime as dt
import imaplib
import logging
import re
import select
import socket
import ssl
import time
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from madoguchi.connectors.email import inbound
from madoguchi.connectors.models import ChannelAccount
from madoguchi.ingest.actions import do_quarantine
from madoguchi.lib import lanes

logger = logging.getLogger(__name__)

BATCH = 50
DEFAULT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024
LEASE = dt.timedelta(minutes=10)
_FETCH_UID = re.compile(rb"UID (\d+)")
_FETCH_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class SyncError(Exception):
    """The mailbox could not be synced; the message says which step failed and why."""


@dataclass
class SyncReport:
    """What one sync did."""

    fetched: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    uidvalidity: int = 0
    last_uid: int = 0
    resynced: bool = False


def encode_folder(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 §5.1.3), quoted for the command line."""
    out, buf = [], ""

    def flush() -> None:
        nonlocal buf
        if buf:
            b64 = base64.b64encode(buf.encode("utf-16-be")).decode().rstrip("=").replace("/", ",")
            out.append(f"&{b64}-")
            buf = ""

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf += ch
    flush()
    quoted = "".join(out).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}"'


def connect(account: ChannelAccount) -> imaplib.IMAP4:
    """Log in to the account's IMAP server; SyncError names the step that failed (DNS, TLS, auth)."""
    config = account.config
    host = str(config.get("imap_host") or "")
    if not host:
        raise SyncError("IMAP: no server configured (config 'imap_host')")
    security = str(config.get("imap_security") or "tls")
    port = int(config.get("imap_port") or (993 if security == "tls" else 143))
    timeout = float(config.get("imap_timeout") or 60)
    ca_file = config.get("tls_ca_file")
    context = (
        ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    )
    try:
        if security == "tls":
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                host, port, ssl_context=context, timeout=timeout
            )
        else:
            conn = imaplib.IMAP4(host, port, timeout=timeout)
            if security == "starttls":
                conn.starttls(ssl_context=context)
    except socket.gaierror as exc:
        raise SyncError(f"IMAP: server name {host!r} does not resolve ({exc})") from exc
    except ssl.SSLError as exc:
        raise SyncError(f"IMAP: TLS with {host}:{port} failed ({exc})") from exc
    except (OSError, imaplib.IMAP4.error) as exc:
        raise SyncError(f"IMAP: cannot connect to {host}:{port} ({exc})") from exc
    try:
        conn.login(
            str(config.get("imap_username") or ""), str(account.secrets.get("imap_password") or "")
        )
    except imaplib.IMAP4.error as exc:
        _logout(conn)
        raise SyncError(
            f"IMAP: login refused for {config.get('imap_username')!r} ({_text(exc)})"
        ) from exc
    return conn


def _text(exc: BaseException) -> str:
    return " ".join(str(exc).replace("b'", "").replace("'", "").split())


def _logout(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except Exception:  # the connection may already be gone; nothing to clean up
        pass


def _select(conn: imaplib.IMAP4, folder: str) -> int:
    typ, data = conn.select(encode_folder(folder))
    if typ != "OK":
        raise SyncError(f"IMAP: cannot open folder {folder!r} ({_decode(data)})")
    _, values = conn.response("UIDVALIDITY")
    try:
        return int(values[0])
    except (TypeError, ValueError, IndexError):
        raise SyncError(f"IMAP: folder {folder!r} has no UIDVALIDITY") from None


def _decode(data: object) -> str:
    if isinstance(data, list):
        return " ".join(_decode(d) for d in data)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)


def _uids_after(conn: imaplib.IMAP4, last_uid: int) -> list[int]:
    typ, data = conn.uid("SEARCH", f"UID {last_uid + 1}:*")
    if typ != "OK":
        raise SyncError(f"IMAP: UID SEARCH failed ({_decode(data)})")
    uids = sorted(int(u) for u in (data[0] or b"").split())
    return [u for u in uids if u > last_uid]


def _fetch(conn: imaplib.IMAP4, uids: list[int], what: str) -> dict[int, tuple[bytes, bytes]]:
    """UID FETCH a set; {uid: (response line, literal)}."""
    typ, data = conn.uid("FETCH", ",".join(str(u) for u in uids), what)
    if typ != "OK":
        raise SyncError(f"IMAP: UID FETCH failed ({_decode(data)})")
    out: dict[int, tuple[bytes, bytes]] = {}
    for entry in data:
        line, literal = (entry[0], entry[1]) if isinstance(entry, tuple) else (entry, b"")
        if not isinstance(line, bytes):
            continue
        m = _FETCH_UID.search(line)
        if m:
            out[int(m.group(1))] = (line, literal or b"")
    return out


def _after_processing(conn: imaplib.IMAP4, account: ChannelAccount, uid: int) -> None:
    mode = str(account.config.get("imap_after") or "seen")
    if mode == "keep":
        return
    if mode == "move":
        target = encode_folder(str(account.config.get("imap_move_to") or "Processed"))
        if "MOVE" in conn.capabilities:
            typ, data = conn.uid("MOVE", str(uid), target)
        else:
            typ, data = conn.uid("COPY", str(uid), target)
            if typ == "OK":
                conn.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
                typ, data = conn.expunge()
        if typ != "OK":
            raise SyncError(
                f"IMAP: cannot move mail to {account.config.get('imap_move_to')!r} ({_decode(data)})"
            )
        return
    typ, data = conn.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Seen)")
    if typ != "OK":
        raise SyncError(f"IMAP: cannot flag mail as seen ({_decode(data)})")


def save_state(account: ChannelAccount, **changes: object) -> None:
    """Update only `config["imap_state"]`, re-read under a row lock so other settings survive."""
    with transaction.atomic():
        fresh = ChannelAccount.objects.select_for_update().only("config").get(pk=account.pk)
        state = dict(fresh.config.get("imap_state") or {})
        state.update(changes)
        fresh.config["imap_state"] = state
        ChannelAccount.objects.filter(pk=account.pk).update(config=fresh.config)
    account.config["imap_state"] = state


def claim(account: ChannelAccount) -> bool:
    """Take the account's sync lease, so two workers never sync one mailbox at once."""
    now = timezone.now()
    with transaction.atomic():
        fresh = ChannelAccount.objects.select_for_update().only("config").get(pk=account.pk)
        state = dict(fresh.config.get("imap_state") or {})
        lease = state.get("lease_until")
        if lease and dt.datetime.fromisoformat(lease) > now:
            return False
        state["lease_until"] = (now + LEASE).isoformat()
        fresh.config["imap_state"] = state
        ChannelAccount.objects.filter(pk=account.pk).update(config=fresh.config)
    account.config["imap_state"] = state
    return True


def sync(account: ChannelAccount, *, limit: int | None = None) -> SyncReport:
    """Fetch every mail that arrived since the last sync into the inbox; SyncError on failure."""
    report = SyncReport()
    folder = str(account.config.get("imap_folder") or "INBOX")
    max_bytes = int(account.config.get("max_message_bytes") or DEFAULT_MAX_MESSAGE_BYTES)
    conn = connect(account)
    try:
        uidvalidity = _select(conn, folder)
        state = account.config.get("imap_state") or {}
        last_uid = int(state.get("last_uid") or 0)
        if state.get("uidvalidity") and int(state["uidvalidity"]) != uidvalidity:
            logger.warning("account %s: UIDVALIDITY changed, fetching %s again", account.pk, folder)
            last_uid = 0
            report.resynced = True
        if state.get("uidvalidity") != uidvalidity or report.resynced:
            save_state(account, uidvalidity=uidvalidity, last_uid=last_uid)
        uids = _uids_after(conn, last_uid)
        if limit is not None:
            uids = uids[:limit]
        for start in range(0, len(uids), BATCH):
            batch = uids[start : start + BATCH]
            sizes = {
                uid: int(m.group(1)) if (m := _FETCH_SIZE.search(line)) else 0
                for uid, (line, _) in _fetch(conn, batch, "(UID RFC822.SIZE)").items()
            }
            small = [u for u in batch if sizes.get(u, 0) <= max_bytes]
            bodies = _fetch(conn, small, "(UID BODY.PEEK[])") if small else {}
            for uid in batch:
                if uid not in sizes:
                    continue  # expunged meanwhile
                if uid in bodies:
                    outcome = inbound.receive(account, bodies[uid][1]).result
                else:
                    head = _fetch(conn, [uid], "(UID BODY.PEEK[HEADER])").get(uid, (b"", b""))[1]
                    do_quarantine(
                        account,
                        f"mail too large: {sizes[uid]} bytes (limit {max_bytes}); headers kept",
                        head,
                    )
                    outcome = "quarantined"
                report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
                report.fetched += 1
                _after_processing(conn, account, uid)
                save_state(account, last_uid=uid)
                report.last_uid = uid
        report.uidvalidity = uidvalidity
        report.last_uid = report.last_uid or last_uid
    except (imaplib.IMAP4.abort, OSError) as exc:
        raise SyncError(f"IMAP: connection lost ({_text(exc)})") from exc
    except imaplib.IMAP4.error as exc:
        raise SyncError(f"IMAP: {_text(exc)}") from exc
    finally:
        _logout(conn)
    return report


def idle(conn: imaplib.IMAP4, seconds: float) -> bool:
    """Wait in IDLE (RFC 2177) up to `seconds`; True as soon as the server announces new mail.

    The socket is watched with select() rather than a read timeout: a timed-out read leaves
    imaplib's buffered file unusable. Servers drop an IDLE after 30 minutes: keep `seconds` lower.
    """
    if "IDLE" not in conn.capabilities:
        return False
    tag = conn._new_tag()  # imaplib has no IDLE command of its own (before Python 3.14)
    conn.send(tag + b" IDLE\r\n")
    if not conn.readline().startswith(b"+"):
        raise SyncError("IMAP: the server refused IDLE")
    deadline = time.monotonic() + seconds
    announced = False
    try:
        while not announced:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or lanes.stopping():  # a stopping worker ends the IDLE cleanly
                break
            readable, _, _ = select.select([conn.sock], [], [], min(remaining, 1.0))
            if not readable:
                continue
            line = conn.readline()
            if not line:
                raise imaplib.IMAP4.abort("connection closed during IDLE")
            announced = bool(re.match(rb"\* \d+ (EXISTS|RECENT)", line))
    finally:
        conn.send(b"DONE\r\n")
        while True:
            line = conn.readline()
            if not line:
                raise imaplib.IMAP4.abort("connection closed ending IDLE")
            if line.startswith(tag):
                break
    return announced


def sync_and_wait(account: ChannelAccount, seconds: float) -> SyncReport:
    """Sync, then wait in IDLE up to `seconds` and sync again as soon as mail arrives.

    One wake-up per call: the worker is then free again, and the clock queues the next round.
    """
    report = sync(account)
    conn = connect(account)
    try:
        _select(conn, str(account.config.get("imap_folder") or "INBOX"))
        # Mail that arrived between the sync and the SELECT is not announced in IDLE: look first.
        last_uid = int((account.config.get("imap_state") or {}).get("last_uid") or 0)
        arrived = bool(_uids_after(conn, last_uid)) or idle(conn, seconds)
    except (imaplib.IMAP4.abort, OSError) as exc:
        raise SyncError(f"IMAP: connection lost in IDLE ({_text(exc)})") from exc
    finally:
        _logout(conn)
    if arrived:
        more = sync(account)
        report.fetched += more.fetched
        for key, value in more.outcomes.items():
            report.outcomes[key] = report.outcomes.get(key, 0) + value
        report.last_uid = more.last_uid or report.last_uid
    return report


def check(account: ChannelAccount) -> str:
    """The "test connection" check: log in and open the folder; SyncError says what failed."""
    conn = connect(account)
    try:
        folder = str(account.config.get("imap_folder") or "INBOX")
        _select(conn, folder)
        return f"IMAP: logged in and opened {folder!r}"
    finally:
        _logout(conn)
