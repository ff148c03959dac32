"""Real mail servers on loopback for tests, benchmarks and the demo.

`SmtpServer`: aiosmtpd in a thread (optionally STARTTLS and AUTH), recording what it accepts and
answering RCPT/DATA with a reply we choose, to play a refusing server.

`Dovecot`: Debian's dovecot-imapd started unprivileged (`dovecot -F -c <config>`) on a loopback
port with a throw-away maildir and one static user (PLATFORMS.md, Email). `Dovecot.available()`
says whether the binary is installed.
"""

from __future__ import annotations

import imaplib
import logging
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Block until something listens on 127.0.0.1:port (a loaded machine may take seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"server exited with status {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on 127.0.0.1:{port} after {timeout} s"
                ) from None
            time.sleep(0.05)


def self_signed_cert(directory: Path, host: str = "localhost") -> tuple[Path, Path]:
    """A throw-away certificate and key for 'localhost' (openssl CLI, no Python dependency)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={host}",
            "-addext",
            f"subjectAltName=DNS:{host},IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


# --- SMTP --------------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class _Handler:
    messages: list[Received] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        self.messages.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        )
        return "250 2.0.0 Ok: queued"


class SmtpServer:
    """aiosmtpd on 127.0.0.1: `with SmtpServer() as smtp: ... smtp.messages`."""

    def __init__(self, *, starttls: bool = False, username: str = "", password: str = "") -> None:
        self.handler = _Handler()
        self.port = free_port()
        self.starttls = starttls
        self.username, self.password = username, password
        self._tmp = tempfile.TemporaryDirectory(prefix="mdg-smtp-")
        self.ca_file = ""
        self._controller: Any = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def refuse_recipients(self, reply: str) -> None:
        self.handler.rcpt_reply = reply

    def refuse_data(self, reply: str) -> None:
        self.handler.data_reply = reply

    def __enter__(self) -> SmtpServer:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
        kwargs: dict[str, Any] = {"ready_timeout": 30}
        if self.starttls:
            cert, key = self_signed_cert(Path(self._tmp.name))
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            kwargs.update(tls_context=ctx, require_starttls=True)
            self.ca_file = str(cert)
        if self.username:

            def authenticator(
                server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
            ) -> AuthResult:
                ok = (
                    getattr(auth_data, "login", b"") == self.username.encode()
                    and getattr(auth_data, "password", b"") == self.password.encode()
                )
                return AuthResult(success=ok, handled=False)

            kwargs.update(authenticator=authenticator, auth_require_tls=self.starttls)
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
        self._tmp.cleanup()


# --- IMAP --------------------------------------------------------------------------------------


_DOVECOT_CONF = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal_user}
default_login_user = {login_user}
mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 0
first_valid_gid = 0
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  chroot =
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Processed {{
    auto = create
  }}
}}
"""


class Dovecot:
    """dovecot-imapd on 127.0.0.1 with a throw-away maildir: `with Dovecot() as imap: ...`."""

    def __init__(self, password: str = "secret-imap-password") -> None:
        self.port = free_port()
        self.password = password
        self._tmp = tempfile.TemporaryDirectory(prefix="mdg-dovecot-")
        self.base = Path(self._tmp.name)
        self._proc: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return os.path.exists(DOVECOT)

    def __enter__(self) -> Dovecot:
        uid, gid = os.getuid(), os.getgid()
        user = pwd.getpwuid(uid).pw_name
        login_user = internal_user = user
        if uid == 0:
            # Dovecot's login processes refuse to run as root: use the users its package creates.
            # and mail is never stored as root: it belongs to `nobody` in a home we hand over.
            login_user, internal_user = "dovenull", "dovecot"
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
            self.base.chmod(0o755)
        for sub in ("run", "state", "home"):
            (self.base / sub).mkdir()
        if os.getuid() == 0:
            os.chown(self.base / "home", uid, gid)
        conf = self.base / "dovecot.conf"
        conf.write_text(
            _DOVECOT_CONF.format(
                base=self.base,
                login_user=login_user,
                internal_user=internal_user,
                uid=uid,
                gid=gid,
                password=self.password,
                port=self.port,
            )
        )
        self._proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_for_port(self.port, timeout=60, proc=self._proc)
        except Exception:
            self.__exit__()
            log = (
                (self.base / "dovecot.log").read_text()
                if (self.base / "dovecot.log").exists()
                else ""
            )
            raise RuntimeError(f"dovecot did not start: {log[-2000:]}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=30)
        self._tmp.cleanup()

    def connect(self, user: str = "support") -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        conn.login(user, self.password)
        return conn

    def append(
        self, raw: bytes, *, user: str = "support", folder: str = "INBOX", seen: bool = False
    ) -> int:
        """Deliver a raw mail into a folder; returns its UID (from APPENDUID)."""
        conn = self.connect(user)
        try:
            typ, data = conn.append(folder, "(\\Seen)" if seen else None, None, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
            text = (data[0] or b"").decode()
            # [APPENDUID <uidvalidity> <uid>] (RFC 4315)
            return int(text.split("APPENDUID", 1)[1].split()[1].rstrip("]"))
        finally:
            conn.logout()

    def flags(self, uid: int, *, user: str = "support", folder: str = "INBOX") -> str:
        conn = self.connect(user)
        try:
            conn.select(folder, readonly=True)
            typ, data = conn.uid("FETCH", str(uid), "(FLAGS)")
            return (data[0] or b"").decode() if isinstance(data[0], bytes) else ""
        finally:
            conn.logout()

    def count(self, *, user: str = "support", folder: str = "INBOX") -> int:
        conn = self.connect(user)
        try:
            typ, data = conn.select(folder, readonly=True)
            return int(data[0] or 0)
        finally:
            conn.logout()

    def recreate_inbox(self, *, user: str = "support") -> None:
        """Make the server hand out a new UIDVALIDITY for INBOX (as after a mailbox restore)."""
        maildir = self.base / "home" / user / "Maildir"
        for name in ("dovecot-uidlist", "dovecot-uidvalidity"):
            path = maildir / name
            if path.exists():
                path.unlink()
        for path in maildir.glob("dovecot-uidvalidity.*"):
            path.unlink()
