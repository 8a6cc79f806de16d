"""Members' reports of posts: the appview's own data, not the network's (a report is not
a record in anyone's repo), in a table beside the event log, so it is kept across
rebuilds of the read models, on SQLite and PostgreSQL alike.

A member reports a post once while the report is open (reporting again changes the
reason); a moderator closes every open report of a post at once, saying how
(``resolved``: acted on, ``dismissed``: nothing to do)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from appview.clock import Clock
from appview.settings import Settings
from appview.side_db import SideDatabase, autoincrement_key, make_side_tables

REASON_MAX: Final = 1000
OUTCOMES: Final = ("resolved", "dismissed")


@dataclass(frozen=True, slots=True)
class Report:
    id: int
    post_uri: str
    reporter: str
    reason: str
    created_at: float
    status: str  # open | resolved | dismissed
    closed_by: str | None
    closed_at: float | None


@dataclass(frozen=True, slots=True)
class ReportedPost:
    """One post of the queue and its open reports, oldest first."""

    post_uri: str
    reports: tuple[Report, ...]


_COLUMNS = "id, post_uri, reporter, reason, created_at, status, closed_by, closed_at"


class ReportError(ValueError):
    """A report that cannot be taken (no reason, too long); the message says why."""


class Reports:
    def __init__(self, settings: Settings, clock: Clock, *,
                 side: SideDatabase | None = None) -> None:
        self._settings = settings
        self._side = side or SideDatabase(settings)
        self._clock = clock
        self._ready = False

    def _tables(self) -> None:
        if self._ready:
            return
        key = autoincrement_key(self._settings)
        make_side_tables(self._settings, (
            f"CREATE TABLE IF NOT EXISTS post_reports (id {key},"
            " post_uri TEXT NOT NULL, reporter TEXT NOT NULL, reason TEXT NOT NULL,"
            " created_at DOUBLE PRECISION NOT NULL, status TEXT NOT NULL,"
            " closed_by TEXT, closed_at DOUBLE PRECISION)",
            "CREATE INDEX IF NOT EXISTS post_reports_open ON post_reports (status, post_uri)"))
        self._ready = True

    def _now(self) -> float:
        return self._clock.now_us() / 1e6

    def report(self, post_uri: str, reporter: str, reason: str) -> Report:
        """Take (or, while it is open, update) ``reporter``'s report of the post."""
        text = reason.replace("\r\n", "\n").strip()
        if not text:
            raise ReportError("Say what is wrong with the post (a reason is required).")
        if len(text) > REASON_MAX:
            raise ReportError(f"The reason is {len(text)} characters; at most {REASON_MAX}.")
        self._tables()
        with self._side.transaction() as execute:
            rows = execute(f"UPDATE post_reports SET reason = ? WHERE post_uri = ?"
                           f" AND reporter = ? AND status = 'open' RETURNING {_COLUMNS}",
                           (text, post_uri, reporter))
            if not rows:
                rows = execute(f"INSERT INTO post_reports (post_uri, reporter, reason,"
                               f" created_at, status) VALUES (?, ?, ?, ?, 'open')"
                               f" RETURNING {_COLUMNS}",
                               (post_uri, reporter, text, self._now()))
        return _report(rows[0])

    def open_queue(self, limit: int = 50) -> list[ReportedPost]:
        """Posts with open reports, the longest waiting first."""
        self._tables()
        with self._side.transaction() as execute:
            rows = execute(f"SELECT {_COLUMNS} FROM post_reports WHERE status = 'open'"
                           " ORDER BY created_at, id", ())
        grouped: dict[str, list[Report]] = {}
        for row in rows:
            report = _report(row)
            grouped.setdefault(report.post_uri, []).append(report)
        return [ReportedPost(uri, tuple(found)) for uri, found in grouped.items()][:limit]

    def open_count(self) -> int:
        self._tables()
        with self._side.transaction() as execute:
            rows = execute("SELECT COUNT(*) FROM post_reports WHERE status = 'open'", ())
        return int(rows[0][0])

    def close(self, post_uri: str, moderator: str, outcome: str) -> int:
        """Close every open report of the post; how many were open."""
        if outcome not in OUTCOMES:
            raise ReportError(f"outcome must be one of {', '.join(OUTCOMES)}")
        self._tables()
        with self._side.transaction() as execute:
            rows = execute("UPDATE post_reports SET status = ?, closed_by = ?, closed_at = ?"
                           " WHERE post_uri = ? AND status = 'open' RETURNING id",
                           (outcome, moderator, self._now(), post_uri))
        return len(rows)

    def of_post(self, post_uri: str) -> list[Report]:
        self._tables()
        with self._side.transaction() as execute:
            rows = execute(f"SELECT {_COLUMNS} FROM post_reports WHERE post_uri = ?"
                           " ORDER BY created_at, id", (post_uri,))
        return [_report(row) for row in rows]


def _report(row: Sequence[Any]) -> Report:
    rid, uri, reporter, reason, created, status, closed_by, closed_at = row
    return Report(int(rid), str(uri), str(reporter), str(reason), float(created), str(status),
                  None if closed_by is None else str(closed_by),
                  None if closed_at is None else float(closed_at))
