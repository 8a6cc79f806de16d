"""Seeded forum prose: deterministic, varied, and quotable."""

from __future__ import annotations

import random

from appview.devnet.prose import REASONS, Prose, excerpt


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
    assert excerpt("[@a wrote](at://x):\n\n> old\n\nNew point here.") == "New point here."
    assert excerpt("```sh\nls\n```") == "…"
    long = "word " * 100
    short = excerpt(long, limit=40)
    assert len(short) == 40 and short.endswith("…")


def test_reasons_fit_the_mod_action_lexicon() -> None:
    prose = Prose(random.Random(5))
    for kind in REASONS:
        assert 1 <= len(prose.reason(kind)) <= 3000
    assert prose.title() and len(prose.title()) <= 120
