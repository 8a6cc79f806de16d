"""Turns Jetstream v1 lines into batched appends, with a verdict for every line.

Both `atbb events append FILE` and the live Jetstream consumer go through this one path:
parse and validate each line, keep what is a ``space.atbb.*`` observation, and append in
batches (one transaction each) together with the source cursor when there is one. A bad
line is counted and reported with its number; it never stops the rest.

Every line fed lands in exactly one bucket of :class:`AppendStats`, and each line that
was refused (malformed, or already in the log) or stored marked invalid is reported
once, with its number and reason, to ``on_line``.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from appview.clock import Clock
from events.jetstream import ParsedLine, parse_line
from events.lexicon import LexiconValidator
from events.log import AppendResult, CursorUpdate, EventLog
from events.model import (
    AccountStatusChanged,
    CommitRejected,
    IdentityChanged,
    LogEvent,
    RecordEvent,
)

log = logging.getLogger(__name__)

# Identity and account events of DIDs not (yet) known are parked, the one with the
# greatest seq of each kind per DID, for this many DIDs: a member's handle event usually
# comes before their first space.atbb.* record, and must not be lost for that.
MAX_PARKED_DIDS = 50_000

Outcome: TypeAlias = Literal["error", "duplicate", "invalid"]
Parkable: TypeAlias = IdentityChanged | AccountStatusChanged


@dataclass(frozen=True, slots=True)
class LineError:
    """A line the report names: ``error``, malformed (nothing appended); ``duplicate``,
    refused by the log, which already held it; ``invalid``, a record stored marked
    invalid (projections skip it). ``reason`` says why."""

    line: int
    reason: str
    outcome: Outcome = "error"


@dataclass
class AppendStats:
    """What an append run saw. ``by_kind`` counts every well-formed line by kind and
    operation ("commit.create", "identity", ...), whether or not it was kept.

    Every line fed is in exactly one bucket, so they sum to ``lines``:
    ``stored`` (in the log; ``invalid`` of them marked invalid), ``duplicates`` (the log
    already held the event), ``ignored`` (a blank line, or a record outside
    ``space.atbb.*``), ``held`` (an identity or account event of a DID that wrote no
    ``space.atbb.*`` record: parked until it does, or passed over for one of the same
    DID with a greater seq), ``errors`` (malformed) and ``pending`` (fed, to be
    appended by the next flush).
    """

    lines: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    stored: int = 0
    invalid: int = 0
    duplicates: int = 0
    ignored: int = 0
    held: int = 0
    errors: int = 0
    pending: int = 0

    @property
    def buckets(self) -> int:
        """The buckets' sum: always ``lines``."""
        return (self.stored + self.duplicates + self.ignored + self.held + self.errors
                + self.pending)

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "by_kind": dict(sorted(self.by_kind.items())),
            "stored": self.stored,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "held": self.held,
            "errors": self.errors,
            "pending": self.pending,
        }


def _described(event: LogEvent) -> str:
    if isinstance(event, RecordEvent):
        return f"{event.uri} at rev {event.rev}"
    if isinstance(event, CommitRejected):
        return f"the refused commit of {event.uri} at seq {event.seq}"
    kind = "identity" if isinstance(event, IdentityChanged) else "account"
    return f"the {kind} event of {event.did} with seq {event.seq}"


