"""What changed between two states of the read models: per table, the rows added,
removed and changed (by primary key), and the same in words a developer reads
("topic 3kabc 'Welcome': reply_count 9 → 10", "reply 3kxyz hidden by moderator
did:plc:…").

A state is a :data:`Snapshot`: every row of every read-model table (but the bookkeeping
of versions), read from any store (a generation, read models projected in memory). The
diff knows each table's primary key from its DDL (``projections.schema``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from projections.schema import TABLES
from projections.search_schema import portable_rows

Row = dict[str, Any]
Snapshot = dict[str, list[Row]]
Key = tuple[Any, ...]

# Bookkeeping, not the forum's state: which projection versions built the tables.
SKIPPED = frozenset({"projection_versions"})

_INLINE_KEY = re.compile(r"^\s*(\w+)\s+\w+[^,\n]*PRIMARY KEY", re.M)
_TABLE_KEY = re.compile(r"PRIMARY KEY \(([^)]+)\)")


def primary_keys() -> dict[str, tuple[str, ...]]:
    """Each table's primary key columns, as its DDL declares them."""
    keys: dict[str, tuple[str, ...]] = {}
    for table, ddl in TABLES.items():
        if (found := _TABLE_KEY.search(ddl)) is not None:
            keys[table] = tuple(name.strip() for name in found.group(1).split(","))
        elif (inline := _INLINE_KEY.search(ddl)) is not None:
            keys[table] = (inline.group(1),)
    return keys


def snapshot(query: Callable[[str], list[Row]]) -> Snapshot:
    """Every row of every table through ``query`` (a session's ``query_dicts``), without
    the columns a database adds as its own index (so either backend's rows compare)."""
    return {table: portable_rows(table, query(f"SELECT * FROM {table}"))
            for table in TABLES if table not in SKIPPED}


@dataclass(frozen=True)
class RowChange:
    key: Key
    before: Row
    after: Row

    @property
    def columns(self) -> dict[str, tuple[Any, Any]]:
        """The columns whose value changed: (before, after)."""
        names = list(self.before) + [n for n in self.after if n not in self.before]
        return {name: (self.before.get(name), self.after.get(name)) for name in names
                if self.before.get(name) != self.after.get(name)}


@dataclass
class TableDiff:
    table: str
    added: list[Row] = field(default_factory=list)
    removed: list[Row] = field(default_factory=list)
    changed: list[RowChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "added": self.added, "removed": self.removed,
                "changed": [{"key": list(c.key),
                             "columns": {n: {"from": old, "to": new}
                                         for n, (old, new) in c.columns.items()}}
                            for c in self.changed]}


def _keyed(table: str, rows: Iterable[Row], key: tuple[str, ...] | None) -> dict[Key, Row]:
    keyed: dict[Key, Row] = {}
    for row in rows:
        # a table without a key: the whole row is its identity (a change is a remove
        # and an add)
        ident = tuple(row.get(n) for n in key) if key else tuple(sorted(row.items()))
        keyed[ident] = row
    return keyed


def diff_snapshots(before: Snapshot, after: Snapshot) -> list[TableDiff]:
    """The tables that differ, in table order, each with its rows added, removed and
    changed (sorted by key)."""
    keys = primary_keys()
    diffs: list[TableDiff] = []
    for table in TABLES:
        if table in SKIPPED or (table not in before and table not in after):
            continue
        old = _keyed(table, before.get(table, []), keys.get(table))
        new = _keyed(table, after.get(table, []), keys.get(table))
        diff = TableDiff(table)
        for key in sorted(new.keys() - old.keys(), key=_sortable):
            diff.added.append(new[key])
        for key in sorted(old.keys() - new.keys(), key=_sortable):
            diff.removed.append(old[key])
        for key in sorted(old.keys() & new.keys(), key=_sortable):
            if old[key] != new[key]:
                diff.changed.append(RowChange(key, old[key], new[key]))
        if diff:
            diffs.append(diff)
    return diffs


