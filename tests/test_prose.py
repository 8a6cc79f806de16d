"""Seeded forum prose: deterministic, varied, and quotable."""

from __future__ import annotations

import html
import random
from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from appview.devnet.prose import REASONS, Prose, markdown_literal
from web.markdown import MarkdownRenderer


def sample(seed: int, count: int = 300) -> list[str]:
    prose = Prose(random.Random(seed))
    return [prose.body() for _ in range(count)]


def test_same_rng_same_text_other_rng_other_text() -> None:
    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_bodies_vary_in_length_and_shape() -> None:
    bodies = sample(3, 1000)
    lengths = [len(body) for body in bodies]
    assert min(lengths) < 150 and max(lengths) > 2500
    assert len(set(bodies)) > 950
    assert any("```" in body for body in bodies)
    assert any("\n1. " in body or body.startswith("1. ") for body in bodies)
    assert any("**" in body for body in bodies)


def test_a_quoting_reply_quotes_and_links_the_post() -> None:
    prose = Prose(random.Random(4))
    text = prose.quoting("It broke.", "ada.test", "at://did:plc:x/space.atbb.post/3k")
    assert text.startswith("[@ada.test wrote](at://did:plc:x/space.atbb.post/3k):\n\n> It broke.")


def test_excerpt_skips_quotes_and_code_and_trims() -> None:
    excerpt = Prose(random.Random(6)).excerpt
    assert excerpt("[@a wrote](at://x):\n\n> old\n\nNew point here.") == "New point here."
    assert excerpt("```sh\nls\n```") == "…"
    long = "word " * 100
    short = excerpt(long, limit=40)
    assert len(short) == 40 and short.endswith("…")


class _Quoted(HTMLParser):
    """The text inside a rendered blockquote."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.depth += tag == "blockquote"

    def handle_endtag(self, tag: str) -> None:
        self.depth -= tag == "blockquote"

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.text.append(data)


def quoted_text(renderer: MarkdownRenderer, markdown: str) -> str:
    parser = _Quoted()
    parser.feed(str(renderer.render(markdown)))
    return " ".join(html.unescape("".join(parser.text)).split())


def test_an_excerpt_is_cut_on_the_text_a_reader_sees_never_through_markdown() -> None:
    # Cut through the source, "**the bench grinder**" left a literal "**" in the quote.
    prose = Prose(random.Random(7))
    renderer = MarkdownRenderer()
    bold = "Yesterday, **the bench grinder** stopped working after the firmware update."
    assert prose.excerpt(bold, limit=21) == "Yesterday, the bench…"
    link = "More in [the datasheet](https://example.com/datasheets/lm317.pdf) today."
    assert prose.excerpt(link, limit=16) == "More in the dat…"
    quoted = 0
    for body in sample(8, 400):
        for limit in (20, 40, 140):
            excerpt = prose.excerpt(body, limit)
            shown = quoted_text(renderer, prose.quoting(excerpt, "ada.test", "at://x"))
            plain = prose.plain_text(next(
                p.split("\n", 1)[0] for p in body.split("\n\n")
                if p.strip() and not p.startswith(("[@", ">", "```", "- ", "1. "))))
            assert len(shown) <= limit, (body, shown)
            assert "**" not in shown and "`" not in shown and "](" not in shown, shown
            assert plain.startswith(shown.removesuffix("…").rstrip()), (body, shown)
            quoted += "**" in body.split("\n\n")[0][: limit + 4]
    assert quoted, "some bodies open with bold text near the cut"


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=60))
def test_markdown_literal_renders_as_the_text_itself(text: str) -> None:
    renderer = MarkdownRenderer()
    assert quoted_text(renderer, "> " + markdown_literal(text)) == " ".join(text.split())


def test_reasons_fit_the_mod_action_lexicon() -> None:
    prose = Prose(random.Random(5))
    for kind in REASONS:
        assert 1 <= len(prose.reason(kind)) <= 3000
    assert prose.title() and len(prose.title()) <= 120
