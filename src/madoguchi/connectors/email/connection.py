"""The "test connection" check of a mailbox: each step of IMAP and SMTP, and exactly which failed.

`check_connection(account)` walks the steps a real session takes, in order, and stops a protocol
at its first failure (a later step cannot succeed without it):

    IMAP: config → dns → tcp → tls → auth → folder
    SMTP: config → dns → tcp → tls → auth

Each step is a dict `{"protocol": "imap"|"smtp", "step": …, "ok": True|False|None, "detail": …}`;
`ok` is None for a step that does not apply (no TLS on a loopback test server, no SMTP login).
The details quote the server's own words where it gave any (a refused login's reason, an unknown
folder), because that is what an admin needs to fix the settings.
"""

from __future__ import annotations

import imaplib
import smtplib
import socket
import ssl
from collections.abc import Callable
from typing import Any, NamedTuple

from madoguchi.connectors.email.imap import encode_folder
from madoguchi.connectors.models import ChannelAccount

Step = dict[str, Any]
_IMAP_PORTS = {"tls": 993, "starttls": 143, "none": 143}
_SMTP_PORTS = {"tls": 465, "starttls": 587, "none": 25}


def _step(protocol: str, step: str, ok: bool | None, detail: str) -> Step:
    return {"protocol": protocol, "step": step, "ok": ok, "detail": " ".join(detail.split())[:500]}


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return " ".join(_text(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _tls_context(account: ChannelAccount) -> ssl.SSLContext:
    ca_file = account.config.get("tls_ca_file")
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()


def _network(protocol: str, host: str, port: int, timeout: float) -> list[Step]:
    """The DNS and TCP steps; the list ends with a failed step if one failed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return [_step(protocol, "dns", False, f"{host!r} does not resolve: {exc}")]
    addresses = sorted({str(info[4][0]) for info in infos})
    steps = [_step(protocol, "dns", True, f"{host} → {', '.join(addresses[:4])}")]
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except TimeoutError:
        steps.append(
            _step(protocol, "tcp", False, f"no answer from {host}:{port} in {timeout:g} s")
        )
        return steps
    except OSError as exc:
        steps.append(_step(protocol, "tcp", False, f"cannot connect to {host}:{port}: {exc}"))
        return steps
    steps.append(_step(protocol, "tcp", True, f"connected to {host}:{port}"))
    return steps


class _Server(NamedTuple):
    host: str
    port: int
    security: str
    timeout: float


def _server(
    account: ChannelAccount, protocol: str, ports: dict[str, int], default_security: str
) -> tuple[_Server | None, list[Step]]:
    """The configured server (None if the config, DNS or TCP step failed) and the steps so far."""
    config = account.config
    host = str(config.get(f"{protocol}_host") or "")
    if not host:
        detail = f"no {protocol.upper()} server configured ({protocol}_host)"
        return None, [_step(protocol, "config", False, detail)]
    security = str(config.get(f"{protocol}_security") or default_security)
    port = int(config.get(f"{protocol}_port") or ports.get(security, ports[default_security]))
    timeout = float(config.get(f"{protocol}_timeout") or 20)
    steps = _network(protocol, host, port, timeout)
    return (_Server(host, port, security, timeout) if steps[-1]["ok"] else None), steps


def _tls_ok(protocol: str, security: str) -> Step:
    """The TLS step once the session is secured as configured (or left plain on purpose)."""
    if security == "tls":
        return _step(protocol, "tls", True, "TLS established (implicit TLS)")
    if security == "starttls":
        return _step(protocol, "tls", True, "TLS established (STARTTLS)")
    return _step(protocol, "tls", None, "not encrypted (security 'none')")


def _close(close: Callable[[], object]) -> None:
    try:
        close()
    except Exception:  # already gone: nothing to close
        pass


def check_imap(account: ChannelAccount) -> list[Step]:
    """Connect, secure, log in and open the folder, step by step."""
    server, steps = _server(account, "imap", _IMAP_PORTS, "tls")
    if server is None:
        return steps
    host, port, security, timeout = server
    conn: imaplib.IMAP4 | None = None
    try:
        if security != "tls":
            try:
                conn = imaplib.IMAP4(host, port, timeout=timeout)
            except (imaplib.IMAP4.error, OSError) as exc:
                steps.append(_step("imap", "tcp", False, f"no IMAP greeting: {_text(exc)}"))
                return steps
        try:
            if security == "tls":
                conn = imaplib.IMAP4_SSL(
                    host, port, ssl_context=_tls_context(account), timeout=timeout
                )
            elif security == "starttls":
                assert conn is not None
                conn.starttls(ssl_context=_tls_context(account))
            steps.append(_tls_ok("imap", security))
        except (ssl.SSLError, ssl.CertificateError) as exc:
            steps.append(_step("imap", "tls", False, f"TLS with {host}:{port} failed: {exc}"))
            return steps
        except (imaplib.IMAP4.error, OSError) as exc:
            steps.append(_step("imap", "tls", False, f"the server refused TLS: {_text(exc)}"))
            return steps
        assert conn is not None
        username = str(account.config.get("imap_username") or "")
        try:
            conn.login(username, str(account.secrets.get("imap_password") or ""))
        except imaplib.IMAP4.error as exc:
            steps.append(
                _step("imap", "auth", False, f"login refused for {username!r}: {_text(exc)}")
            )
            return steps
        steps.append(_step("imap", "auth", True, f"logged in as {username!r}"))
        folder = str(account.config.get("imap_folder") or "INBOX")
        typ, data = conn.select(encode_folder(folder), readonly=True)
        if typ != "OK":
            steps.append(_step("imap", "folder", False, f"cannot open {folder!r}: {_text(data)}"))
            return steps
        steps.append(_step("imap", "folder", True, f"opened {folder!r} ({_text(data)} messages)"))
    except (imaplib.IMAP4.abort, OSError) as exc:
        step = ["tls", "auth", "folder"][min(len(steps) - 2, 2)]
        steps.append(_step("imap", step, False, f"connection lost: {_text(exc)}"))
    finally:
        if conn is not None:
            _close(conn.logout)
    return steps


def check_smtp(account: ChannelAccount) -> list[Step]:
    """Connect, secure and log in, step by step (no mail is sent)."""
    server, steps = _server(account, "smtp", _SMTP_PORTS, "starttls")
    if server is None:
        return steps
    host, port, security, timeout = server
    smtp: smtplib.SMTP | None = None
    try:
        if security != "tls":
            try:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
            except smtplib.SMTPConnectError as exc:
                detail = f"the server refused the session: {exc.smtp_code} {_text(exc.smtp_error)}"
                steps.append(_step("smtp", "tcp", False, detail))
                return steps
            except (smtplib.SMTPException, OSError) as exc:
                steps.append(_step("smtp", "tcp", False, f"no SMTP greeting: {exc}"))
                return steps
        try:
            if security == "tls":
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context(account))
            elif security == "starttls":
                assert smtp is not None
                smtp.starttls(context=_tls_context(account))
            steps.append(_tls_ok("smtp", security))
        except (ssl.SSLError, ssl.CertificateError) as exc:
            steps.append(_step("smtp", "tls", False, f"TLS with {host}:{port} failed: {exc}"))
            return steps
        except smtplib.SMTPNotSupportedError as exc:
            steps.append(_step("smtp", "tls", False, f"the server does not offer STARTTLS: {exc}"))
            return steps
        except smtplib.SMTPResponseException as exc:
            detail = f"the server refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            steps.append(_step("smtp", "tls", False, detail))
            return steps
        assert smtp is not None
        username = str(account.config.get("smtp_username") or "")
        if not username:
            steps.append(_step("smtp", "auth", None, "no login configured (smtp_username)"))
            smtp.noop()
            return steps
        try:
            smtp.login(username, str(account.secrets.get("smtp_password") or ""))
        except smtplib.SMTPAuthenticationError as exc:
            detail = f"login refused for {username!r}: {exc.smtp_code} {_text(exc.smtp_error)}"
            steps.append(_step("smtp", "auth", False, detail))
            return steps
        except smtplib.SMTPNotSupportedError as exc:
            steps.append(_step("smtp", "auth", False, f"the server offers no login here: {exc}"))
            return steps
        except smtplib.SMTPException as exc:
            steps.append(_step("smtp", "auth", False, f"login failed: {exc}"))
            return steps
        steps.append(_step("smtp", "auth", True, f"logged in as {username!r}"))
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        step = "tls" if len(steps) == 2 else "auth"
        steps.append(_step("smtp", step, False, f"connection lost: {exc}"))
    finally:
        if smtp is not None:
            _close(smtp.quit)
    return steps


def check_connection(account: ChannelAccount) -> list[dict[str, Any]]:
    """Every step of receiving (IMAP) and sending (SMTP) for this mailbox, in order."""
    return check_imap(account) + check_smtp(account)
