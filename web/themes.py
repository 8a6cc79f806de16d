"""The forum's themes as CSS custom properties, served as a stylesheet (``/theme.css``).

The theme policy names a default light and a default dark theme; their ``tokens`` become
custom properties: the light ones on ``:root``, the dark ones under
``prefers-color-scheme: dark`` (unless the reader chose light) and under
``[data-theme=dark]`` (the reader chose dark). Theme records come from the Forum account,
but a compromised or careless account must not be able to inject CSS, so every token is
checked against a strict allow-list: a name of the form ``--word-word`` (a token named
without its dashes, ``color-bg``, as the original atBB names them, is that property) and a
value that is a colour, one to four lengths or numbers, or a list of font family names.
Anything else is dropped. ``cssOverrides`` is dropped entirely (arbitrary CSS cannot be
made safe by a filter short of a full CSS parser) and so are ``fontUrls`` (the CSP allows
no third-party fonts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from events.records import css_property
from projections.queries import Queries
from projections.views import Theme, ThemePolicy

THEME_COOKIE = "theme"
# A member's own light and dark themes (an at-uri each), set by /settings/appearance.
LIGHT_COOKIE = "atbb-light-theme"
DARK_COOKIE = "atbb-dark-theme"
CHOICES = ("auto", "light", "dark")

_NAME = re.compile(r"--[a-z][a-z0-9-]{0,62}")
_NUMBER = r"-?(?:\d{1,6}|\d{0,6}\.\d{1,6})"
_LENGTH = _NUMBER + r"(?:px|em|rem|%|vh|vw|vmin|vmax|ch|ex|pt|s|ms|deg)?"
_COLOUR = (
    r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})"
    r"|(?:rgb|rgba|hsl|hsla)\(\s*" + _LENGTH + r"(?:\s*[,/\s]\s*" + _LENGTH + r"){2,3}\s*\)"
    r"|[a-zA-Z]{3,30}"
)
_FAMILY = r"(?:[A-Za-z][A-Za-z0-9 -]{0,40}|\"[A-Za-z0-9 -]{1,40}\"|'[A-Za-z0-9 -]{1,40}')"
_VALUE = re.compile(
    rf"(?:{_COLOUR})|(?:{_LENGTH})(?:\s+{_LENGTH}){{0,3}}|{_FAMILY}(?:\s*,\s*{_FAMILY}){{0,9}}"
)
# Never needed by an allowed value; checked as well, so the allow-list's regexes are not
# the only line of defence.
_FORBIDDEN = ("url(", "expression", "javascript", ";", "}", "{", "<", ">", "\\", "@", "/*")


def safe_token(name: str, value: str) -> bool:
    """Whether a theme token may be emitted as a CSS custom property."""
    if not _NAME.fullmatch(name) or len(value) > 200:
        return False
    lowered = value.lower()
    if any(bad in lowered for bad in _FORBIDDEN):
        return False
    return _VALUE.fullmatch(value.strip()) is not None


# The original atBB's names for what our stylesheet calls otherwise: a theme that sets
# only the original's name still colours our pages.
ALIASES: Mapping[str, str] = MappingProxyType({
    "--color-accent": "--color-primary",
    "--color-muted": "--color-text-muted",
})


def safe_tokens(tokens: Mapping[str, str]) -> dict[str, str]:
    """The tokens that may be emitted, as CSS custom properties: a name with or without
    its leading dashes (``color-bg``, as the original atBB writes it, or ``--color-bg``)
    names the same property, and when a theme spells one property both ways the dashed
    spelling wins. Our stylesheet's names take the value of their original counterparts
    (:data:`ALIASES`) when the theme does not set them itself."""
    chosen: dict[str, object] = {}
    for name, value in tokens.items():
        if isinstance(name, str):
            prop = css_property(name)
            if prop not in chosen or name.startswith("--"):
                chosen[prop] = value
    properties = {
        prop: value.strip()
        for prop, value in chosen.items()
        if isinstance(value, str) and safe_token(prop, value)
    }
    for ours, original in ALIASES.items():
        if ours not in properties and original in properties:
            properties[ours] = properties[original]
    return dict(sorted(properties.items()))


@dataclass(frozen=True, slots=True)
class DefaultThemes:
    light: Theme | None
    dark: Theme | None


def _resolve(queries: Queries, policy: ThemePolicy, uri: str | None) -> Theme | None:
    if uri is None:
        return None
    for ref in policy.available_themes:
        if ref.uri == uri and ref.cid is not None:
            return queries.theme_version(ref.uri, ref.cid)
    return queries.theme(uri)


def default_themes(queries: Queries) -> DefaultThemes:
    """The policy's default light and dark themes (a pinned entry at its pinned version)."""
    policy = queries.theme_policy()
    if policy is None:
        return DefaultThemes(None, None)
    return DefaultThemes(
        _resolve(queries, policy, policy.default_light_theme),
        _resolve(queries, policy, policy.default_dark_theme),
    )


