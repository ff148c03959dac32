"""Article bodies: Markdown rendered to HTML that is safe to show to anyone."""

from __future__ import annotations

import functools
import html
import re

import nh3
from django.utils.html import strip_tags
from django.utils.text import Truncator
from markdown_it import MarkdownIt


@functools.lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    # Raw HTML in the source is escaped, not passed through; nh3 then strips anything unsafe
    # that a link or image could still carry (javascript: URLs, event handlers).
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    return nh3.clean(_md().render(text), link_rel="noopener noreferrer nofollow")


def summary(rendered: str, length: int = 160) -> str:
    """Plain text of rendered HTML for a meta description: no Markdown marks, no tags, one line."""
    return Truncator(" ".join(html.unescape(strip_tags(rendered)).split())).chars(length)


def reply_text(text: str) -> str:
    """An article as plain text for a reply on any channel (LINE, X, email…): no Markdown marks;
    list items keep their number or a dash, a link keeps its address after its words."""
    out: list[str] = []
    for token in _md().parse(text):
        if token.type == "inline":
            out.append(_inline_text(token.children or []))
        elif token.type == "list_item_open":
            out.append(f"{token.info}. " if token.info else "- ")
        elif token.type in ("fence", "code_block"):
            out.append(token.content.rstrip("\n") + "\n\n")
        elif token.type in ("paragraph_close", "heading_close"):
            out.append("\n" if token.hidden else "\n\n")  # hidden: a tight list's item
        elif token.type in ("bullet_list_close", "ordered_list_close", "tr_close"):
            out.append("\n")
        elif token.type in ("th_close", "td_close"):
            out.append(" ")
        elif token.type == "hr":
            out.append("――――\n\n")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in "".join(out).strip().split("\n")))


def _inline_text(children: list) -> str:
    parts: list[str] = []
    href = ""
    start = 0
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)
        elif child.type == "link_open":
            href, start = str(child.attrs.get("href", "")), len(parts)
        elif child.type == "link_close":
            if href and href not in "".join(parts[start:]):
                parts.append(f" ({href})")
            href = ""
    return "".join(parts)
