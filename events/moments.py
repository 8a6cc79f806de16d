"""Moments of the log: a time a developer types ("2026-12-01T14:05Z") and the position
the log had reached by then.

Each event carries the time the appview observed it (``observed_at``), taken just before
it was appended; positions follow append order. So the log as it stood at a moment T is
its prefix up to the first event observed after T: that event and every later one were
appended after T. (Observed times are not strictly increasing, when two processes wrote
or a backfill ran beside live ingest; an event observed at or before T and appended after
a later-observed one is left out with it, as it was still to come at T.)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from events.model import Logged


def parse_moment(text: str) -> int:
    """Unix microseconds of an ISO 8601 time: a date, or a date and time with or without
    seconds; ``Z`` or an offset, UTC when none is given. ValueError otherwise."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r} (e.g. 2026-12-01T14:05Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_micros(moment)


def to_micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


def describe(micros: int) -> str:
    """A moment as people read it: ``2026-12-01 14:05:00 UTC``."""
    return from_micros(micros).strftime("%Y-%m-%d %H:%M:%S UTC")


def position_at(events: Iterable[Logged], micros: int) -> int:
    """The position the log of ``events`` (in log order) had reached at ``micros``: the
    last one before the first event observed after it (0 when that is the first)."""
    position = 0
    for logged in events:
        if logged.event.observed_at > micros:
            break
        position = logged.position
    return position
