"""What every read-model query shares: the request's context (snapshot session, viewer,
``now``, the authors banned at ``now``), paging, ordering and id resolution.

Bans expire, so they are never materialised into counts or visibility: each request
loads the (few) DIDs banned at its ``now`` once, and queries exclude or subtract them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from projections.db import Session, placeholders
from projections.ids import split_uri
from projections.timestamps import format_datetime
from projections.views import Author, Viewer

POST: Final = "space.atbb.post"
CATEGORY: Final = "space.atbb.forum.category"
BOARD: Final = "space.atbb.forum.board"
ROLE: Final = "space.atbb.forum.role"
THEME: Final = "space.atbb.forum.theme"
MOD_ACTION: Final = "space.atbb.modAction"
FORUM: Final = "space.atbb.forum.forum"


@dataclass(frozen=True, slots=True)
class Limits:
    """A list's default and largest page size."""

    default: int
    maximum: int


BOARD_TOPICS: Final = Limits(25, 100)
TOPIC_REPLIES: Final = Limits(25, 250)
MEMBERS: Final = Limits(25, 100)
MODLOG: Final = Limits(25, 100)
STRUCTURE: Final = Limits(100, 500)
RECENT: Final = 10


def clamp(offset: int | None, limit: int | None, limits: Limits) -> tuple[int, int]:
    """(offset, limit) made safe: offset >= 0, 1 <= limit <= the maximum, defaults for
    None. Bad paging is normal input, never an error."""
    safe_offset = max(0, offset or 0)
    safe_limit = limits.default if limit is None else min(max(1, limit), limits.maximum)
    return safe_offset, safe_limit


@dataclass(frozen=True, slots=True)
class Context:
    """One request's view of one snapshot of the read models."""

    session: Session
    forum_did: str
    viewer: Viewer
    now: str
    banned: tuple[str, ...]

    @staticmethod
    def open(session: Session, forum_did: str, viewer: Viewer, now: datetime) -> Context:
        moment = format_datetime(now)
        rows = session.query(
            "SELECT did FROM bans WHERE expires_at IS NULL OR expires_at > ? ORDER BY did",
            (moment,),
        )
        return Context(session, forum_did, viewer, moment, tuple(str(r[0]) for r in rows))

    @property
    def moderator(self) -> bool:
        return self.viewer.is_moderator

    def is_banned(self, did: str | None) -> bool:
        return did is not None and did in self.banned

    def text_order(self, expression: str) -> str:
        """``expression`` compared by code point on both dialects (SQLite's default; a
        PostgreSQL database may sort by a locale), so orders match everywhere."""
        if self.session.dialect == "postgresql":
            return f'{expression} COLLATE "C"'
        return expression

    def not_banned(self, column: str) -> tuple[str, list[Any]]:
        """A condition true when ``column`` (a DID) is not banned now, with its params."""
        if not self.banned:
            return "1 = 1", []
        return f"{column} NOT IN ({placeholders(len(self.banned))})", list(self.banned)

    def banned_in(self, column: str) -> tuple[str, list[Any]]:
        """A condition true when ``column`` is banned now, with its params."""
        if not self.banned:
            return "1 = 0", []
        return f"{column} IN ({placeholders(len(self.banned))})", list(self.banned)

    def handles(self, dids: Sequence[str]) -> dict[str, str | None]:
        wanted = sorted(set(dids))
        found: dict[str, str | None] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self.session.query(
                f"SELECT did, handle FROM members WHERE did IN ({placeholders(len(chunk))})",
                chunk,
            )
            found.update({str(did): handle for did, handle in rows})
        return found

    def author(self, did: str) -> Author:
        return Author(did, self.handles([did]).get(did))


def forum_rkey(value: str, forum_did: str, collection: str) -> str | None:
    """The rkey a forum-owned record is known by, given its id or its full at-uri (None
    when the uri is not of that collection in the Forum account's repo)."""
    if not value.startswith("at://"):
        return value
    parts = split_uri(value)
    if parts is None or parts[0] != forum_did or parts[1] != collection:
        return None
    return parts[2]


def post_key(value: str) -> tuple[str, str]:
    """The column and value that find a post given its id or its at-uri."""
    return ("uri", value) if value.startswith("at://") else ("id", value)


def json_list(text: Any) -> list[Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def json_object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def flag(value: Any) -> bool:
    return bool(value) and value != 0
