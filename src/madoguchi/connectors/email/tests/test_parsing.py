"""Parsing real-shaped mail: every .eml fixture against its expected parse, and hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from madoguchi.connectors.email import charsets
from madoguchi.connectors.email.inbound import MalformedMail, parse

EML = Path(__file__).parent / "eml"
FIXTURES = sorted(p.stem for p in EML.glob("*.eml"))


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_parses_as_expected(name: str) -> None:
    expected = json.loads((EML / f"{name}.json").read_text())
    raw = (EML / f"{name}.eml").read_bytes()
    if "malformed" in expected:
        with pytest.raises(MalformedMail) as err:
            parse(raw)
        assert str(err.value) == expected["malformed"]
        return
    parsed = parse(raw)
    item = parsed.item
    assert parsed.kind == expected["kind"]
    assert item.external_id == expected["external_id"]
    assert item.author.email == expected["from"]
    assert item.author.external_id == expected["from"].lower()
    assert item.author.display_name == expected["display_name"]
    assert item.subject == expected["subject"]
    assert item.text == expected["text"]
    assert item.html[:60] == expected["html_contains"]
    assert item.reply_to == expected["reply_to"]
    assert item.thread_id == expected["thread_id"]
    assert [[a.filename, a.content_type, len(a.content)] for a in item.attachments] == expected[
        "attachments"
    ]
    assert (item.created_at.isoformat() if item.created_at else None) == expected["created_at"]
    assert item.raw["conversation_token"] == expected["conversation_token"]
    if parsed.bounce:
        got = parsed.bounce.__dict__ | {"reason": parsed.bounce.reason}
        assert {k: got[k] for k in expected["bounce"]} == expected["bounce"]
    assert parsed.auto_reason == expected.get("auto_reason", "")
    assert "\ufffd" not in item.text + item.subject + item.author.display_name


def test_outlook_iso2022jp_with_nec_extensions_is_fully_decoded() -> None:
    item = parse((EML / "iso2022jp_cp50220.eml").read_bytes()).item
    assert item.subject == "①返品について㈱アクメ様"
    assert "商品①と②" in item.text and "9:00～18:00" in item.text


def test_cp932_wave_dash_is_kept_as_cp932_decodes_it() -> None:
    # Shift_JIS labels are decoded as cp932: 0x8160 is U+FF5E, never U+FFFD.
    assert charsets.decode("10時～12時".encode("cp932"), "Shift_JIS") == "10時～12時"


@pytest.mark.parametrize(
    ("data", "label", "expected"),
    [
        ("返品したいです".encode("euc_jp"), None, "返品したいです"),
        ("返品したいです".encode("cp932"), None, "返品したいです"),
        ("返品したいです".encode(), "us-ascii", "返品したいです"),
        ("返品したいです".encode("cp932"), "utf-8", "返品したいです"),
        ("返品したいです".encode("euc_jp"), "iso-8859-1", "返品したいです"),
        ("返品したいです".encode("cp932"), "iso-2022-jp", "返品したいです"),
        ("café".encode("cp1252"), "iso-8859-1", "café"),
        ("返品".encode(), "no-such-charset", "返品"),
    ],
)
def test_mislabelled_and_unlabelled_text_is_recovered(
    data: bytes, label: str | None, expected: str
) -> None:
    assert charsets.decode(data, label) == expected


def test_oversized_attachment_is_dropped_with_a_note(eml) -> None:
    parsed = parse(eml("attachment.eml"), max_attachment_bytes=68)
    assert [a.filename for a in parsed.item.attachments] == ["画面.png"]
    assert parsed.item.raw["dropped_attachments"] == [
        {"filename": "領収書①.pdf", "size": 70, "reason": "too large"}
    ]
    assert "[attachment not kept: 領収書①.pdf (70 bytes, too large)]" in parsed.item.text


def test_deep_mime_nesting_is_malformed_not_a_crash() -> None:
    head = b"From: a@example.com\r\nMessage-ID: <deep@example.com>\r\nMIME-Version: 1.0\r\n"
    body = b""
    for i in range(60):
        body += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
    with pytest.raises(MalformedMail):
        parse(head + body + b"Content-Type: text/plain\r\n\r\nx\r\n")


def test_header_injection_in_a_subject_stays_one_line() -> None:
    raw = (
        b"From: a@example.com\r\nSubject: =?utf-8?q?hi=0D=0ABcc:_victim@example.com?=\r\n\r\nx\r\n"
    )
    item = parse(raw).item
    assert item.subject == "hi Bcc: victim@example.com"
    assert item.author.email == "a@example.com"


def test_huge_text_is_shortened_to_what_ingest_accepts() -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + "あ".encode() * 150_000
    )
    item = parse(raw).item
    assert len(item.text) <= 100_000 and item.text.endswith("[message shortened]")


_header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x30FF), max_size=40
)


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=200),
            _header_text.map(lambda t: t.encode("utf-8", "replace")),
            st.sampled_from(
                [
                    b"From: =?iso-2022-jp?B?GyRCJCIbKEI=?= <x@example.com>\r\n",
                    b"Content-Type: multipart/mixed; boundary=zz\r\n",
                    b"--zz\r\n",
                    b"Content-Transfer-Encoding: base64\r\n",
                    b"Content-Type: text/plain; charset=\x1b$B\r\n",
                    b"Subject: =?utf-8?b?broken\r\n",
                    b"\r\n",
                    b"Content-Type: multipart/report; report-type=delivery-status; boundary=zz\r\n",
                    b"Content-Type: message/rfc822\r\n",
                    b'\x1b$B$"\x1b(B\r\n',
                ]
            ),
        ),
        max_size=25,
    )
)
def test_any_bytes_parse_or_raise_malformed(chunks: list[bytes]) -> None:
    raw = b"".join(chunks)
    try:
        parsed = parse(raw)
    except MalformedMail:
        return
    assert parsed.item.external_id
