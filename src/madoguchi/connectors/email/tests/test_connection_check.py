"""The "test connection" check names the step that fails, against real servers on loopback
(dovecot for IMAP, aiosmtpd for SMTP with STARTTLS and AUTH), and only admins may run it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from madoguchi.conftest import csrf_post
from madoguchi.connectors.email.connection import check_connection, check_imap, check_smtp
from madoguchi.connectors.email.fake import Dovecot, SmtpServer, free_port
from madoguchi.connectors.models import ChannelAccount

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Dovecot.available(),
        reason="dovecot is not installed (scripts/test.sh installs Debian's dovecot-imapd)",
    ),
]


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with Dovecot() as server:
        yield server


def steps(result: list[dict]) -> list[tuple[str, str, bool | None]]:
    return [(s["protocol"], s["step"], s["ok"]) for s in result]


def _imap(mailbox: ChannelAccount, dovecot: Dovecot, **config: object) -> ChannelAccount:
    mailbox.config.update(
        {
            "imap_host": "127.0.0.1",
            "imap_port": dovecot.port,
            "imap_security": "none",
            "imap_username": "checker",
            "imap_timeout": 30,
        }
        | config
    )
    mailbox.secrets["imap_password"] = dovecot.password
    mailbox.save()
    return mailbox


def _smtp(mailbox: ChannelAccount, smtp: SmtpServer, **config: object) -> ChannelAccount:
    mailbox.config.update(
        {
            "smtp_host": "localhost",
            "smtp_port": smtp.port,
            "smtp_security": "starttls",
            "smtp_username": "support",
            "smtp_timeout": 30,
            "tls_ca_file": smtp.ca_file,
        }
        | config
    )
    mailbox.secrets["smtp_password"] = "smtp-pass"
    mailbox.save()
    return mailbox


def test_a_working_mailbox_passes_every_step(mailbox, dovecot) -> None:
    with SmtpServer(starttls=True, username="support", password="smtp-pass") as smtp:
        _imap(mailbox, dovecot)
        _smtp(mailbox, smtp)
        result = check_connection(mailbox)
    assert steps(result) == [
        ("imap", "dns", True),
        ("imap", "tcp", True),
        ("imap", "tls", None),  # the test server speaks plain IMAP on loopback
        ("imap", "auth", True),
        ("imap", "folder", True),
        ("smtp", "dns", True),
        ("smtp", "tcp", True),
        ("smtp", "tls", True),
        ("smtp", "auth", True),
    ]


def test_a_wrong_imap_password_fails_at_login(mailbox, dovecot) -> None:
    _imap(mailbox, dovecot)
    mailbox.secrets["imap_password"] = "wrong"
    result = check_imap(mailbox)
    assert steps(result)[-1] == ("imap", "auth", False)
    assert "'checker'" in result[-1]["detail"] and "AUTHENTICATIONFAILED" in result[-1]["detail"]


def test_a_missing_folder_fails_at_the_folder(mailbox, dovecot) -> None:
    result = check_imap(_imap(mailbox, dovecot, imap_folder="受信箱/存在しない"))
    assert steps(result)[-1] == ("imap", "folder", False)
    assert "受信箱/存在しない" in result[-1]["detail"]


def test_starttls_on_a_server_without_it_fails_at_tls(mailbox, dovecot) -> None:
    result = check_imap(_imap(mailbox, dovecot, imap_security="starttls"))
    assert steps(result)[-1] == ("imap", "tls", False)


def test_a_name_that_does_not_resolve_fails_at_dns(mailbox) -> None:
    mailbox.config.update(imap_host="mail.does-not-exist.invalid", smtp_host="smtp.nowhere.invalid")
    result = check_connection(mailbox)
    assert steps(result) == [("imap", "dns", False), ("smtp", "dns", False)]
    assert "mail.does-not-exist.invalid" in result[0]["detail"]


def test_a_closed_port_fails_at_tcp(mailbox) -> None:
    port = free_port()
    mailbox.config.update(imap_host="127.0.0.1", imap_port=port, imap_timeout=5)
    result = check_imap(mailbox)
    assert steps(result) == [("imap", "dns", True), ("imap", "tcp", False)]
    assert f"127.0.0.1:{port}" in result[-1]["detail"]


def test_an_untrusted_certificate_fails_at_tls(mailbox) -> None:
    with SmtpServer(starttls=True, username="support", password="smtp-pass") as smtp:
        result = check_smtp(_smtp(mailbox, smtp, tls_ca_file=""))
    assert steps(result)[-1] == ("smtp", "tls", False)
    assert "CERTIFICATE_VERIFY_FAILED" in result[-1]["detail"]


def test_a_wrong_smtp_password_fails_at_login_with_the_servers_reply(mailbox) -> None:
    with SmtpServer(starttls=True, username="support", password="smtp-pass") as smtp:
        _smtp(mailbox, smtp)
        mailbox.secrets["smtp_password"] = "wrong"
        result = check_smtp(mailbox)
    assert steps(result)[-1] == ("smtp", "auth", False)
    assert "535" in result[-1]["detail"]


def test_a_mailbox_without_servers_says_what_is_missing(mailbox) -> None:
    assert steps(check_connection(mailbox)) == [
        ("imap", "config", False),
        ("smtp", "config", False),
    ]


def test_only_admins_of_the_workspace_run_the_test(cast, mailbox, client_for) -> None:
    url = f"/connectors/email/{mailbox.pk}/test/"
    assert client_for(cast.agent).get(url).status_code == 403
    assert client_for(cast.manager).get(url).status_code == 403
    assert client_for(cast.agent_b).get(url).status_code == 403
    admin = client_for(cast.admin)
    assert 'id="run-test"' in admin.get(url).content.decode()
    page = csrf_post(admin, url).content.decode()
    assert "step-imap-config" in page and "no IMAP server configured" in page
    channels = admin.get("/channels/").content.decode()
    assert url in channels  # the Channels page links to it


def test_an_admin_of_another_workspace_cannot_test_this_mailbox(cast, mailbox, client_for) -> None:
    from madoguchi.accounts import actions as account_actions

    admin_b = account_actions.do_create_user(
        "admin@beta.example", workspace=cast.ws_b, role="admin", password="x" * 12
    )
    assert client_for(admin_b).get(f"/connectors/email/{mailbox.pk}/test/").status_code == 404
