"""Post bodies: Markdown rendered and sanitised; links to posts become permalinks."""

from __future__ import annotations

import pytest

from tests.web_forum import XSS_PAYLOADS, executable_markup
from web.markdown import MarkdownRenderer, permalink_for


@pytest.fixture(scope="module")
def renderer() -> MarkdownRenderer:
    return MarkdownRenderer()


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_no_executable_markup_survives(renderer: MarkdownRenderer, payload: str) -> None:
    html = str(renderer.render(payload))
    findings, scripts = executable_markup(html)
    assert findings == [] and scripts == [], (payload, html)
    assert "<script" not in html.lower() and "<iframe" not in html.lower()


def test_markdown_renders_the_usual_shapes(renderer: MarkdownRenderer) -> None:
    html = str(renderer.render(
        "# Title\n\n**bold** _it_ `code`\n\n- a\n- b\n\n> quoted\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n[site](https://example.org/x)"
    ))
    for fragment in ("<h1>Title</h1>", "<strong>bold</strong>", "<em>it</em>",
                     "<code>code</code>", "<li>a</li>", "<blockquote>", "<td>1</td>"):
        assert fragment in html
    assert 'href="https://example.org/x"' in html and 'rel="nofollow' in html


def test_raw_html_is_shown_as_text(renderer: MarkdownRenderer) -> None:
    html = str(renderer.render("<b>not bold</b>"))
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html


def test_quotes_link_to_the_quoted_post(renderer: MarkdownRenderer) -> None:
    uri = "at://did:plc:abc/space.atbb.post/3kabc"
    html = str(renderer.render(f"[@ada wrote]({uri}):\n\n> the excerpt"))
    target = permalink_for(uri)
    assert target is not None and target.startswith("/p/3kabc-")
    assert f'href="{target}"' in html and "<blockquote>" in html
    assert permalink_for("at://did:plc:abc/space.atbb.forum.board/x") is None
    assert permalink_for("https://example.org") is None


def test_images_become_links(renderer: MarkdownRenderer) -> None:
    html = str(renderer.render("![a <b>cat</b>](https://example.org/cat.png)"))
    assert "<img" not in html
    assert 'href="https://example.org/cat.png"' in html
