"""Post bodies: CommonMark (markdown-it-py) rendered to HTML, then sanitised (nh3).

The forum projection stores each post's HTML (``posts.html``) when it applies the post, so
a page shows it without parsing anything; this module is therefore part of the
projection: a change to what it outputs (or to the permalink pattern) is a change to the
posts' rows and bumps ``ForumProjection.VERSION``.

Raw HTML in a body is never passed through: markdown-it escapes it (``html`` off), and nh3
then removes anything outside a small allow-list of tags, attributes and URL schemes, so
the output is safe even if the renderer had a bug. Links to other posts by at-uri (how a
reply quotes: ``[@handle wrote](at://did/space.atbb.post/rkey)`` before a ``>`` quote)
become links to that post's permalink on this site. Images are not shown: the CSP allows
no third-party images, and a tracking pixel in a post should not load for every reader.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version as package_version
from typing import Any
from urllib.parse import quote

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from projections.ids import post_id, split_uri

POST_COLLECTION = "space.atbb.post"
POST_PERMALINK = "/p/{id}"
"""A post's permalink (``web.urls.POST`` is this pattern): stored in rendered bodies."""

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
    return POST_PERMALINK.format(id=quote(post_id(href), safe=""))


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
        plain = plain_paragraphs(text)
        if plain is not None:
            return Markup(plain)
        return self.render_markdown(text)

    def render_markdown(self, text: str) -> Markup:
        """The full path: parse, rewrite post links, render, sanitise."""
        tokens = self._md.parse(text)
        _rewrite_post_links(tokens)
        html = self._md.renderer.render(tokens, self._md.options, {})
        return Markup(self._cleaner.clean(html))


# A line of plain prose: starts with a letter (so no block marker: list, heading, quote,
# ordered list, code indent, setext underline, thematic break), ends with no space (so no
# hard break), and holds only letters, digits and punctuation with no inline meaning
# (no emphasis, code, link, entity, HTML, escape, table or strikethrough character).
_PLAIN_LINE = re.compile(r"[^\W\d_](?:[^\W_]|[ .,;:?!'\"/%$@()+=-])*(?<! )", re.ASCII)


def plain_paragraphs(text: str) -> str | None:
    """The HTML the full renderer gives for ``text`` when it is only paragraphs of plain
    prose (most posts), built directly (~100 times cheaper); None for anything else.
    ``tests/test_post_html.py`` checks it against the full path for generated texts."""
    paragraphs: list[str] = []
    lines: list[str] = []
    for line in text.split("\n"):
        if not line:
            if lines:
                paragraphs.append("\n".join(lines))
                lines = []
            continue
        if not _PLAIN_LINE.fullmatch(line) and not _plain_unicode(line):
            return None
        lines.append(line)
    if lines:
        paragraphs.append("\n".join(lines))
    if not paragraphs:
        return None
    # markdown-it escapes the double quote; the sanitiser's serialiser writes it back bare
    return "".join(f"<p>{paragraph}</p>\n" for paragraph in paragraphs)


def _plain_unicode(line: str) -> bool:
    """A plain line with letters beyond ASCII (``_PLAIN_LINE`` is ASCII-only)."""
    if line.isascii() or not line[0].isalpha() or line[-1] == " ":
        return False
    return all(ch.isalnum() or ch in _PLAIN_PUNCTUATION for ch in line)


_PLAIN_PUNCTUATION = frozenset(" .,;:?!'\"/%$@()+=-")


RENDERER_STAMP_NAME = "forum.post_html"
"""Under this name, ``projection_versions`` records which renderer made a location's
posts' HTML (:func:`renderer_stamp`): a rebuild carries HTML over from the generation it
replaces only when that generation's stamp is this code's (``projections.carried_html``)."""


@cache
def renderer_stamp() -> int:
    """This code's renderer, as a number: the forum projection's version (which a change
    to this module's output bumps) and the versions of the two libraries doing the work,
    whose upgrade may change the output without a change here."""
    from projections.forum import ForumProjection  # the version lives with the projection

    identity = (f"forum {ForumProjection.VERSION}; markdown-it-py"
                f" {package_version('markdown-it-py')}; nh3 {package_version('nh3')}")
    return zlib.crc32(identity.encode())


@cache
def post_renderer() -> MarkdownRenderer:
    """The renderer the projection uses (built at first use, in each process that
    extracts posts; it holds configuration only)."""
    return MarkdownRenderer()


def post_html(text: str | None) -> str | None:
    """A post body's stored HTML (None for no body)."""
    return None if text is None else str(post_renderer().render(text))


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
