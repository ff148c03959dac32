"""Article bodies: Markdown rendered to HTML that is safe to show to anyone."""

from __future__ import annotations

import functools

import nh3
from markdown_it import MarkdownIt


@functools.lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    # Raw HTML in the source is escaped, not passed through; nh3 then strips anything unsafe
    # that a link or image could still carry (javascript: URLs, event handlers).
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    return nh3.clean(_md().render(text), link_rel="noopener noreferrer nofollow")
