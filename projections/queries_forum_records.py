"""The mod log and the themes: forum-owned records read as they are."""

from __future__ import annotations

from typing import Any

from projections.ids import post_id, split_uri
from projections.queries_common import (
    MOD_ACTION,
    MODLOG,
    STRUCTURE,
    THEME,
    Context,
    clamp,
    forum_rkey,
    json_list,
    json_object,
)
from projections.views import (
    Author,
    ModLogEntry,
    Page,
    Theme,
    ThemePolicy,
    ThemeRef,
)

MOD_ACTION_PREFIX = MOD_ACTION + "."
_THEME_COLUMNS = "name, color_scheme, tokens, css_overrides, font_urls, created_at"


def modlog(ctx: Context, offset: int | None = None, limit: int | None = None, *,
           moderator: str | None = None, action: str | None = None,
           member: str | None = None) -> Page[ModLogEntry]:
    """Every live moderation action, newest (greatest rkey) first; only those taken by
    ``moderator``, of ``action`` (``ban`` or its full token: the action and its
    reversal are separate), about ``member`` (the member, or a post of theirs)."""
    start, size = clamp(offset, limit, MODLOG)
    where = "a.did = ? AND a.deleted = 0"
    params: list[Any] = [ctx.forum_did]
    if moderator:
        where += " AND a.created_by = ?"
        params.append(moderator)
    if action:
        where += " AND a.action = ?"
        params.append(action if action.startswith(MOD_ACTION_PREFIX)
                      else MOD_ACTION_PREFIX + action)
    if member:
        prefix = f"at://{member}/"
        where += " AND (a.subject_did = ? OR substr(a.subject_uri, 1, ?) = ?)"
        params.extend([member, len(prefix), prefix])
    total = int(ctx.session.scalar(f"SELECT COUNT(*) FROM mod_actions a WHERE {where}",
                                   params))
    rows = ctx.session.query(
        "SELECT a.id, a.uri, a.action, a.created_by, a.subject_did, a.subject_uri, a.reason,"
        f" a.created_at, a.expires_at FROM mod_actions a WHERE {where}"
        f" ORDER BY {ctx.text_order('a.rkey')} DESC LIMIT ? OFFSET ?",
        [*params, size, start],
    )
    subjects = {_subject_did(r[4], r[5]) for r in rows}
    handles = ctx.handles(sorted({r[3] for r in rows if r[3] is not None}
                                 | {d for d in subjects if d is not None}))
    entries = []
    for aid, uri, name, by, subject_did, subject_uri, reason, created_at, expires_at in rows:
        about = _subject_did(subject_did, subject_uri)
        entries.append(ModLogEntry(
            id=aid,
            uri=uri,
            action=name or "",
            moderator=None if by is None else Author(by, handles.get(by)),
            subject_did=subject_did,
            subject_uri=subject_uri,
            reason=reason,
            created_at=created_at,
            expires_at=expires_at,
            subject=None if about is None else Author(about, handles.get(about)),
            subject_post_id=None if subject_uri is None else post_id(subject_uri),
        ))
    return Page(tuple(entries), total, start, size)


def _subject_did(subject_did: str | None, subject_uri: str | None) -> str | None:
    """The member an action is about: its subject, or the author of its post."""
    if subject_did is not None:
        return subject_did
    parts = None if subject_uri is None else split_uri(subject_uri)
    return None if parts is None else parts[0]


def _theme(rkey: str, uri: str, cid: str, row: tuple[Any, ...]) -> Theme:
    name, color_scheme, tokens, css_overrides, font_urls, created_at = row
    return Theme(
        id=rkey,
        uri=uri,
        cid=cid,
        name=name,
        color_scheme=color_scheme,
        tokens={str(k): str(v) for k, v in json_object(tokens).items()},
        css_overrides=css_overrides,
        font_urls=tuple(str(u) for u in json_list(font_urls)),
        created_at=created_at,
    )


def themes(ctx: Context, offset: int | None = None, limit: int | None = None) -> Page[Theme]:
    """Every live theme (its latest version) by name, then uri."""
    start, size = clamp(offset, limit, STRUCTURE)
    where = "did = ? AND deleted = 0 AND cid IS NOT NULL"
    total = int(ctx.session.scalar(f"SELECT COUNT(*) FROM themes WHERE {where}", (ctx.forum_did,)))
    rows = ctx.session.query(
        f"SELECT rkey, uri, cid, {_THEME_COLUMNS} FROM themes WHERE {where}"
        f" ORDER BY {ctx.text_order('name')}, {ctx.text_order('uri')} LIMIT ? OFFSET ?",
        (ctx.forum_did, size, start),
    )
    return Page(tuple(_theme(r[0], r[1], r[2], r[3:]) for r in rows), total, start, size)


def theme(ctx: Context, theme_ref: str) -> Theme | None:
    """A live theme's latest version, by rkey or at-uri."""
    rkey = forum_rkey(theme_ref, ctx.forum_did, THEME)
    if rkey is None:
        return None
    row = ctx.session.query_one(
        f"SELECT rkey, uri, cid, {_THEME_COLUMNS} FROM themes"
        " WHERE rkey = ? AND did = ? AND deleted = 0 AND cid IS NOT NULL",
        (rkey, ctx.forum_did),
    )
    return None if row is None else _theme(row[0], row[1], row[2], row[3:])


def theme_version(ctx: Context, uri: str, cid: str) -> Theme | None:
    """A theme as it was at one version (a policy entry pinned to ``cid``), even if the
    theme has changed or been deleted since."""
    row = ctx.session.query_one(
        f"SELECT {_THEME_COLUMNS} FROM theme_versions WHERE uri = ? AND cid = ?", (uri, cid)
    )
    if row is None or forum_rkey(uri, ctx.forum_did, THEME) is None:
        return None
    return _theme(uri.rsplit("/", 1)[-1], uri, cid, row)


def theme_policy(ctx: Context) -> ThemePolicy | None:
    row = ctx.session.query_one(
        "SELECT cid, available_themes, default_light_theme, default_dark_theme,"
        " allow_user_choice, updated_at FROM theme_policy WHERE did = ? AND deleted = 0",
        (ctx.forum_did,),
    )
    if row is None:
        return None
    cid, available, light, dark, allow, updated_at = row
    refs = tuple(
        ThemeRef(str(entry["uri"]), entry["cid"] if isinstance(entry.get("cid"), str) else None)
        for entry in json_list(available)
        if isinstance(entry, dict) and isinstance(entry.get("uri"), str)
    )
    return ThemePolicy(cid, refs, light, dark, allow == 1, updated_at)
