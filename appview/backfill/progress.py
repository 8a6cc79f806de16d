"""Backfill runs, their per-repo state and their errors, in the event-log database.

A run's row is what `GET /api/admin/backfill/:id` shows; its repo rows are what a
full_sync resumes from after a crash (the repos not yet done); its error rows are the
per-repo failures that count in ``errorCount`` without failing the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appview.clock import Clock
from appview.settings import Settings
from appview.side_db import autoincrement_key, side_transaction

KINDS = ("catch_up", "full_sync")
# one repo read again because the firehose showed a gap in it (``appview.backfill.resync``):
# recorded as a run of its own, never started or resumed as a backfill
REPO_SYNC = "repo_sync"
ERRORS_SHOWN = 1000


@dataclass(frozen=True)
class BackfillRun:
    id: str
    type: str
    status: str  # in_progress | completed | failed
    dids_total: int
    dids_processed: int
    records_indexed: int
    error_count: int
    started_at: str
    completed_at: str | None
    error_message: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "type": self.type,
                "didsTotal": self.dids_total, "didsProcessed": self.dids_processed,
                "recordsIndexed": self.records_indexed, "errorCount": self.error_count,
                "startedAt": self.started_at, "completedAt": self.completed_at,
                "errorMessage": self.error_message}


@dataclass(frozen=True)
class BackfillError:
    id: str
    did: str
    collection: str | None
    error_message: str
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "did": self.did, "collection": self.collection,
                "errorMessage": self.error_message, "createdAt": self.created_at}


_RUN_COLUMNS = ("id, type, status, dids_total, dids_processed, records_indexed, error_count,"
                " started_at, completed_at, error_message")


def _run(row: tuple[Any, ...]) -> BackfillRun:
    return BackfillRun(str(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]),
                       int(row[5]), int(row[6]), str(row[7]),
                       None if row[8] is None else str(row[8]),
                       None if row[9] is None else str(row[9]))


class BackfillStore:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        key = autoincrement_key(settings)
        with side_transaction(settings) as execute:
            execute(f"CREATE TABLE IF NOT EXISTS backfill_runs (id {key}, type TEXT NOT NULL,"
                    " status TEXT NOT NULL, dids_total INTEGER NOT NULL DEFAULT 0,"
                    " dids_processed INTEGER NOT NULL DEFAULT 0,"
                    " records_indexed INTEGER NOT NULL DEFAULT 0,"
                    " error_count INTEGER NOT NULL DEFAULT 0, started_at TEXT NOT NULL,"
                    " completed_at TEXT, error_message TEXT)", ())
            execute(f"CREATE TABLE IF NOT EXISTS backfill_errors (id {key},"
                    " run_id BIGINT NOT NULL, did TEXT NOT NULL, collection TEXT,"
                    " error_message TEXT NOT NULL, created_at TEXT NOT NULL)", ())
            execute("CREATE TABLE IF NOT EXISTS backfill_repos (run_id BIGINT NOT NULL,"
                    " did TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (run_id, did))", ())
            # The steps of a run that durably finished: a resumed run redoes the others
            # (a run killed while listing its repos has no repo rows, and must list again).
            execute("CREATE TABLE IF NOT EXISTS backfill_steps (run_id BIGINT NOT NULL,"
                    " step TEXT NOT NULL, PRIMARY KEY (run_id, step))", ())
            # why a run was started, for runs the appview starts by itself (repo_sync)
            execute("CREATE TABLE IF NOT EXISTS backfill_reasons (run_id BIGINT PRIMARY KEY,"
                    " reason TEXT NOT NULL)", ())

    def now(self) -> str:
        when = datetime.fromtimestamp(self._clock.now_us() / 1e6, UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def create(self, kind: str, *, reason: str | None = None) -> BackfillRun:
        with side_transaction(self._settings) as execute:
            rows = execute("INSERT INTO backfill_runs (type, status, started_at)"
                           " VALUES (?, 'in_progress', ?) RETURNING id", (kind, self.now()))
            if reason is not None:
                execute("INSERT INTO backfill_reasons (run_id, reason) VALUES (?, ?)",
                        (rows[0][0], reason[:2000]))
        run = self.get(str(rows[0][0]))
        assert run is not None
        return run

    def get(self, run_id: str) -> BackfillRun | None:
        if not run_id.isdigit():
            return None
        with side_transaction(self._settings) as execute:
            rows = execute(f"SELECT {_RUN_COLUMNS} FROM backfill_runs WHERE id = ?",
                           (int(run_id),))
        return _run(rows[0]) if rows else None

    def recent(self, limit: int = 20) -> list[BackfillRun]:
        with side_transaction(self._settings) as execute:
            rows = execute(f"SELECT {_RUN_COLUMNS} FROM backfill_runs ORDER BY id DESC"
                           " LIMIT ?", (limit,))
        return [_run(row) for row in rows]

    def unfinished(self, kinds: tuple[str, ...] = KINDS) -> list[BackfillRun]:
        """Runs of these kinds still in progress (their process may have died)."""
        marks = ", ".join("?" * len(kinds))
        with side_transaction(self._settings) as execute:
            rows = execute(f"SELECT {_RUN_COLUMNS} FROM backfill_runs"
                           f" WHERE status = 'in_progress' AND type IN ({marks})"
                           " ORDER BY id", kinds)
        return [_run(row) for row in rows]

    def reason(self, run_id: str) -> str | None:
        """Why the appview started the run by itself (None for the others)."""
        with side_transaction(self._settings) as execute:
            rows = execute("SELECT reason FROM backfill_reasons WHERE run_id = ?",
                           (int(run_id),))
        return str(rows[0][0]) if rows else None

    def repos(self, run_id: str) -> list[str]:
        with side_transaction(self._settings) as execute:
            rows = execute("SELECT did FROM backfill_repos WHERE run_id = ? ORDER BY did",
                           (int(run_id),))
        return [str(row[0]) for row in rows]

    def add_repos(self, run_id: str, dids: list[str]) -> None:
        """Record the repos of a full_sync and that its listing is done, in one
        transaction (a resumed run keeps its list; one killed before this lists again)."""
        with side_transaction(self._settings) as execute:
            for did in dids:
                execute("INSERT INTO backfill_repos (run_id, did, state) VALUES (?, ?,"
                        " 'pending') ON CONFLICT (run_id, did) DO NOTHING",
                        (int(run_id), did))
            execute("UPDATE backfill_runs SET dids_total = (SELECT COUNT(*) FROM"
                    " backfill_repos WHERE run_id = ?) WHERE id = ?",
                    (int(run_id), int(run_id)))
            execute("INSERT INTO backfill_steps (run_id, step) VALUES (?, 'listed')"
                    " ON CONFLICT (run_id, step) DO NOTHING", (int(run_id),))

    def listed(self, run_id: str) -> bool:
        """Whether the run's repos were listed (``add_repos`` committed)."""
        with side_transaction(self._settings) as execute:
            rows = execute("SELECT 1 FROM backfill_steps WHERE run_id = ? AND"
                           " step = 'listed'", (int(run_id),))
        return bool(rows)

    def full_sync_owed(self) -> bool:
        """Whether the newest full_sync failed: the log may lack what only a full_sync
        brings (a new appview's history), whatever cursor live ingest wrote since."""
        with side_transaction(self._settings) as execute:
            rows = execute("SELECT status FROM backfill_runs WHERE type = 'full_sync'"
                           " ORDER BY id DESC LIMIT 1", ())
        return bool(rows) and rows[0][0] == "failed"

    def pending_repos(self, run_id: str) -> list[str]:
        with side_transaction(self._settings) as execute:
            rows = execute("SELECT did FROM backfill_repos WHERE run_id = ? AND"
                           " state = 'pending' ORDER BY did", (int(run_id),))
        return [str(row[0]) for row in rows]

    def repos_done(self, run_id: str, outcomes: list[tuple[str, bool]], *,
                   records: int) -> None:
        """Several repos finished, as ``(did, failed)``, whose events (``records`` were
        stored) are in the log: their rows and the run's counters in one transaction."""
        with side_transaction(self._settings) as execute:
            finished = 0
            for did, failed in outcomes:
                changed = execute("UPDATE backfill_repos SET state = ? WHERE run_id = ? AND"
                                  " did = ? AND state = 'pending' RETURNING did",
                                  ("failed" if failed else "done", int(run_id), did))
                finished += len(changed)
            execute("UPDATE backfill_runs SET dids_processed = dids_processed + ?,"
                    " records_indexed = records_indexed + ? WHERE id = ?",
                    (finished, records, int(run_id)))

    def add_records(self, run_id: str, records: int) -> None:
        with side_transaction(self._settings) as execute:
            execute("UPDATE backfill_runs SET records_indexed = records_indexed + ?"
                    " WHERE id = ?", (records, int(run_id)))

    def set_totals(self, run_id: str, *, dids_total: int) -> None:
        with side_transaction(self._settings) as execute:
            execute("UPDATE backfill_runs SET dids_total = ? WHERE id = ?",
                    (dids_total, int(run_id)))

    def add_error(self, run_id: str, did: str, collection: str | None, message: str) -> None:
        with side_transaction(self._settings) as execute:
            execute("INSERT INTO backfill_errors (run_id, did, collection, error_message,"
                    " created_at) VALUES (?, ?, ?, ?, ?)",
                    (int(run_id), did, collection, message[:2000], self.now()))
            execute("UPDATE backfill_runs SET error_count = error_count + 1 WHERE id = ?",
                    (int(run_id),))

    def errors(self, run_id: str, limit: int = ERRORS_SHOWN) -> list[BackfillError]:
        with side_transaction(self._settings) as execute:
            rows = execute("SELECT id, did, collection, error_message, created_at FROM"
                           " backfill_errors WHERE run_id = ? ORDER BY id LIMIT ?",
                           (int(run_id), limit))
        return [BackfillError(str(r[0]), str(r[1]), None if r[2] is None else str(r[2]),
                              str(r[3]), str(r[4])) for r in rows]

    def finish(self, run_id: str, *, status: str, error_message: str | None = None) -> None:
        with side_transaction(self._settings) as execute:
            execute("UPDATE backfill_runs SET status = ?, completed_at = ?, error_message = ?"
                    " WHERE id = ?", (status, self.now(), error_message, int(run_id)))
