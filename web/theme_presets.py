"""The five built-in theme presets the original atBB ships (neobrutal light and dark,
clean light and dark, classic-bb), as token maps named as the original writes them
(without ``--``): what a new theme starts from and what the token editor resets to.
The original's values were not all readable; these are ours, in its token names."""

from __future__ import annotations

from typing import Final

_BASE: Final[dict[str, str]] = {
    "font-body": "system-ui, sans-serif", "font-heading": "system-ui, sans-serif",
    "font-mono": "ui-monospace, monospace", "font-size-base": "16px", "font-size-sm": "14px",
    "font-size-xs": "12px", "font-size-lg": "20px", "font-size-xl": "24px",
    "font-size-2xl": "32px", "font-weight-normal": "400", "font-weight-bold": "700",
    "line-height-body": "1.6", "line-height-heading": "1.2", "space-xs": "4px",
    "space-sm": "8px", "space-md": "16px", "space-lg": "24px", "space-xl": "32px",
    "radius": "4px", "border-width": "1px", "shadow-offset": "0px", "content-width": "72ch",
}


def _preset(colours: dict[str, str], **extra: str) -> dict[str, str]:
    return {**_BASE, **colours, **{k.replace("_", "-"): v for k, v in extra.items()}}


PRESETS: Final[dict[str, tuple[str, dict[str, str]]]] = {
    "neobrutal-light": ("light", _preset({
        "color-bg": "#f5f0e8", "color-surface": "#ffffff", "color-text": "#1a1a1a",
        "color-text-muted": "#555555", "color-primary": "#c2410c",
        "color-primary-hover": "#9a3412", "color-secondary": "#1d4ed8",
        "color-border": "#1a1a1a", "color-shadow": "#1a1a1a", "color-success": "#15803d",
        "color-warning": "#a16207", "color-danger": "#b91c1c", "color-code-bg": "#1a1a1a",
        "color-code-text": "#f5f0e8"}, radius="0px", border_width="3px",
        shadow_offset="4px")),
    "neobrutal-dark": ("dark", _preset({
        "color-bg": "#1a1a1a", "color-surface": "#262626", "color-text": "#f5f0e8",
        "color-text-muted": "#bdbdbd", "color-primary": "#fb923c",
        "color-primary-hover": "#fdba74", "color-secondary": "#93c5fd",
        "color-border": "#f5f0e8", "color-shadow": "#000000", "color-success": "#4ade80",
        "color-warning": "#facc15", "color-danger": "#f87171", "color-code-bg": "#000000",
        "color-code-text": "#f5f0e8"}, radius="0px", border_width="3px",
        shadow_offset="4px")),
    "clean-light": ("light", _preset({
        "color-bg": "#fbfaf7", "color-surface": "#ffffff", "color-text": "#1f2328",
        "color-text-muted": "#57606a", "color-primary": "#0969da",
        "color-primary-hover": "#0550ae", "color-secondary": "#6e7781",
        "color-border": "#d0d7de", "color-shadow": "#d0d7de", "color-success": "#1a7f37",
        "color-warning": "#9a6700", "color-danger": "#cf222e", "color-code-bg": "#f6f8fa",
        "color-code-text": "#1f2328"})),
    "clean-dark": ("dark", _preset({
        "color-bg": "#16181c", "color-surface": "#1f2328", "color-text": "#e6edf3",
        "color-text-muted": "#9da7b3", "color-primary": "#58a6ff",
        "color-primary-hover": "#79c0ff", "color-secondary": "#8b949e",
        "color-border": "#30363d", "color-shadow": "#000000", "color-success": "#3fb950",
        "color-warning": "#d29922", "color-danger": "#f85149", "color-code-bg": "#0d1117",
        "color-code-text": "#e6edf3"})),
    "classic-bb": ("light", _preset({
        "color-bg": "#e5e8ee", "color-surface": "#f5f7fa", "color-text": "#222222",
        "color-text-muted": "#4a4a4a", "color-primary": "#105289",
        "color-primary-hover": "#0b3a61", "color-secondary": "#5c7099",
        "color-border": "#a5b3c7", "color-shadow": "#a5b3c7", "color-success": "#2e7d32",
        "color-warning": "#8a6d00", "color-danger": "#a4161a", "color-code-bg": "#eef1f5",
        "color-code-text": "#222222"}, font_body="Verdana, sans-serif",
        font_size_base="13px", radius="6px")),
}

# Every token the editor offers, in the presets' order (colours first).
TOKEN_NAMES: Final[tuple[str, ...]] = tuple(PRESETS["neobrutal-light"][1])