def offered_themes(queries: Queries) -> tuple[ThemePolicy | None, list[Theme]]:
    """The policy and the themes it offers (each at its pinned version, if pinned)."""
    policy = queries.theme_policy()
    if policy is None:
        return None, []
    found = [_resolve(queries, policy, ref.uri) for ref in policy.available_themes]
    return policy, [theme for theme in found if theme is not None]


def chosen_themes(queries: Queries, light: str | None, dark: str | None) -> DefaultThemes:
    """The defaults, with a member's own choices instead where the policy lets members
    choose and offers the theme chosen."""
    defaults = default_themes(queries)
    if not light and not dark:
        return defaults
    policy, offered = offered_themes(queries)
    if policy is None or not policy.allow_user_choice:
        return defaults
    by_uri = {theme.uri: theme for theme in offered}
    return DefaultThemes(by_uri.get(light or "", defaults.light),
                         by_uri.get(dark or "", defaults.dark))


# Text colours checked against the background (WCAG AA for body text: 4.5:1); the
# backgrounds our own stylesheet uses when a theme sets none.
_FOREGROUNDS = ("--color-text", "--color-muted", "--color-accent")
_BACKGROUND = "--color-bg"
_DEFAULT_BG = {"light": "#fbfaf7", "dark": "#16181c"}
MIN_CONTRAST = 4.5
_HEX = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def _rgb(value: str) -> tuple[float, float, float] | None:
    match = _HEX.fullmatch(value.strip())
    if match is None:
        return None
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return tuple(int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def _luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def readable(tokens: Mapping[str, str], scheme: str) -> dict[str, str]:
    """``tokens`` with each text colour that is too faint on the theme's background
    moved towards black (light) or white (dark) until it reads at 4.5:1: a forum's
    theme may choose its colours, not make its pages unreadable."""
    out = dict(tokens)
    background = _rgb(out.get(_BACKGROUND, _DEFAULT_BG[scheme])) or \
        _rgb(_DEFAULT_BG[scheme])
    assert background is not None
    target = (0.0, 0.0, 0.0) if _luminance(background) > 0.18 else (1.0, 1.0, 1.0)
    for name in _FOREGROUNDS:
        colour = _rgb(out.get(name, ""))
        if colour is None or contrast(colour, background) >= MIN_CONTRAST:
            continue
        for step in range(1, 21):
            mixed = tuple(c + (t - c) * step / 20 for c, t in zip(colour, target, strict=True))
            if contrast(mixed, background) >= MIN_CONTRAST:  # type: ignore[arg-type]
                break
        out[name] = _hex(mixed)  # type: ignore[arg-type]
    return out


def _block(selector: str, tokens: Mapping[str, str], scheme: str) -> str:
    lines = [f"  color-scheme: {scheme};"]
    lines += [f"  {name}: {value};" for name, value in tokens.items()]
    return selector + " {\n" + "\n".join(lines) + "\n}\n"


def theme_css(themes: DefaultThemes) -> str:
    """The stylesheet of the default themes' (checked) tokens."""
    light = readable(safe_tokens(themes.light.tokens) if themes.light else {}, "light")
    dark = readable(safe_tokens(themes.dark.tokens) if themes.dark else {}, "dark")
    parts = ["/* Generated from the forum's theme policy; tokens checked, overrides dropped. */\n"]
    parts.append(_block(':root, :root[data-theme="light"]', light, "light"))
    parts.append(
        "@media (prefers-color-scheme: dark) {\n"
        + _block(':root:not([data-theme="light"])', dark, "dark")
        + "}\n"
    )
    parts.append(_block(':root[data-theme="dark"]', dark, "dark"))
    return "".join(parts)


def theme_choice(cookie: str | None) -> str:
    """The reader's light/dark choice from its cookie: ``auto`` unless valid."""
    return cookie if cookie in CHOICES else "auto"
