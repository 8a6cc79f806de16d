"""Turns Jetstream v1 lines into batched appends, with a verdict for every line.

Both `atbb events append FILE` and the live Jetstream consumer go through this one path:
parse and validate each line, keep what is a ``space.atbb.*`` observation, and append in
batches (one transaction each) together with the source cursor when there is one. A bad
line is counted and reported with its number; it never stops the rest.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from appview.clock import Clock
from events.jetstream import ParsedLine, parse_line
from events.lexicon import LexiconValidator
from events.log import AppendResult, CursorUpdate, EventLog
from events.model import CommitRejected, LogEvent, RecordEvent

log = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 1000
# Identity and account events of DIDs not (yet) known are parked, the latest of each kind
# per DID, for this many DIDs: a member's handle event usually comes before their first
# space.atbb.* record, and must not be lost for that.
MAX_PARKED_DIDS = 50_000


@dataclass
class LineError:
    line: int
    reason: str


@dataclass
class AppendStats:
    """What an append run saw. ``by_kind`` counts every well-formed line by kind and
    operation ("commit.create", "identity", ...), whether or not it was kept."""

    lines: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    ignored: int = 0
    invalid: int = 0
    errors: int = 0
    error_samples: list[LineError] = field(default_factory=list)
    result: AppendResult = field(default_factory=AppendResult)

    @property
    def stored(self) -> int:
        return self.result.appended

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "by_kind": dict(sorted(self.by_kind.items())),
            "stored": self.result.appended,
            "duplicates": self.result.duplicates,
            "stale": self.result.stale,
            "ignored": self.ignored,
            "invalid": self.invalid,
            "errors": self.errors,
        }


class LineAppender:
    """Feed lines one at a time; batches are appended when full and on ``flush``.
    With ``batch_size=None`` nothing is appended until ``flush`` (the live consumer
    flushes from a worker thread so the event loop never blocks on the database).

    ``cursor_source`` names the cursor to advance in the same transaction (the live
    consumer passes "jetstream"; a file import passes None and leaves the live cursor
    alone).
    """

    def __init__(
        self,
        event_log: EventLog,
        validator: LexiconValidator,
        *,
        forum_did: str,
        clock: Clock,
        batch_size: int | None = 2000,
        cursor_source: str | None = None,
        on_error: Callable[[LineError], None] | None = None,
    ) -> None:
        self._log = event_log
        self._validator = validator
        self._forum_did = forum_did
        self._clock = clock
        self._batch_size = batch_size
        self._cursor_source = cursor_source
        self._on_error = on_error
        self._pending: list[LogEvent] = []
        # Jetstream sends identity and account events for every DID on the network; only
        # those of DIDs that wrote a space.atbb.* record (and the Forum account) matter.
        self._known_dids: set[str] = set(event_log.known_dids())
        if forum_did:
            self._known_dids.add(forum_did)
        self._pending_cursor: int | None = None
        # The cursor value the last flush wrote (None when it wrote none).
        self.flushed_cursor: int | None = None
        self._parked: OrderedDict[str, dict[str, LogEvent]] = OrderedDict()
        self.stats = AppendStats()

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def has_pending_cursor(self) -> bool:
        return self._pending_cursor is not None

    def feed(self, line: str | bytes, line_number: int) -> ParsedLine:
        self.stats.lines += 1
        parsed = parse_line(
            line,
            forum_did=self._forum_did,
            validator=self._validator,
            observed_at=self._clock.now_us(),
        )
        if parsed.kind is not None:
            key = parsed.kind if parsed.operation is None else f"{parsed.kind}.{parsed.operation}"
            self.stats.by_kind[key] += 1
        if parsed.error is not None:
            self.note_error(LineError(line_number, parsed.error))
        elif parsed.ignored is not None:
            self.stats.ignored += 1
        elif parsed.event is not None:
            self.add(parsed.event, f"line {line_number}")
        if parsed.time_us is not None:
            self.advance(parsed.time_us)
        if self._batch_size is not None and len(self._pending) >= self._batch_size:
            self.flush()
        return parsed

    def knows(self, did: str) -> bool:
        """Whether ``did`` wrote a space.atbb.* record the log holds (or is the Forum's)."""
        return did in self._known_dids

    def add(self, event: LogEvent, where: str) -> None:
        """Queue one event for the next flush (``where`` names it in the log: "line 7",
        "seq 123"). Identity and account events of DIDs not yet known are parked until
        that DID's first record."""
        if isinstance(event, RecordEvent):
            if event.did not in self._known_dids:
                self._known_dids.add(event.did)
                self._pending.extend(self._parked.pop(event.did, {}).values())
            if not event.valid:
                self.stats.invalid += 1
                log.info("%s: invalid record kept in the log: %s", where, event.reason)
            self._pending.append(event)
        elif isinstance(event, CommitRejected):
            self.stats.invalid += 1
            log.warning("%s: refused commit kept in the log: %s", where, event.reason)
            self._pending.append(event)
        elif event.did in self._known_dids:
            self._pending.append(event)
        else:
            self._park(event)
            self.stats.ignored += 1

    def advance(self, cursor: int) -> None:
        """Move the cursor the next flush writes (it never goes back)."""
        if self._cursor_source is not None:
            current = self._pending_cursor
            self._pending_cursor = cursor if current is None else max(current, cursor)

    def flush(self) -> AppendResult:
        """Append what is pending and the cursor in one transaction. Nothing pending is
        dropped until it is stored, so a failed flush can simply be retried."""
        cursor = None
        if self._cursor_source is not None and self._pending_cursor is not None:
            cursor = CursorUpdate(self._cursor_source, self._pending_cursor)
        if not self._pending and cursor is None:
            return AppendResult()
        result = self._log.append(self._pending, cursor)
        self.flushed_cursor = None if cursor is None else cursor.value
        self._pending = []
        self._pending_cursor = None
        self.stats.result.merge(result)
        # Positions are only interesting per batch; keep the totals small.
        self.stats.result.positions.clear()
        return result

    def _park(self, event: LogEvent) -> None:
        parked = self._parked.get(event.did)
        if parked is None:
            parked = self._parked[event.did] = {}
            if len(self._parked) > MAX_PARKED_DIDS:
                self._parked.popitem(last=False)
        else:
            self._parked.move_to_end(event.did)
        parked[type(event).__name__] = event

    def note_error(self, error: LineError) -> None:
        self.stats.errors += 1
        if len(self.stats.error_samples) < MAX_REPORTED_ERRORS:
            self.stats.error_samples.append(error)
        log.warning("line %d: %s", error.line, error.reason)
        if self._on_error is not None:
            self._on_error(error)

