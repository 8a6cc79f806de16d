"""Datetimes as the read models store them: one canonical text form whose string order is
time order on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def _canonical(moment: datetime) -> str:
    # strftime("%Y") does not zero-pad years below 1000 on glibc; format by hand.
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T"
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"
    )


def normalize_datetime(value: Any) -> str | None:
    """An RFC 3339 datetime as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; None when the value
    is missing or not a datetime with a timezone (the lexicon validator rejects those,
    so None only appears on records it let through without the field)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    if len(text) > 10 and text[10] in ("t", " "):
        text = text[:10] + "T" + text[11:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    try:
        return _canonical(parsed)
    except (OverflowError, ValueError):
        return None


def format_datetime(moment: datetime) -> str:
    """``moment`` (naive means UTC) in the stored form, for comparing with ``now``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _canonical(moment)


def from_unix_micros(micros: int) -> str:
    """Unix microseconds in the stored form."""
    return format_datetime(datetime.fromtimestamp(micros / 1_000_000, tz=UTC))
