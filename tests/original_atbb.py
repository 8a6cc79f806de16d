"""Records exactly as the original atBB appview writes them, written out by hand from its
request docs (/work/shared/spec/atbb-original.md §3, and the lexicon correction at the end
of lexicons.md): what ``POST /api/topics``, ``POST /api/posts``, ``POST
/api/admin/categories``, ``POST /api/admin/boards`` and ``POST /api/admin/themes`` put
into a repo, plus a membership. References are wrapped in named objects (``#forumRef``,
``#boardRef``, ``#categoryRef``); the original wrote them first without ``$type`` and
later with it (its backlog item ATB-41), so each comes in both forms. Theme tokens are
named without dashes; the 36 of its editor's 46 token names the spec could read are
listed here (the rest of the list was cut off)."""

from __future__ import annotations

from typing import Any

STRONG = dict[str, str]

ORIGINAL_TOKENS: dict[str, str] = {
    # colour
    "color-bg": "#f5f0e8", "color-surface": "#ffffff", "color-text": "#1a1a1a",
    "color-text-muted": "#555555", "color-primary": "#ff5c00",
    "color-primary-hover": "#e04f00", "color-secondary": "#3a86ff",
    "color-border": "#1a1a1a", "color-shadow": "#1a1a1a", "color-success": "#2a9d8f",
    "color-warning": "#e9c46a", "color-danger": "#e63946", "color-code-bg": "#1a1a1a",
    "color-code-text": "#f5f0e8",
    # typography
    "font-body": "'Space Grotesk', system-ui, sans-serif",
    "font-heading": "'Space Grotesk', system-ui, sans-serif",
    "font-mono": "'JetBrains Mono', ui-monospace, monospace", "font-size-base": "16px",
    "font-size-sm": "14px", "font-size-xs": "12px", "font-size-lg": "20px",
    "font-size-xl": "24px", "font-size-2xl": "32px", "font-weight-normal": "400",
    "font-weight-bold": "700", "line-height-body": "1.6", "line-height-heading": "1.2",
    # spacing
    "space-xs": "4px", "space-sm": "8px", "space-md": "16px", "space-lg": "24px",
    "space-xl": "32px", "radius": "0px", "border-width": "3px", "shadow-offset": "4px",
    "content-width": "72ch",
}


def _wrapped(field: str, ref: STRONG, type_name: str | None) -> dict[str, Any]:
    wrapped: dict[str, Any] = {field: dict(ref)}
    if type_name is not None:
        wrapped["$type"] = type_name
    return wrapped


def topic(title: str, text: str, forum: STRONG, board: STRONG, created_at: str, *,
          typed: bool) -> dict[str, Any]:
    """``POST /api/topics``: title, text, the forum ref (singleton) and the board ref."""
    return {
        "$type": "space.atbb.post",
        "text": text,
        "title": title,
        "forum": _wrapped("forum", forum, "space.atbb.post#forumRef" if typed else None),
        "board": _wrapped("board", board, "space.atbb.post#boardRef" if typed else None),
        "createdAt": created_at,
    }


def reply(text: str, forum: STRONG, root: STRONG, parent: STRONG, created_at: str, *,
          typed: bool) -> dict[str, Any]:
    """``POST /api/posts``: text, the forum ref, and the reply ref (root and parent)."""
    reply_ref: dict[str, Any] = {"root": dict(root), "parent": dict(parent)}
    if typed:
        reply_ref["$type"] = "space.atbb.post#replyRef"
    return {
        "$type": "space.atbb.post",
        "text": text,
        "forum": _wrapped("forum", forum, "space.atbb.post#forumRef" if typed else None),
        "reply": reply_ref,
        "createdAt": created_at,
    }


def category(name: str, description: str, sort_order: int, created_at: str) -> dict[str, Any]:
    """``POST /api/admin/categories``: name, description, sortOrder."""
    return {"$type": "space.atbb.forum.category", "name": name, "description": description,
            "sortOrder": sort_order, "createdAt": created_at}


def board(name: str, description: str, sort_order: int, category_ref: STRONG,
          created_at: str, *, typed: bool) -> dict[str, Any]:
    """``POST /api/admin/boards``: name, description, sortOrder and the categoryRef it
    builds from the category's uri and CID."""
    return {
        "$type": "space.atbb.forum.board",
        "name": name,
        "description": description,
        "sortOrder": sort_order,
        "category": _wrapped("category", category_ref,
                             "space.atbb.forum.board#categoryRef" if typed else None),
        "createdAt": created_at,
    }


def theme(name: str, color_scheme: str, created_at: str) -> dict[str, Any]:
    """``POST /api/admin/themes``: name, colorScheme, tokens (named without dashes),
    cssOverrides, fontUrls (https only)."""
    return {
        "$type": "space.atbb.forum.theme",
        "name": name,
        "colorScheme": color_scheme,
        "tokens": dict(ORIGINAL_TOKENS),
        "cssOverrides": ".card { box-shadow: 4px 4px 0 #000; }",
        "fontUrls": ["https://fonts.googleapis.com/css2?family=Space+Grotesk"],
        "createdAt": created_at,
    }


def membership(forum: STRONG, created_at: str, *, typed: bool) -> dict[str, Any]:
    """A member's join: the forum ref (the original also kept a role here)."""
    return {
        "$type": "space.atbb.membership",
        "forum": _wrapped("forum", forum, "space.atbb.membership#forumRef" if typed else None),
        "createdAt": created_at,
    }
