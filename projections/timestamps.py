"""Datetimes as the read models store them: one canonical text form whose string order is
time order on SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any


def _canonical(moment: datetime) -> str:
    # strftime("%Y") does not zero-pad years below 1000 on glibc; format by hand.
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T"
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"
    )


# What nearly every record carries: UTC with a "Z", at most microseconds. Such a value
# is already canonical but for the fraction's padding, once its date and clock exist.
_UTC_FAST = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?Z"
)


@lru_cache(maxsize=4096)  # a pure function; a forum's posts share few dates
def _real_date(text: str) -> bool:
    try:
        return date.fromisoformat(text).year >= 1
    except ValueError:
        return False


def normalize_datetime(value: Any) -> str | None:
    """An RFC 3339 datetime as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; None when the value
    is missing or not a datetime with a timezone (the lexicon validator rejects those,
    so None only appears on records it let through without the field)."""
    if not isinstance(value, str) or not value:
        return None
    fast = _UTC_FAST.fullmatch(value)
    if (fast is not None and _real_date(fast[1]) and fast[2] < "24" and fast[3] < "60"
            and fast[4] < "60"):
        return f"{value[:19]}.{(fast[5] or '').ljust(6, '0')}Z"
    return parse_datetime(value)


def parse_datetime(value: str) -> str | None:
    """:func:`normalize_datetime` without its fast path: any RFC 3339 form, parsed."""
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
