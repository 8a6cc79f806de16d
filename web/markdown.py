"""Post bodies: CommonMark (markdown-it-py) rendered to HTML, then sanitised (nh3).

Raw HTML in a body is never passed through: markdown-it escapes it (``html`` off), and nh3
then removes anything outside a small allow-list of tags, attributes and URL schemes, so
the output is safe even if the renderer had a bug. Links to other posts by at-uri (how a
reply quotes: ``[@handle wrote](at://did/space.atbb.post/rkey)`` before a ``>`` quote)
become links to that post's permalink on this site. Images are not shown: the CSP allows
no third-party images, and a tracking pixel in a post should not load for every reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from projections.ids import post_id, split_uri
from web import urls

POST_COLLECTION = "space.atbb.post"

_TAGS = frozenset({
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote", "ul", "ol",
    "li", "a", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th",
    "td",
})
_ATTRIBUTES = {"a": {"href", "title", "class"}, "ol": {"start"}, "th": {"align"},
               "td": {"align"}}
_SCHEMES = frozenset({"http", "https", "mailto"})


def permalink_for(href: str) -> str | None:
    """Our permalink for an at-uri of a post, None for any other link."""
    parts = split_uri(href)
    if parts is None or parts[1] != POST_COLLECTION:
        return None
    return urls.post(post_id(href))


class MarkdownRenderer:
    """Renders post bodies. One per application: the parser and the cleaner are built
    once and are safe to share between threads (both hold configuration only)."""

    def __init__(self) -> None:
        self._md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer":
                                            False}).enable("table").enable("strikethrough")
        self._md.add_render_rule("image", _render_image_as_link)
        self._cleaner = nh3.Cleaner(
            tags=set(_TAGS),
            attributes={tag: set(names) for tag, names in _ATTRIBUTES.items()},
            url_schemes=set(_SCHEMES),
            link_rel="nofollow noopener noreferrer ugc",
            strip_comments=True,
        )

    def render(self, text: str) -> Markup:
        tokens = self._md.parse(text)
        _rewrite_post_links(tokens)
        html = self._md.renderer.render(tokens, self._md.options, {})
        return Markup(self._cleaner.clean(html))


def _rewrite_post_links(tokens: Sequence[Token]) -> None:
    for token in tokens:
        if token.children:
            _rewrite_post_links(token.children)
        if token.type == "link_open":
            href = str(token.attrGet("href") or "")
            target = permalink_for(href)
            if target is not None:
                token.attrSet("href", target)
                token.attrSet("class", "post-link")


def _render_image_as_link(
    renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    # A link the reader may follow instead of an image every reader's browser fetches.
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    label = renderer.renderInlineAsText(token.children or [], options, env) or src
    return f'<a href="{_escape(src)}">{_escape(label)}</a>'


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
