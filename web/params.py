"""Integers from requests (``?offset=``, ``?limit=``, ``?page=``, ids in paths, cookie
fields), parsed strictly: ASCII digits only, within a range, or a clear error.

``int()`` alone is not enough: it takes ``"١٢"`` (Arabic-Indic digits), ``" 1_0 "`` and
numbers beyond what the databases store (SQLite and PostgreSQL integers end at 2**63 - 1:
``?offset=9223372036854775808`` was a 500), and ``str.isdigit`` is true for ``"²"``, which
``int()`` then refuses (a 500 again)."""

from __future__ import annotations

from collections.abc import Mapping

# Far beyond any page of a forum, far below the databases' 2**63 - 1 (an offset is also
# multiplied by a page size before it reaches them).
MAX_INT = 1_000_000_000
_MAX_DIGITS = len(str(MAX_INT))


class BadParameter(ValueError):
    """An integer parameter that is not one, or out of range; the message says which."""


def is_digits(raw: str, max_digits: int = _MAX_DIGITS) -> bool:
    """Whether ``raw`` is 1 to ``max_digits`` ASCII digits, nothing else."""
    return 0 < len(raw) <= max_digits and raw.isascii() and raw.isdigit()


def parse_int(name: str, raw: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """``raw`` as an integer from ``minimum`` to ``maximum``; BadParameter otherwise."""
    negative = raw.startswith("-") and is_digits(raw[1:], 40)
    value = -int(raw[1:]) if negative else int(raw) if is_digits(raw, 40) else None
    if value is None or not minimum <= value <= maximum:
        shown = raw if len(raw) <= 40 else raw[:37] + "..."
        raise BadParameter(
            f"{name} must be a whole number from {minimum} to {maximum}, got {shown!r}")
    return value


def query_int(query: Mapping[str, str], name: str, *, minimum: int = 0,
              maximum: int = MAX_INT) -> int | None:
    """The query parameter ``name`` (None when absent or empty), checked as parse_int."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    return parse_int(name, raw, minimum=minimum, maximum=maximum)
