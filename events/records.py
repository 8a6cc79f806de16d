"""The wire shapes of ``space.atbb.*`` records: reading either shape, building the original's.

The original atBB appview wraps its references in named objects: a post's forum is
``{"forum": {"forum": {uri, cid}}}`` (its lexicon's ``#forumRef``), its board
``{"board": {"board": {...}}}`` (``#boardRef``), a board's category
``{"category": {"category": {...}}}`` (``#categoryRef``), each possibly carrying
``"$type": "space.atbb.post#forumRef"`` and so on. Earlier records, ours among them, hold
the bare strongRef ``{uri, cid}``. Both mean the same: :func:`reference` reads either, and
every reader of a forum, board or category reference goes through it.

Theme tokens are keyed by CSS custom-property names with (``--color-bg``) or without
(``color-bg``, as the original writes them) the leading dashes: :func:`css_property`
gives the property either names.

The builders write records the way the original appview does (``shape="original"``):
wrapped references with their ``$type``, a reply reference with ``$type``, theme tokens
without dashes, so any atBB appview reads what ours writes. ``shape="bare"`` writes the
earlier form (bare strongRefs, ``--`` token names), for tests that need both. Every
record comes out with its keys sorted at every level, the order Jetstream writes them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from events.collections import (
    BOARD,
    CATEGORY,
    FORUM,
    MEMBERSHIP,
    MOD_ACTION,
    POST,
    REACTION,
    ROLE,
    ROLE_ASSIGNMENT,
    THEME,
    THEME_POLICY,
)

Shape: TypeAlias = Literal["original", "bare"]
SHAPES: Final[tuple[Shape, ...]] = ("original", "bare")

STRONG_REF: Final = "com.atproto.repo.strongRef"
FORUM_REF: Final = f"{POST}#forumRef"
BOARD_REF: Final = f"{POST}#boardRef"
REPLY_REF: Final = f"{POST}#replyRef"
CATEGORY_REF: Final = f"{BOARD}#categoryRef"
MEMBERSHIP_FORUM_REF: Final = f"{MEMBERSHIP}#forumRef"

Record: TypeAlias = dict[str, Any]


# --- reading ------------------------------------------------------------------------------


def reference(record: Mapping[str, Any] | None, field: str) -> tuple[str | None, str | None]:
    """``(uri, cid)`` of the strongRef in ``record[field]``, bare (``{uri, cid}``) or
    wrapped under the field's own name (``{field: {uri, cid}}``, with or without a
    ``$type``); a ``None`` for each part that is absent or not a string.

    A value declaring ``com.atproto.repo.strongRef`` is bare whatever else it holds;
    otherwise an object under the field's name makes it wrapped. The validator reads the
    same way (a union of the two, ``docs/lexicons.md``), so what it passed is what this
    reads."""
    value = None if record is None else record.get(field)
    if not isinstance(value, dict):
        return None, None
    inner = value.get(field)
    if isinstance(inner, dict) and value.get("$type") != STRONG_REF:
        value = inner
    uri = value.get("uri")
    cid = value.get("cid")
    return (uri if isinstance(uri, str) else None, cid if isinstance(cid, str) else None)


def css_property(name: str) -> str:
    """The CSS custom property a theme token's name stands for: ``color-bg`` (the
    original's spelling) and ``--color-bg`` both give ``--color-bg``."""
    return name if name.startswith("--") else "--" + name


# --- building -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StrongRef:
    """A record's at-uri and the CID of the version meant."""

    uri: str
    cid: str

    def json(self) -> dict[str, str]:
        return {"cid": self.cid, "uri": self.uri}


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _record(collection: str, fields: Mapping[str, Any]) -> Record:
    """A record of ``collection``: ``fields`` without the ``None`` ones, keys sorted."""
    body = {key: value for key, value in fields.items() if value is not None}
    body["$type"] = collection
    result: Record = _sorted(body)
    return result


def _ref(ref: StrongRef, field: str, type_name: str, shape: Shape) -> dict[str, Any]:
    if shape == "bare":
        return ref.json()
    return {"$type": type_name, field: ref.json()}


def _check(shape: Shape) -> None:
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")


def forum_record(name: str, *, created_at: str, description: str | None = None) -> Record:
    return _record(FORUM, {"createdAt": created_at, "description": description, "name": name})


def category_record(
    name: str,
    *,
    created_at: str,
    description: str | None = None,
    slug: str | None = None,
    sort_order: int | None = None,
) -> Record:
    return _record(CATEGORY, {"createdAt": created_at, "description": description,
                              "name": name, "slug": slug, "sortOrder": sort_order})


def board_record(
    name: str,
    category: StrongRef,
    *,
    created_at: str,
    description: str | None = None,
    slug: str | None = None,
    sort_order: int | None = None,
    shape: Shape = "original",
) -> Record:
    _check(shape)
    return _record(BOARD, {
        "category": _ref(category, "category", CATEGORY_REF, shape),
        "createdAt": created_at, "description": description, "name": name, "slug": slug,
        "sortOrder": sort_order,
    })


