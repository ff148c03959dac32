"""Where the new part of a mail ends: quoted history and signatures, folded away in the inbox.

The whole text stays stored; `fold(text)` only says where the quoted history or the signature
starts, so the conversation shows what the customer wrote now and a toggle for the rest.

Recognised (the first one wins, and only after some text of the mail's own):
- attribution lines: "On Mon, 23 Nov 2026 at 9:00, Yui <yui@example.com> wrote:" (also wrapped
  over two lines, as Gmail does for long names), Thunderbird's "2026/11/23 9:00, Yui wrote:",
  Japanese "佐藤さんは書きました:", Gmail's Japanese "2026年11月23日(月) 9:00 佐藤 <yui@…>:";
- separators: "-----Original Message-----", "----- 元のメッセージ -----", "----- Original Message
  -----", Outlook's underscore rule followed by "From:" / "差出人:";
- a trailing block of ">" quoted lines (replies written between quoted lines are left alone:
  the answer only makes sense next to the question it answers);
- the "-- " signature separator (RFC 3676 §4.3), also without its trailing space, as many
  clients strip it.
"""

from __future__ import annotations

import re

_ATTRIBUTION = [
    re.compile(r"^\s*On\s.{1,300}\swrote:\s*$", re.IGNORECASE),
    re.compile(r"^\s*\d{4}[/.-]\d{1,2}[/.-]\d{1,2}.{0,200}\swrote:\s*$", re.IGNORECASE),
    re.compile(r"^.{0,200}さんは書きました\s*[:：]?\s*$"),
    re.compile(r"^.{0,200}(?:が|は)書きました\s*[:：]\s*$"),
    re.compile(r"^\s*\d{4}年\s*\d{1,2}月\s*\d{1,2}日.{0,200}<[^<>\s]+@[^<>\s]+>\s*[:：]?\s*$"),
    re.compile(r"^\s*\d{4}年\s*\d{1,2}月\s*\d{1,2}日.{0,200}(?:書きました|wrote)\s*[:：]?\s*$"),
]
_SEPARATOR = [
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*元の?メッセージ\s*-{2,}\s*$"),
    re.compile(r"^\s*-{2,}\s*(?:Reply|返信)\s*(?:Message|メッセージ)?\s*-{2,}\s*$", re.IGNORECASE),
]
_OUTLOOK_RULE = re.compile(r"^\s*_{20,}\s*$")
_OUTLOOK_FROM = re.compile(r"^\s*(?:From|差出人|送信者)\s*[:：]")
_QUOTED = re.compile(r"^\s*>")
_SIGNATURE = re.compile(r"^-- ?$")


def _starts(text: str) -> list[int]:
    """The offset of each line's start."""
    offsets, at = [], 0
    for line in text.split("\n"):
        offsets.append(at)
        at += len(line) + 1
    return offsets


def _history_line(lines: list[str]) -> int | None:
    """The index of the first line where quoted history begins, if any."""
    for i, line in enumerate(lines):
        if any(p.match(line) for p in _SEPARATOR):
            return i
        if any(p.match(line) for p in _ATTRIBUTION):
            return i
        # "On …, Long Name <\naddress> wrote:" wrapped by the sender's client.
        if i + 1 < len(lines) and line.lstrip().lower().startswith("on "):
            joined = f"{line} {lines[i + 1]}"
            if len(line) < 300 and _ATTRIBUTION[0].match(joined):
                return i
        if _OUTLOOK_RULE.match(line) and i + 1 < len(lines) and _OUTLOOK_FROM.match(lines[i + 1]):
            return i
    return None


def _trailing_quote_line(lines: list[str]) -> int | None:
    """The first line of a ">" block that runs to the end (blank lines and a signature allowed)."""
    start = None
    for i, line in enumerate(lines):
        if _SIGNATURE.match(line):
            break
        if _QUOTED.match(line):
            if start is None:
                start = i
        elif line.strip():
            start = None  # the customer wrote below the quote: an interleaved reply
    return start


def _signature_line(lines: list[str]) -> int | None:
    for i, line in enumerate(lines):
        if _SIGNATURE.match(line):
            return i
    return None


def fold(text: str) -> int | None:
    """The offset in `text` where quoted history or the signature begins; None when the whole
    text is the customer's own (or when nothing of their own would be left to show)."""
    if not text:
        return None
    lines = text.split("\n")
    candidates = [
        i
        for i in (_history_line(lines), _trailing_quote_line(lines), _signature_line(lines))
        if i is not None
    ]
    if not candidates:
        return None
    line = min(candidates)
    head = text[: _starts(text)[line]].rstrip()
    # Nothing of the customer's own before it: show everything rather than an empty message.
    return len(head) if head else None


def fold_info(text: str) -> dict[str, object] | None:
    """What the inbox stores in `Message.raw["fold"]`: the split point, and the same as the
    slice arguments Django's `slice` filter takes, so the template needs no tag of its own."""
    at = fold(text)
    if at is None:
        return None
    return {"at": at, "head": f":{at}", "tail": f"{at}:"}
