"""Stored post HTML: the direct path for plain prose gives exactly what the full
Markdown path gives, and everything else takes the full path."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from projections.post_html import MarkdownRenderer, plain_paragraphs, post_html
from tests.web_forum import XSS_PAYLOADS

# every character the direct path accepts, and some it must refuse
PLAIN = "aZé9 .,;:?!'\"/%$@()+=-\n"
TRICKY = PLAIN + "*_`#>[]<&|~\\\t\r1)\u00a0\u2028"


@pytest.fixture(scope="module")
def renderer() -> MarkdownRenderer:
    return MarkdownRenderer()


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=PLAIN, max_size=40) | st.text(alphabet=TRICKY, max_size=40))
@example('She said "yes" (50% $3, a@b.c/d e+f=g-h)!\nok\n\n\nNext: para?')
@example("Ünïcode wörds ça\n\nÆble")
@example("a  b")
@example("1. one")
@example("a\n= b")
@example("a\n- b")
@example("a \nb")
def test_the_direct_path_gives_what_the_full_path_gives(text: str) -> None:
    renderer = MarkdownRenderer()
    direct = plain_paragraphs(text)
    if direct is not None:
        assert direct == str(renderer.render_markdown(text))


def test_plain_prose_takes_the_direct_path() -> None:
    assert plain_paragraphs("Hello there, world.\nSecond line.\n\nA new one!") == (
        "<p>Hello there, world.\nSecond line.</p>\n<p>A new one!</p>\n")


@pytest.mark.parametrize("text", ["**bold**", "- item", "# Heading", "> quoted", "  indented",
                                  "a  \nb", "<b>x</b>", "a & b", "x_y", "", "\n\n", "2) two"])
def test_anything_else_takes_the_full_path(text: str) -> None:
    assert plain_paragraphs(text) is None


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_stored_html_is_the_renderer_output(renderer: MarkdownRenderer, payload: str) -> None:
    assert post_html(payload) == str(renderer.render(payload)) == str(
        renderer.render_markdown(payload))


def test_no_text_stores_no_html() -> None:
    assert post_html(None) is None
