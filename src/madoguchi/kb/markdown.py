"""Article bodies: Markdown rendered to HTML that is safe to show to anyone."""

from __future__ import annotations

import functools
import html

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