def topic_record(
    title: str,
    text: str,
    *,
    forum: StrongRef,
    board: StrongRef,
    created_at: str,
    langs: Iterable[str] | None = None,
    shape: Shape = "original",
) -> Record:
    """A post without ``reply``: a topic in ``board``."""
    _check(shape)
    return _record(POST, {
        "board": _ref(board, "board", BOARD_REF, shape), "createdAt": created_at,
        "forum": _ref(forum, "forum", FORUM_REF, shape),
        "langs": None if langs is None else list(langs), "text": text, "title": title,
    })


def reply_record(
    text: str,
    *,
    forum: StrongRef,
    root: StrongRef,
    parent: StrongRef,
    created_at: str,
    langs: Iterable[str] | None = None,
    shape: Shape = "original",
) -> Record:
    """A reply in ``root``'s thread, answering ``parent`` (the root itself or a reply).
    The original's indexer links a reply only when its ``reply`` carries its
    ``$type``, so the original shape gives it one."""
    _check(shape)
    reply: dict[str, Any] = {"parent": parent.json(), "root": root.json()}
    if shape == "original":
        reply["$type"] = REPLY_REF
    return _record(POST, {
        "createdAt": created_at, "forum": _ref(forum, "forum", FORUM_REF, shape),
        "langs": None if langs is None else list(langs), "reply": reply, "text": text,
    })


def edited(record: Mapping[str, Any], **changes: Any) -> Record:
    """``record`` with some fields replaced (a put of the same record, edited)."""
    collection = record.get("$type")
    if not isinstance(collection, str):
        raise ValueError("a record to edit needs its $type")
    return _record(collection, {**record, **changes})


def membership_record(
    forum: StrongRef, *, created_at: str, shape: Shape = "original"
) -> Record:
    _check(shape)
    return _record(MEMBERSHIP, {
        "createdAt": created_at, "forum": _ref(forum, "forum", MEMBERSHIP_FORUM_REF, shape),
    })


def role_record(
    name: str,
    permissions: Iterable[str],
    priority: int,
    *,
    created_at: str,
    description: str | None = None,
) -> Record:
    return _record(ROLE, {"createdAt": created_at, "description": description, "name": name,
                          "permissions": list(permissions), "priority": priority})


def role_assignment_record(
    subject: str, role: StrongRef, *, created_by: str, created_at: str
) -> Record:
    return _record(ROLE_ASSIGNMENT, {"createdAt": created_at, "createdBy": created_by,
                                     "role": role.json(), "subject": subject})


def mod_action_record(
    action: str,
    *,
    subject_did: str | None = None,
    subject_post: StrongRef | None = None,
    reason: str,
    created_by: str,
    created_at: str,
    expires_at: str | None = None,
) -> Record:
    """A moderation action on a user (``subject_did``) or a post (``subject_post``): the
    subject as the original writes it, ``{did}`` or ``{post: {uri, cid}}``."""
    if (subject_did is None) == (subject_post is None):
        raise ValueError("a moderation action has one subject: a DID or a post")
    subject: dict[str, Any] = (
        {"did": subject_did} if subject_post is None else {"post": subject_post.json()}
    )
    return _record(MOD_ACTION, {"action": action, "createdAt": created_at,
                                "createdBy": created_by, "expiresAt": expires_at,
                                "reason": reason, "subject": subject})


def reaction_record(subject: StrongRef, reaction: str, *, created_at: str) -> Record:
    return _record(REACTION, {"createdAt": created_at, "reaction": reaction,
                              "subject": subject.json()})


def theme_record(
    name: str,
    color_scheme: str,
    tokens: Mapping[str, str],
    *,
    created_at: str,
    css_overrides: str | None = None,
    font_urls: Iterable[str] | None = None,
    shape: Shape = "original",
) -> Record:
    """A theme; token names as the original writes them (``color-bg``) in the original
    shape, as CSS custom properties (``--color-bg``) in the bare one, whichever way
    ``tokens`` spells them."""
    _check(shape)
    named = {
        (css_property(key) if shape == "bare" else css_property(key)[2:]): value
        for key, value in tokens.items()
    }
    return _record(THEME, {
        "colorScheme": color_scheme, "createdAt": created_at, "cssOverrides": css_overrides,
        "fontUrls": None if font_urls is None else list(font_urls), "name": name,
        "tokens": named,
    })


def theme_policy_record(
    available: Iterable[StrongRef | str],
    *,
    default_light: str | None,
    default_dark: str | None,
    updated_at: str,
    allow_user_choice: bool = True,
) -> Record:
    """The theme policy: each offered theme pinned (a :class:`StrongRef`) or following
    its latest version (an at-uri), as the original's ``themeRef`` writes them."""
    return _record(THEME_POLICY, {
        "allowUserChoice": allow_user_choice,
        "availableThemes": [
            {"uri": entry} if isinstance(entry, str) else entry.json() for entry in available
        ],
        "defaultDarkTheme": default_dark, "defaultLightTheme": default_light,
        "updatedAt": updated_at,
    })
