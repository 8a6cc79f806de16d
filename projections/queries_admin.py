"""What administration reads beyond the public queries: members searched by handle or
DID with their role, and the counts a deletion is refused on (a category's boards, a
board's posts whoever may see them)."""

from __future__ import annotations

from projections.queries_common import Context, Limits, clamp
from projections.views import AdminMember, Page

# The original's members list: 100 by default, at most 250.
ADMIN_MEMBERS = Limits(100, 250)


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def members(ctx: Context, search: str | None = None, offset: int | None = None,
            limit: int | None = None) -> Page[AdminMember]:
    """Members, newest joined first (unknown last), then DID; ``search`` matches a part
    of the handle or the DID, case-insensitively. Each with the role assigned to them
    (None: the default role applies)."""
    start, size = clamp(offset, limit, ADMIN_MEMBERS)
    where = "m.is_member = 1"
    args: list[object] = []
    if search:
        where += (" AND (LOWER(COALESCE(m.handle, '')) LIKE ? ESCAPE '\\'"
                  " OR LOWER(m.did) LIKE ? ESCAPE '\\')")
        args += [_like(search), _like(search)]
    total = int(ctx.session.scalar(f"SELECT COUNT(*) FROM members m WHERE {where}",
                                   tuple(args)))
    rows = ctx.session.query(
        "SELECT m.did, m.handle, m.joined_at, r.name, r.uri, r.priority"
        " FROM members m LEFT JOIN member_roles mr ON mr.did = m.did"
        " LEFT JOIN roles r ON r.uri = mr.role_uri AND r.deleted = 0"
        f" WHERE {where}"
        " ORDER BY (CASE WHEN m.joined_at IS NULL THEN 1 ELSE 0 END), m.joined_at DESC,"
        f" {ctx.text_order('m.did')} LIMIT ? OFFSET ?",
        (*args, size, start),
    )
    items = tuple(AdminMember(did=did, handle=handle, joined_at=joined_at, role=role,
                              role_uri=role_uri,
                              priority=None if priority is None else int(priority))
                  for did, handle, joined_at, role, role_uri, priority in rows)
    return Page(items, total, start, size)


def category_board_count(ctx: Context, category_uri: str) -> int:
    """Live boards naming the category (listed or not)."""
    return int(ctx.session.scalar(
        "SELECT COUNT(*) FROM boards WHERE category_uri = ? AND deleted = 0",
        (category_uri,)))


def board_post_count(ctx: Context, board_uri: str) -> int:
    """Topics in the board that exist, hidden, banned or pending ones included."""
    return int(ctx.session.scalar(
        "SELECT COUNT(*) FROM posts WHERE board_uri = ? AND deleted = 0", (board_uri,)))