class LineAppender:
    """Feed lines one at a time; batches are appended when full and on ``flush``.
    With ``batch_size=None`` nothing is appended until ``flush`` (the live consumer
    flushes from a worker thread so the event loop never blocks on the database).

    ``cursor_source`` names the cursor to advance in the same transaction (the live
    consumer passes "jetstream"; a file import passes None and leaves the live cursor
    alone). ``on_line`` hears of every line the report names (:class:`LineError`), once.
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
        on_line: Callable[[LineError], None] | None = None,
    ) -> None:
        self._log = event_log
        self._validator = validator
        self._forum_did = forum_did
        self._clock = clock
        self._batch_size = batch_size
        self._cursor_source = cursor_source
        self._on_line = on_line
        self._pending: list[LogEvent] = []
        self._pending_lines: list[int] = []
        # Jetstream sends identity and account events for every DID on the network; only
        # those of DIDs that wrote a space.atbb.* record (and the Forum account) matter.
        self._known_dids: set[str] = set(event_log.known_dids())
        if forum_did:
            self._known_dids.add(forum_did)
        self._pending_cursor: int | None = None
        # The cursor value the last flush wrote (None when it wrote none).
        self.flushed_cursor: int | None = None
        # per DID, per event type: the parked event and its line
        self._parked: OrderedDict[str, dict[str, tuple[Parkable, int]]] = OrderedDict()
        self.stats = AppendStats()

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def has_pending_cursor(self) -> bool:
        return self._pending_cursor is not None

    def feed(self, line: str | bytes, line_number: int) -> ParsedLine:
        stats = self.stats
        stats.lines += 1
        if not line.strip():
            stats.ignored += 1
            return ParsedLine(None, None, None, None, "blank line", None)
        parsed = parse_line(
            line,
            forum_did=self._forum_did,
            validator=self._validator,
            observed_at=self._clock.now_us(),
        )
        if parsed.kind is not None:
            key = parsed.kind if parsed.operation is None else f"{parsed.kind}.{parsed.operation}"
            stats.by_kind[key] += 1
        if parsed.error is not None:
            self.note_error(LineError(line_number, parsed.error))
        elif parsed.ignored is not None:
            stats.ignored += 1
        elif parsed.event is not None:
            self.add(parsed.event, line_number)
        if parsed.time_us is not None:
            self.advance(parsed.time_us)
        if self._batch_size is not None and len(self._pending) >= self._batch_size:
            self.flush()
        return parsed

    def knows(self, did: str) -> bool:
        """Whether ``did`` wrote a space.atbb.* record the log holds (or is the Forum's)."""
        return did in self._known_dids

    def add(self, event: LogEvent, line_number: int) -> None:
        """Queue one event for the next flush (``line_number``: the line or frame it came
        from, for the report). Identity and account events of DIDs not yet known are
        parked until that DID's first record."""
        stats = self.stats
        if isinstance(event, RecordEvent | CommitRejected):
            if event.did not in self._known_dids:
                self._known_dids.add(event.did)
                for parked, parked_line in self._parked.pop(event.did, {}).values():
                    stats.held -= 1
                    self._add(parked, parked_line)
            self._add(event, line_number)
        elif event.did in self._known_dids:
            self._add(event, line_number)
        else:
            stats.held += 1
            self._park(event, line_number)

    def advance(self, cursor: int) -> None:
        """Move the cursor the next flush writes (it never goes back)."""
        if self._cursor_source is not None:
            current = self._pending_cursor
            self._pending_cursor = cursor if current is None else max(current, cursor)

    def note_error(self, error: LineError) -> None:
        """A malformed line (or frame): counted, logged once, reported once."""
        self.stats.errors += 1
        log.warning("line %d: %s", error.line, error.reason)
        self._report(error)

    def flush(self) -> AppendResult:
        """Append what is pending and the cursor in one transaction. Nothing pending is
        dropped until it is stored, so a failed flush can simply be retried."""
        cursor = None
        if self._cursor_source is not None and self._pending_cursor is not None:
            cursor = CursorUpdate(self._cursor_source, self._pending_cursor)
        if not self._pending and cursor is None:
            return AppendResult()
        events, lines = self._pending, self._pending_lines
        result = self._log.append(events, cursor)
        self.flushed_cursor = None if cursor is None else cursor.value
        self._pending = []
        self._pending_lines = []
        self._pending_cursor = None
        stats = self.stats
        stats.pending -= len(events)
        stats.stored += result.appended
        stats.duplicates += result.duplicates
        # the appender keeps no record outside space.atbb.* (parse_line ignores them),
        # so the log drops none; were it to, they are not ours either
        stats.ignored += result.dropped
        refused = set(result.duplicate_indexes)
        for index in result.duplicate_indexes:
            event = events[index]
            log.debug("line %d: already in the log: %s", lines[index], _described(event))
            self._report(LineError(lines[index], f"already in the log: {_described(event)}",
                                   "duplicate"))
        for index, event in enumerate(events):
            if index in refused:
                continue
            if isinstance(event, RecordEvent) and not event.valid:
                what = "invalid record"
            elif isinstance(event, CommitRejected):
                what = "refused commit"
            else:
                continue
            stats.invalid += 1
            reason = event.reason or "marked invalid"
            log.warning("line %d: %s kept in the log: %s: %s", lines[index], what,
                        event.uri, reason)
            self._report(LineError(lines[index], f"{event.uri}: {reason}", "invalid"))
        return result

    def _add(self, event: LogEvent, line_number: int) -> None:
        self._pending.append(event)
        self._pending_lines.append(line_number)
        self.stats.pending += 1

    def _park(self, event: Parkable, line_number: int) -> None:
        """Keep the event if it has the greatest seq of its kind seen for its DID (the
        one the projections would keep), so the order of arrival does not decide."""
        parked = self._parked.get(event.did)
        if parked is None:
            parked = self._parked[event.did] = {}
            if len(self._parked) > MAX_PARKED_DIDS:
                self._parked.popitem(last=False)
        else:
            self._parked.move_to_end(event.did)
        kind = type(event).__name__
        known = parked.get(kind)
        if known is None or event.seq > known[0].seq:
            parked[kind] = (event, line_number)

    def _report(self, line: LineError) -> None:
        if self._on_line is not None:
            self._on_line(line)
