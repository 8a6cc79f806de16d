"""Theme tokens: only allow-listed names and values become CSS; overrides never do."""

from __future__ import annotations

import pytest

from projections.views import Theme
from tests.original_atbb import ORIGINAL_TOKENS
from web.themes import DefaultThemes, safe_token, safe_tokens, theme_choice, theme_css


@pytest.mark.parametrize("value", [
    "#fbfaf7", "#abc", "6px", "0.5rem", "4px 8px", "1.5", "red", "rgb(1, 2, 3)",
    "hsl(10 20% 30% / 0.5)", "Inter, system-ui, sans-serif", '"Fira Sans", serif',
])
def test_ordinary_tokens_pass(value: str) -> None:
    assert safe_token("--color-x", value)


@pytest.mark.parametrize("value", [
    "url(https://evil.example/x)", "URL(x)", "expression(alert(1))", "javascript:alert(1)",
    "red;}body{background:red", "red}", "</style><script>alert(1)</script>", "a\\62 c",
    "@import 'x'", "image-set(\"x\" 1x)", "red /* c */", "x" * 300, "var(--other)",
    "\"unclosed, serif",
])
def test_hostile_values_are_dropped(value: str) -> None:
    assert not safe_token("--color-x", value)


@pytest.mark.parametrize("name", ["color", "--Upper", "--a;b", "--a b", "-x", "--"])
def test_only_custom_property_names(name: str) -> None:
    assert not safe_token(name, "red")


def test_the_original_token_names_become_custom_properties() -> None:
    assert safe_tokens(ORIGINAL_TOKENS) == {
        # our stylesheet's names for two of them take their values
        "--color-accent": ORIGINAL_TOKENS["color-primary"],
        "--color-muted": ORIGINAL_TOKENS["color-text-muted"],
        **{f"--{name}": value for name, value in ORIGINAL_TOKENS.items()},
    }
    css = theme_css(DefaultThemes(_theme(dict(ORIGINAL_TOKENS), "light"), None))
    assert "  --color-bg: #f5f0e8;" in css and "  --content-width: 72ch;" in css
    assert "  color-bg" not in css


def test_one_property_spelt_both_ways_takes_the_dashed_spelling() -> None:
    assert safe_tokens({"color-bg": "#111", "--color-bg": "#222"}) == {"--color-bg": "#222"}
    assert safe_tokens({"--color-bg": "#222", "color-bg": "#111"}) == {"--color-bg": "#222"}
    # the dashed spelling's value is the one checked: unsafe, the property is left out
    assert safe_tokens({"color-bg": "#111", "--color-bg": "url(x)"}) == {}


def test_our_names_follow_the_originals_unless_the_theme_sets_them() -> None:
    tokens = {"color-primary": "#123456", "color-text-muted": "#654321"}
    assert safe_tokens(tokens) == {"--color-accent": "#123456", "--color-muted": "#654321",
                                   "--color-primary": "#123456",
                                   "--color-text-muted": "#654321"}
    assert safe_tokens({**tokens, "--color-accent": "#abcdef"})["--color-accent"] == "#abcdef"


@pytest.mark.parametrize("value", ["url(https://evil.example/x)", "red;}body{x", "</style>"])
def test_hostile_values_are_dropped_whatever_the_name_spelling(value: str) -> None:
    assert safe_tokens({"color-bg": value, "radius": "4px"}) == {"--radius": "4px"}


def _theme(tokens: dict[str, str], scheme: str) -> Theme:
    return Theme("r", "at://did:plc:f/space.atbb.forum.theme/r", "cid", "T", scheme, tokens,
                 "body { background: url(https://evil.example/) }", ("https://f.example",),
                 None)


def test_theme_css_carries_checked_tokens_only() -> None:
    css = theme_css(DefaultThemes(
        _theme({"--color-bg": "#fff", "--color-text": "url(x)"}, "light"),
        _theme({"--color-bg": "#000", "--radius": "expression(1)"}, "dark"),
    ))
    assert "--color-bg: #fff;" in css and "--color-bg: #000;" in css
    assert "url(" not in css and "expression" not in css and "evil" not in css
    assert "prefers-color-scheme: dark" in css and ':root[data-theme="dark"]' in css


def test_theme_css_without_a_policy_is_still_a_stylesheet() -> None:
    css = theme_css(DefaultThemes(None, None))
    assert ":root" in css and "--color" not in css


def test_theme_choice_defaults_to_auto() -> None:
    assert theme_choice("dark") == "dark" and theme_choice("light") == "light"
    assert theme_choice(None) == "auto" and theme_choice("<x>") == "auto"
