"""Keeping a mailbox in sync against a real IMAP server (Debian's dovecot on loopback)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from madoguchi.connectors.email import imap, tasks
from madoguchi.connectors.email.fake import Dovecot
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.testing import worker_stopping
from madoguchi.inbox.models import Message
from madoguchi.ingest.models import Quarantine

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Dovecot.available(),
        reason="dovecot is not installed (scripts/test.sh installs Debian's dovecot-imapd)",
    ),
]
_users = itertools.count(1)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with Dovecot() as server:
        yield server


@pytest.fixture
def imap_user(dovecot: Dovecot) -> str:
    """A fresh, empty mailbox on the server for each test (any user name logs in)."""
    return f"user{next(_users)}"


@pytest.fixture
def synced(mailbox: ChannelAccount, dovecot: Dovecot, imap_user: str) -> ChannelAccount:
    mailbox.config.update(
        imap_host="127.0.0.1",
        imap_port=dovecot.port,
        imap_security="none",
        imap_username=imap_user,
        imap_timeout=30,
    )
    mailbox.secrets["imap_password"] = dovecot.password
    mailbox.save()
    return mailbox


def _mail(n: int, *, subject: str = "問い合わせ") -> bytes:
    return (
        f"From: Customer {n} <c{n}@example.com>\r\nTo: support@acme.example\r\n"
        f"Subject: =?utf-8?b?44GK5ZWP44GE5ZCI44KP44Gb?= {n}\r\nMessage-ID: <m{n}@example.com>\r\n"
        "Content-Type: text/plain; charset=iso-2022-jp\r\n\r\n"
    ).encode() + "こんにちは".encode("iso2022_jp")


def _ids(account: ChannelAccount) -> list[str]:
    return sorted(
        Message.objects.filter(channel_account=account).values_list("external_id", flat=True)
    )


def test_new_mail_is_fetched_once_and_flagged_seen(synced, dovecot, imap_user) -> None:
    uids = [dovecot.append(_mail(n), user=imap_user) for n in (1, 2)]
    report = imap.sync(synced)
    assert report.fetched == 2 and report.outcomes == {"created": 2}
    assert _ids(synced) == ["m1@example.com", "m2@example.com"]
    assert all("\\Seen" in dovecot.flags(uid, user=imap_user) for uid in uids)
    assert Message.objects.get(external_id="m1@example.com").text == "こんにちは"
    assert imap.sync(synced).fetched == 0  # UID n:* returns the last mail again: it is dropped
    dovecot.append(_mail(3), user=imap_user)
    assert imap.sync(synced).fetched == 1
    assert synced.config["imap_state"]["last_uid"] == 3


def test_a_restart_continues_where_the_last_sync_stopped(synced, dovecot, imap_user) -> None:
    dovecot.append(_mail(1), user=imap_user)
    imap.sync(synced)
    # Another client reads the next mail first: we go by UID, not by the \Seen flag.
    dovecot.append(_mail(2), user=imap_user, seen=True)
    fresh = ChannelAccount.objects.get(pk=synced.pk)  # as a new worker process would load it
    assert imap.sync(fresh).fetched == 1
    assert _ids(synced) == ["m1@example.com", "m2@example.com"]


def test_a_new_uidvalidity_refetches_everything_without_duplicates(
    synced, dovecot, imap_user
) -> None:
    for n in (1, 2):
        dovecot.append(_mail(n), user=imap_user)
    imap.sync(synced)
    imap.save_state(synced, uidvalidity=12345)  # the server's mailbox was recreated meanwhile
    report = imap.sync(synced)
    assert report.resynced and report.fetched == 2 and report.outcomes == {"duplicate": 2}
    assert _ids(synced) == ["m1@example.com", "m2@example.com"]
    assert synced.config["imap_state"]["uidvalidity"] != 12345


def test_processed_mail_can_be_moved_to_another_folder(synced, dovecot, imap_user) -> None:
    synced.config.update(imap_after="move", imap_move_to="Processed")
    synced.save()
    dovecot.append(_mail(1), user=imap_user)
    assert imap.sync(synced).fetched == 1
    assert dovecot.count(user=imap_user) == 0
    assert dovecot.count(user=imap_user, folder="Processed") == 1


def test_a_folder_with_a_japanese_name(synced, dovecot, imap_user) -> None:
    conn = dovecot.connect(imap_user)
    assert conn.create(imap.encode_folder("サポート"))[0] == "OK"
    conn.logout()
    assert imap.encode_folder("サポート & 窓口") == '"&MLUw3TD8MMg- &- &epNT4w-"'
    dovecot.append(_mail(1), user=imap_user, folder=imap.encode_folder("サポート"))
    synced.config["imap_folder"] = "サポート"
    synced.save()
    assert imap.sync(synced).fetched == 1


def test_bad_mail_is_quarantined_and_does_not_block_the_mail_behind_it(
    synced, dovecot, imap_user
) -> None:
    dovecot.append(b"To: support@acme.example\r\nSubject: no sender\r\n\r\nx\r\n", user=imap_user)
    dovecot.append(_mail(2, subject="x" * 10), user=imap_user)
    synced.config["max_message_bytes"] = 5000
    synced.save()
    dovecot.append(_mail(3) + b"x" * 6000, user=imap_user)
    dovecot.append(_mail(4), user=imap_user)
    report = imap.sync(synced)
    assert report.outcomes == {"quarantined": 2, "created": 2}
    assert _ids(synced) == ["m2@example.com", "m4@example.com"]
    reasons = " | ".join(
        Quarantine.objects.filter(channel_account=synced).values_list("reason", flat=True)
    )
    assert "no From header" in reasons and "mail too large" in reasons
    assert synced.config["imap_state"]["last_uid"] == 4


def test_the_task_records_what_failed_on_the_account(synced) -> None:
    synced.secrets["imap_password"] = "wrong"
    synced.save()
    assert "login refused" in tasks.sync_mailbox.call(synced.pk)["error"]
    synced.refresh_from_db()
    assert synced.last_error.startswith("IMAP: login refused") and synced.last_error_at is not None
    synced.secrets["imap_password"] = Dovecot().password
    synced.config["imap_folder"] = "NoSuchFolder"
    synced.save()
    assert "cannot open folder 'NoSuchFolder'" in tasks.sync_mailbox.call(synced.pk)["error"]
    synced.config["imap_folder"] = "INBOX"
    synced.save()
    assert tasks.sync_mailbox.call(synced.pk)["fetched"] == 0
    synced.refresh_from_db()
    assert synced.last_error == ""  # a working sync clears the IMAP error


def test_the_clock_queues_only_mailboxes_that_are_due(synced, dovecot, imap_user) -> None:
    assert tasks.poll_mailboxes.call() == {"mailboxes_queued": 1}
    tasks.sync_mailbox.call(synced.pk)
    assert tasks.poll_mailboxes.call() == {"mailboxes_queued": 0}  # synced a moment ago
    assert imap.claim(synced) is True
    assert tasks.sync_mailbox.call(synced.pk) == {
        "skipped": "another worker is syncing this mailbox"
    }


def test_an_unreachable_server_names_the_step_that_failed(synced) -> None:
    synced.config["imap_host"] = "no-such-host.invalid"
    synced.save()
    with pytest.raises(imap.SyncError, match="does not resolve"):
        imap.check(synced)


def test_idle_wakes_up_when_mail_arrives(synced, dovecot, imap_user) -> None:
    import threading

    conn = imap.connect(synced)
    imap._select(conn, "INBOX")
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(imap.idle(conn, 60)))
    waiter.start()
    dovecot.append(_mail(1), user=imap_user)  # from another connection, like a delivery
    waiter.join(timeout=90)
    conn.logout()
    assert result == [True]


def test_idle_returns_false_when_nothing_arrives(synced) -> None:
    conn = imap.connect(synced)
    imap._select(conn, "INBOX")
    assert imap.idle(conn, 0.2) is False
    assert conn.noop()[0] == "OK"  # the connection is still usable after IDLE
    conn.logout()


def test_a_stopping_worker_ends_idle_and_leaves_the_connection_usable(synced) -> None:
    import threading

    conn = imap.connect(synced)
    imap._select(conn, "INBOX")
    result: list[bool] = []
    with worker_stopping(after=0.3):
        waiter = threading.Thread(target=lambda: result.append(imap.idle(conn, 600)))
        waiter.start()
        waiter.join(timeout=30)  # far below the 600 s IDLE: it ended because it was asked to
        assert not waiter.is_alive()
    assert result == [False]
    assert conn.noop()[0] == "OK"
    conn.logout()


def test_sync_and_wait_fetches_mail_that_arrives_while_idling(
    synced, dovecot, imap_user, monkeypatch
) -> None:
    import threading

    dovecot.append(_mail(1), user=imap_user)
    real_sync, deliveries = imap.sync, []

    def sync_then_deliver(account):
        report = real_sync(account)
        if not deliveries:  # new mail lands only after the first sync
            deliveries.append(
                threading.Thread(target=lambda: dovecot.append(_mail(2), user=imap_user))
            )
            deliveries[0].start()
        return report

    monkeypatch.setattr(imap, "sync", sync_then_deliver)
    report = imap.sync_and_wait(synced, 120)  # returns at the wake-up, not after 120 s
    deliveries[0].join(timeout=60)
    assert report.fetched == 2
    assert _ids(synced) == ["m1@example.com", "m2@example.com"]
