"""Decoding mail text as Japanese mail really arrives: mislabelled, extended, or not labelled at all.

Why our own code and not a generic detector: the cases that matter here are few and specific
(PLATFORMS.md, Email). Mail labelled ISO-2022-JP from Windows clients carries NEC/IBM extension
characters (CP50220: ①, ㈱, ～) that Python's iso2022_jp codecs refuse; converting the JIS
segments to Shift_JIS and decoding as cp932 recovers them. "Shift_JIS" is really cp932. Unlabelled
or mislabelled 8-bit text is nearly always UTF-8, cp932 or EUC-JP, and a strict trial of those
three, scored by how Japanese the result reads, beats a general-purpose detector on the short
texts of headers and one-line mails.
"""

from __future__ import annotations

import codecs
import re

# Labels seen in the wild, mapped to the codec that actually decodes what those senders send.
_ALIASES = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "s-jis": "cp932",
    "ms_kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "cp932": "cp932",
    "ms932": "cp932",
    "euc-jp": "euc_jp",
    "x-euc-jp": "euc_jp",
    "eucjp": "euc_jp",
    "iso-2022-jp": "iso2022_jp",
    "iso-2022-jp-1": "iso2022_jp",
    "iso-2022-jp-ms": "iso2022_jp",
    "cp50220": "iso2022_jp",
    "cp50221": "iso2022_jp",
    "cp50222": "iso2022_jp",
    "csiso2022jp": "iso2022_jp",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "gb2312": "gbk",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    # Senders who say Latin-1 mean Windows-1252 (the WHATWG encoding standard does the same).
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "ascii",
    "ascii": "ascii",
}

# Labels that carry no information about the bytes.
_UNKNOWN = {"", "unknown-8bit", "x-unknown", "unknown", "default", "8bit", "charset", "none"}

_LATIN_LIKE = ("ascii", "cp1252")


def codec_for(label: str | None) -> str | None:
    """The Python codec for a charset label, or None if the label says nothing usable."""
    label = (label or "").strip().strip("\"'").lower()
    if label in _UNKNOWN:
        return None
    if label in _ALIASES:
        return _ALIASES[label]
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_iso2022jp(data: bytes) -> str:
    """Decode ISO-2022-JP strictly, falling back to CP50220 (the Windows extensions).

    Raises UnicodeDecodeError if the bytes are not ISO-2022-JP at all (8-bit bytes, bad escapes).
    """
    try:
        return data.decode("iso2022_jp")
    except UnicodeDecodeError:
        pass
    return _jis_to_sjis(data).decode("cp932")


_ESC_SEQ = re.compile(rb"\x1b(\(B|\(J|\(I|\$@|\$B|\$\(D|\$\(Q|\$\(O|&@\x1b\$B)")


def _jis_to_sjis(data: bytes) -> bytes:
    """Rewrite ISO-2022-JP (and CP50220's SO/SI and ESC ( I kana) as Shift_JIS bytes."""
    out = bytearray()
    mode = "ascii"
    shifted = False  # SO ... SI: half-width katakana (CP50221/CP50222 style)
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == 0x1B:
            m = _ESC_SEQ.match(data, i)
            if not m:
                raise UnicodeDecodeError("iso2022_jp", data, i, i + 1, "unknown escape sequence")
            seq = m.group(1)
            mode = {b"(B": "ascii", b"(J": "ascii", b"(I": "kana"}.get(seq, "jis")
            i = m.end()
            continue
        if b == 0x0E:
            shifted = True
            i += 1
            continue
        if b == 0x0F:
            shifted = False
            i += 1
            continue
        if b >= 0x80:
            raise UnicodeDecodeError("iso2022_jp", data, i, i + 1, "8-bit byte in a 7-bit encoding")
        if b in (0x0A, 0x0D):
            # A line break resets to ASCII in practice (RFC 1468 requires it before the break).
            out.append(b)
            i += 1
            continue
        if shifted or mode == "kana":
            if 0x21 <= b <= 0x5F:
                out.append(b + 0x80)
            else:
                out.append(b)
            i += 1
            continue
        if mode == "jis":
            if i + 1 >= n:
                raise UnicodeDecodeError(
                    "iso2022_jp", data, i, i + 1, "truncated double-byte character"
                )
            j1, j2 = b, data[i + 1]
            if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
                raise UnicodeDecodeError("iso2022_jp", data, i, i + 2, "not a JIS X 0208 character")
            if j1 % 2:
                s2 = j2 + 0x1F + (1 if j2 >= 0x60 else 0)
            else:
                s2 = j2 + 0x7E
            s1 = ((j1 - 0x21) >> 1) + 0x81
            if s1 > 0x9F:
                s1 += 0x40
            out += bytes((s1, s2))
            i += 2
            continue
        out.append(b)
        i += 1
    return bytes(out)


def _japanese_score(text: str) -> float:
    """How much a decoded text reads like Japanese (kana, common kanji) rather than mojibake."""
    if not text:
        return 0.0
    score = 0.0
    for ch in text:
        o = ord(ch)
        if 0x3040 <= o <= 0x30FF:  # hiragana, katakana
            score += 2
        elif 0x4E00 <= o <= 0x9FFF:  # CJK ideographs
            score += 1
        elif 0x3000 <= o <= 0x303F or 0xFF01 <= o <= 0xFF5E:  # Japanese punctuation, full-width
            score += 1
        elif 0xFF61 <= o <= 0xFF9F:  # half-width katakana: typical of EUC-JP read as cp932
            score -= 2
        elif o < 0x80:
            continue
        elif 0xE000 <= o <= 0xF8FF or o == 0xFFFD:  # private use: typical of a wrong guess
            score -= 3
        else:
            score -= 1
    return score


def detect(data: bytes) -> str:
    """Decode unlabelled bytes: ISO-2022-JP by its escapes, else UTF-8, else the best of cp932/EUC-JP."""
    if b"\x1b$" in data or b"\x1b(" in data:
        try:
            return decode_iso2022jp(data)
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    candidates = []
    for codec in ("cp932", "euc_jp"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        candidates.append((_japanese_score(text), codec == "cp932", text))
    if candidates:
        return max(candidates)[2]
    return data.decode("cp1252", errors="replace")


def decode(data: bytes, label: str | None) -> str:
    """Decode mail bytes labelled `label`, recovering from wrong and missing labels; never raises."""
    codec = codec_for(label)
    if codec is None:
        return detect(data)
    if codec == "iso2022_jp":
        try:
            return decode_iso2022jp(data)
        except UnicodeDecodeError:
            return detect(data)
    if codec in _LATIN_LIKE and any(b >= 0x80 for b in data):
        # 8-bit text labelled ASCII or Latin-1 is usually UTF-8 or Japanese with a default label.
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        guess = detect(data)
        if _japanese_score(guess) > 0:
            return guess
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        pass
    guess = detect(data)
    if "\ufffd" not in guess:
        return guess
    return data.decode(codec, errors="replace")