def _sortable(key: Key) -> tuple[str, ...]:
    return tuple(repr(part) for part in key)


# -- in words ----------------------------------------------------------------------------

_NOUNS = {"categories": "category", "boards": "board", "posts": "post", "members": "member",
          "memberships": "membership", "roles": "role", "role_assignments": "role assignment",
          "member_roles": "member role", "mod_actions": "mod action", "bans": "ban",
          "reactions": "reaction", "reaction_counts": "reaction count",
          "thread_author_counts": "thread author count",
          "board_author_counts": "board author count", "themes": "theme",
          "theme_versions": "theme version", "theme_policy": "theme policy",
          "rejected": "rejected record", "forum": "forum",
          "pending_recounts": "pending recount", "deferred_posts": "deferred post",
          "waiting_posts": "waiting post"}


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        short = value if len(value) <= 48 else value[:45] + "..."
        return repr(short)
    return str(value)


def _name(table: str, row: Mapping[str, Any], key: tuple[str, ...] | None) -> str:
    if table == "posts":
        title = f" {_value(row.get('title'))}" if row.get("title") else ""
        return f"{row.get('kind') or 'post'} {row.get('id') or row.get('uri')}{title}"
    if table in ("categories", "boards", "roles") and row.get("name"):
        return f"{_NOUNS[table]} {row.get('id') or row.get('uri')} {_value(row['name'])}"
    if table == "members":
        return f"member {row.get('handle') or row.get('did')}"
    noun = _NOUNS.get(table, table)
    shown = ", ".join(str(row.get(n)) for n in key) if key else ""
    return f"{noun} {shown}".strip()


def _moderator_of(after: Snapshot, subject: Any, family: str) -> str | None:
    """Who took the latest live ``family`` action on ``subject`` in ``after``."""
    actions = [a for a in after.get("mod_actions", [])
               if a.get("family") == family and not a.get("deleted")
               and subject in (a.get("subject_uri"), a.get("subject_did"))]
    if not actions:
        return None
    latest = max(actions, key=lambda a: str(a.get("rkey")))
    return str(latest.get("created_by") or latest.get("did"))


def _change_words(table: str, change: RowChange, after: Snapshot) -> list[str]:
    columns = change.columns
    words: list[str] = []
    if table == "posts" and "hidden" in columns:
        old, new = columns.pop("hidden")
        who = _moderator_of(after, change.after.get("uri"), "hide")
        by = f" by moderator {who}" if who else ""
        words.append(f"hidden{by}" if new and not old else f"no longer hidden{by}")
    if table == "posts" and "deleted" in columns:
        _, new = columns.pop("deleted")
        words.append("deleted by its author" if new else "restored")
    words.extend(f"{name} {_value(old)} → {_value(new)}"
                 for name, (old, new) in columns.items())
    return words


def in_words(diffs: Iterable[TableDiff], after: Snapshot | None = None,
             *, limit: int | None = None) -> list[str]:
    """A line per table (its counts), then one per row: added, removed, or what changed
    in it; at most ``limit`` rows per table (then how many more)."""
    keys = primary_keys()
    later = after or {}
    lines: list[str] = []
    for diff in diffs:
        key = keys.get(diff.table)
        lines.append(f"{diff.table}: {len(diff.added)} added, {len(diff.removed)} removed,"
                     f" {len(diff.changed)} changed")
        entries: list[str] = []
        entries.extend(f"  + {_name(diff.table, row, key)}" for row in diff.added)
        entries.extend(f"  - {_name(diff.table, row, key)}" for row in diff.removed)
        entries.extend(
            f"  ~ {_name(diff.table, change.after, key)}: "
            + "; ".join(_change_words(diff.table, change, later))
            for change in diff.changed)
        if limit is not None and len(entries) > limit:
            entries = [*entries[:limit], f"  ... and {len(entries) - limit} more"]
        lines.extend(entries)
    return lines
