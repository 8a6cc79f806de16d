"""Post bodies for the web layer: the renderer lives with the projection
(``projections.post_html``), which stores each post's rendered HTML; pages use the stored
HTML and render here only what is not stored (previews, feeds)."""

from __future__ import annotations

from projections.post_html import MarkdownRenderer, permalink_for

__all__ = ["MarkdownRenderer", "permalink_for"]
