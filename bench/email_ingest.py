#!/usr/bin/env python3
"""Email ingest on SQLite: N real-shaped mails (mixed Japanese encodings, 20 % with attachments,
a third of them replies in existing threads) through parse + ingest, and optionally through a
real IMAP server first (dovecot on loopback, as in the tests). Prints messages/s and the share
of the time spent parsing.

    .venv/bin/python bench/email_ingest.py                    # 10,000 mails, parse + ingest
    .venv/bin/python bench/email_ingest.py --imap             # + APPEND to dovecot, then IMAP sync
    .venv/bin/python bench/email_ingest.py --messages 2000    # quicker

Texts come from ../shared/data (LocalgovFAQ questions in Japanese, customer-support tweets in
English); a small built-in list is used when those are absent.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = Path(os.environ.get("MADOGUCHI_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path[:0] = [
    str(ROOT / "src"),
    str(ROOT / "src" / "madoguchi" / "connectors" / "email" / "tests"),
]

from make_fixtures import jis  # noqa: E402  (the fixtures' CP50220 encoder: both write the same bytes)

# (share, label) of body encodings, roughly what a Japanese support mailbox receives.
ENCODINGS = [
    (0.30, "iso-2022-jp"),  # Outlook, Thunderbird defaults in Japan; some with CP50220 characters
    (0.15, "shift_jis"),
    (0.05, "euc-jp"),
    (0.35, "utf-8-alternative"),  # Gmail, Apple Mail: text + HTML
    (0.15, "utf-8-english"),
]


def texts() -> tuple[list[str], list[str]]:
    ja: list[str] = []
    en: list[str] = []
    with contextlib.suppress(OSError):
        corpus = json.loads((DATA / "localgovfaq" / "corpus.json").read_text())
        for entry in corpus.values():
            q = entry.partition("\nAnswer:")[0].removeprefix("Question:").strip()
            if q:
                ja.append(q[:600])
    with (
        contextlib.suppress(OSError),
        open(DATA / "twcs" / "twcs_small_divya-gh.csv", newline="") as f,
    ):
        for row in csv.DictReader(f):
            if row["inbound"] == "True":
                en.append(row["text"][:600])
    return (
        ja or ["サイズが合わないので返品したいです。", "解約の申請方法を教えてください。"],
        en or ["My order never arrived, can you help?", "How do I reset my password?"],
    )


def _jis(text: str) -> bytes:
    """ISO-2022-JP as Windows clients write it (CP50220: NEC extensions allowed)."""
    return jis(text.replace("\u301c", "\uff5e"))


def _ew(text: str, charset: str, data: bytes) -> str:
    return f"=?{charset}?B?{base64.b64encode(data).decode()}?="


def generate(n: int, attachment_share: float, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    ja, en = texts()
    labels = [label for share, label in ENCODINGS for _ in range(int(share * 100))]
    blob = rng.randbytes(48_000)
    mails: list[bytes] = []
    sent_ids: list[str] = []
    for i in range(n):
        label = rng.choice(labels)
        customer = rng.randrange(max(1, n // 5))
        text = rng.choice(en if label == "utf-8-english" else ja)
        subject = text[:30].replace("\n", " ")
        if label == "iso-2022-jp" and rng.random() < 0.3:
            text = "①" + text + "\n㈱お客様相談室 御中"
        headers = [
            f"From: {_ew('', 'UTF-8', f'お客様 {customer}'.encode())} <customer{customer}@example.jp>",
            "To: support@acme.example",
            f"Date: Mon, 23 Nov 2026 {i % 24:02d}:{i % 60:02d}:00 +0900",
            f"Message-ID: <bench-{i}@example.jp>",
            "MIME-Version: 1.0",
        ]
        if sent_ids and rng.random() < 0.33:
            parent = rng.choice(sent_ids)
            headers += [f"In-Reply-To: <{parent}>", f"References: <{parent}>"]
            subject = "Re: " + subject
        sent_ids.append(f"bench-{i}@example.jp")
        if label == "iso-2022-jp":
            headers.append(f"Subject: {_ew('', 'ISO-2022-JP', _jis(subject))}")
            part = (
                b"Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
                + _jis(text)
            )
        elif label == "shift_jis":
            headers.append(f"Subject: {_ew('', 'Shift_JIS', subject.encode('cp932', 'replace'))}")
            part = (
                b"Content-Type: text/plain; charset=Shift_JIS\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64.encodebytes(text.encode("cp932", "replace"))
            )
        elif label == "euc-jp":
            headers.append(f"Subject: {_ew('', 'EUC-JP', subject.encode('euc_jp', 'replace'))}")
            part = (
                b"Content-Type: text/plain; charset=EUC-JP\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64.encodebytes(text.encode("euc_jp", "replace"))
            )
        else:
            headers.append(f"Subject: {_ew('', 'UTF-8', subject.encode())}")
            plain = (
                b"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64.encodebytes(text.encode())
            )
            html = (
                b"Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64.encodebytes(f"<div dir='ltr'><p>{text}</p></div>".encode())
            )
            part = (
                b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n--alt\r\n'
                + plain
                + b"\r\n--alt\r\n"
                + html
                + b"\r\n--alt--\r\n"
            )
        if rng.random() < attachment_share:
            size = rng.randrange(8_000, len(blob))
            attachment = (
                b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="document.pdf"\r\n'
                b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(blob[:size])
            )
            body = (
                b'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n--mix\r\n'
                + part
                + b"\r\n--mix\r\n"
                + attachment
                + b"\r\n--mix--\r\n"
            )
        else:
            body = part
        mails.append("\r\n".join(headers).encode() + b"\r\n" + body)
    return mails


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--attachments", type=float, default=0.2, help="share of mails with a PDF")
    parser.add_argument(
        "--imap", action="store_true", help="also deliver through dovecot and sync by IMAP"
    )
    parser.add_argument("--imap-messages", type=int, default=0, help="only the first N through IMAP")
    args = parser.parse_args()

    os.environ.setdefault("MADOGUCHI_DATA_DIR", tempfile.mkdtemp(prefix="madoguchi-bench."))
    os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "madoguchi.config.settings"
    import django

    django.setup()
    from django.core.management import call_command

    from madoguchi.accounts import actions as account_actions
    from madoguchi.accounts.models import Brand
    from madoguchi.connectors.email import imap, inbound
    from madoguchi.connectors.models import ChannelAccount
    from madoguchi.inbox.models import Conversation, Message

    call_command("migrate", verbosity=0)
    print(
        f"generating {args.messages:,} mails ({args.attachments:.0%} with a PDF attachment)...",
        flush=True,
    )
    mails = all_mails = generate(args.messages, args.attachments)
    megabytes = sum(len(m) for m in mails) / 1e6

    # CPU seconds as well as wall seconds: on a shared, loaded machine the CPU figure is the
    # one that says what the code costs.
    t, c = time.perf_counter(), time.process_time()
    for raw in mails:
        inbound.parse(raw)
    parse_s, parse_cpu = time.perf_counter() - t, time.process_time() - c

    ws = account_actions.do_create_workspace(f"Bench {time.time_ns()}")
    account = ChannelAccount.objects.create(
        workspace=ws,
        brand=Brand.objects.get(workspace=ws),
        kind="email",
        name="support@acme.example",
        config={"address": "support@acme.example"},
    )
    outcomes: dict[str, int] = {}
    t, c = time.perf_counter(), time.process_time()
    for raw in mails:
        result = inbound.receive(account, raw).result
        outcomes[result] = outcomes.get(result, 0) + 1
    ingest_s, ingest_cpu = time.perf_counter() - t, time.process_time() - c
    n = len(mails)
    print(f"mails: {n:,} ({megabytes:.1f} MB), outcomes {outcomes}")
    print(
        f"conversations: {Conversation.objects.filter(channel_account=account).count():,}, "
        f"messages: {Message.objects.filter(channel_account=account).count():,}"
    )
    print(f"parse only:      {n / parse_s:7.0f} mails/s wall, {n / parse_cpu:7.0f} per CPU-second")
    print(
        f"parse + ingest:  {n / ingest_s:7.0f} mails/s wall, {n / ingest_cpu:7.0f} per CPU-second"
    )
    print(f"parse share:     {parse_cpu / ingest_cpu:.0%} of the CPU time of parse + ingest")

    if args.imap:
        from madoguchi.connectors.email.fake import Dovecot

        with Dovecot() as server:
            mails = mails[: args.imap_messages or None]
            n = len(mails)
            conn = server.connect("bench")
            t = time.perf_counter()
            for raw in mails:
                conn.append("INBOX", None, None, raw)
            append_s = time.perf_counter() - t
            conn.logout()
            ws2 = account_actions.do_create_workspace(f"Bench IMAP {time.time_ns()}")
            account2 = ChannelAccount.objects.create(
                workspace=ws2,
                brand=Brand.objects.get(workspace=ws2),
                kind="email",
                name="support@acme.example",
                config={
                    "address": "support@acme.example",
                    "imap_host": "127.0.0.1",
                    "imap_port": server.port,
                    "imap_security": "none",
                    "imap_username": "bench",
                },
                secrets={"imap_password": server.password},
            )
            t, c = time.perf_counter(), time.process_time()
            report = imap.sync(account2)
            sync_s, sync_cpu = time.perf_counter() - t, time.process_time() - c
        print(
            f"IMAP APPEND:      {n / append_s:8.0f} mails/s  ({append_s:.1f} s, not part of the sync)"
        )
        print(
            f"IMAP sync (fetch + parse + ingest + flag \\Seen), {report.fetched:,} mails: "
            f"{report.fetched / sync_s:.0f} mails/s wall, {report.fetched / sync_cpu:.0f} per CPU-second "
            f"of this process (dovecot's not counted); parse share {parse_cpu * n / len(all_mails) / sync_cpu:.0%}"
        )


if __name__ == "__main__":
    main()
