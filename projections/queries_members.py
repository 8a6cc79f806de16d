"""Members, roles, effective permissions and bans.

A member's ``post_count`` counts publicly visible posts now: the materialised count
(which ignores bans, since they expire) is 0 while the member is banned, as every one of
their posts is then hidden.
"""

from __future__ import annotations

from typing import Any

from projections.queries_common import (
    MEMBERS,
    ROLE,
    STRUCTURE,
    Context,
    clamp,
    forum_rkey,
    json_list,
)
from projections.queries_posts import recent_posts, recent_topics
from projections.views import Member, MemberPermissions, MemberProfile, Page, Role, Viewer

_ROLE_COLUMNS = (
    "r.id, r.uri, r.cid, r.name, r.description, r.permissions, r.priority, r.is_default,"
    " r.created_at"
)
_MEMBER_COLUMNS = (
    "m.did, m.handle, m.joined_at, m.post_count, m.account_state, m.account_status,"
    " mr.role_uri"
)


def _role(row: tuple[Any, ...]) -> Role:
    rid, uri, cid, name, description, permissions, priority, is_default, created_at = row
    return Role(
        id=rid,
        uri=uri,
        cid=cid,
        name=name,
        description=description,
        permissions=frozenset(str(p) for p in json_list(permissions)),
        priority=None if priority is None else int(priority),
        is_default=is_default == 1,
        created_at=created_at,
    )


def roles(ctx: Context, offset: int | None = None, limit: int | None = None) -> Page[Role]:
    """Live roles by authority (priority, lowest first; none last), then name, uri."""
    start, size = clamp(offset, limit, STRUCTURE)
    where = "r.did = ? AND r.deleted = 0"
    total = int(ctx.session.scalar(f"SELECT COUNT(*) FROM roles r WHERE {where}", (ctx.forum_did,)))
    rows = ctx.session.query(
        f"SELECT {_ROLE_COLUMNS} FROM roles r WHERE {where}"
        " ORDER BY (CASE WHEN r.priority IS NULL THEN 1 ELSE 0 END), r.priority,"
        f" {ctx.text_order('r.name')}, {ctx.text_order('r.uri')} LIMIT ? OFFSET ?",
        (ctx.forum_did, size, start),
    )
    return Page(tuple(_role(r) for r in rows), total, start, size)


def role(ctx: Context, role_ref: str) -> Role | None:
    rkey = forum_rkey(role_ref, ctx.forum_did, ROLE)
    if rkey is None:
        return None
    row = ctx.session.query_one(
        f"SELECT {_ROLE_COLUMNS} FROM roles r WHERE r.rkey = ? AND r.did = ? AND r.deleted = 0",
        (rkey, ctx.forum_did),
    )
    return None if row is None else _role(row)


def _default_role(ctx: Context) -> Role | None:
    row = ctx.session.query_one(
        f"SELECT {_ROLE_COLUMNS} FROM roles r"
        " WHERE r.did = ? AND r.deleted = 0 AND r.is_default = 1"
        f" ORDER BY {ctx.text_order('r.rkey')} LIMIT 1",
        (ctx.forum_did,),
    )
    return None if row is None else _role(row)


def member_permissions(ctx: Context, did: str) -> MemberPermissions:
    """A DID's effective permissions and authority: FORUM_DID holds ``*`` at -1; else
    the assigned role's, else the default ("Member") role's, else nothing."""
    if did == ctx.forum_did:
        return MemberPermissions(did, frozenset({"*"}), -1, None)
    row = ctx.session.query_one(
        "SELECT role_uri, permissions, authority FROM member_roles WHERE did = ?", (did,)
    )
    if row is not None and row[0] is not None:
        role_uri, permissions, authority = row
        assigned = role(ctx, str(role_uri))
        return MemberPermissions(
            did,
            frozenset(str(p) for p in json_list(permissions)),
            None if authority is None else int(authority),
            assigned,
        )
    default = _default_role(ctx)
    if default is None:
        return MemberPermissions(did, frozenset(), None, None)
    return MemberPermissions(did, default.permissions, default.priority, default)


def viewer(ctx: Context, did: str | None) -> Viewer:
    """The Viewer of a signed-in DID (anonymous for None), permissions resolved."""
    if did is None:
        return Viewer.anonymous()
    return Viewer(did, member_permissions(ctx, did).permissions)


def role_badges(ctx: Context, dids: list[str]) -> dict[str, str]:
    """The badge beside each of ``dids``' posts: the name of the live role assigned to
    them (a default role's holders have none, as on classic forums, where the badge
    marks the staff), "Forum" for FORUM_DID."""
    wanted = sorted(set(dids))
    badges = {did: "Forum" for did in wanted if did == ctx.forum_did}
    for did, name in ctx.session.query_in(
            "SELECT m.did, r.name FROM member_roles m JOIN roles r ON r.uri = m.role_uri"
            " WHERE m.did {in} AND r.deleted = 0 AND r.is_default = 0", wanted):
        if name:
            badges[str(did)] = str(name)
    return badges


def is_banned(ctx: Context, did: str) -> bool:
    """Whether a ban on ``did`` is in force at the context's ``now``."""
    return ctx.is_banned(did)


def _member(ctx: Context, row: tuple[Any, ...], default: Role | None) -> Member:
    did, handle, joined_at, post_count, account_state, account_status, role_uri = row
    assigned = role(ctx, str(role_uri)) if role_uri is not None else default
    banned = ctx.is_banned(did)
    suspended = account_state == "suspended"
    return Member(
        did=did,
        handle=handle,
        joined_at=joined_at,
        post_count=0 if banned else int(post_count),
        role_id=None if assigned is None else assigned.id,
        role_name=None if assigned is None else assigned.name,
        banned=banned,
        suspended=suspended,
        account_status=(account_status or "inactive") if suspended else None,
    )


def member(ctx: Context, did: str) -> Member | None:
    row = ctx.session.query_one(
        f"SELECT {_MEMBER_COLUMNS} FROM members m LEFT JOIN member_roles mr ON mr.did = m.did"
        " WHERE m.did = ? AND m.is_member = 1",
        (did,),
    )
    return None if row is None else _member(ctx, row, _default_role(ctx))


def members(ctx: Context, offset: int | None = None, limit: int | None = None) -> Page[Member]:
    """Members by join date (unknown last), then DID."""
    start, size = clamp(offset, limit, MEMBERS)
    total = int(ctx.session.scalar("SELECT COUNT(*) FROM members WHERE is_member = 1"))
    rows = ctx.session.query(
        f"SELECT {_MEMBER_COLUMNS} FROM members m LEFT JOIN member_roles mr ON mr.did = m.did"
        " WHERE m.is_member = 1"
        " ORDER BY (CASE WHEN m.joined_at IS NULL THEN 1 ELSE 0 END), m.joined_at,"
        f" {ctx.text_order('m.did')} LIMIT ? OFFSET ?",
        (size, start),
    )
    default = _default_role(ctx)
    return Page(tuple(_member(ctx, r, default) for r in rows), total, start, size)


def member_profile(ctx: Context, did: str) -> MemberProfile | None:
    """A member and their newest publicly visible topics and posts."""
    found = member(ctx, did)
    if found is None:
        return None
    return MemberProfile(found, tuple(recent_topics(ctx, did)), tuple(recent_posts(ctx, did)))
