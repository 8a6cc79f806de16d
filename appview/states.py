"""States of the read models a developer names on the command line: a log position
(``1200``), a moment (``2026-12-01T14:05Z``), a generation (``gen:2``) or ``live``;
each read as a snapshot of every table (``projections.row_diff``) for `atbb diff`.

A position or a moment is projected afresh from the local log into memory
(``appview.logbook``); a generation is read where it is (SQLite file or PostgreSQL
schema), as it stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from appview.bootstrap import Services
from appview.logbook import reading
from events.moments import describe, parse_moment
from projections.generations import GenerationalReadModels
from projections.row_diff import Snapshot, snapshot

Kind = Literal["position", "moment", "generation", "live"]


@dataclass(frozen=True)
class StateName:
    kind: Kind
    value: int  # a position, unix microseconds, a generation number (0 for live)

    def __str__(self) -> str:
        if self.kind == "position":
            return f"position {self.value}"
        if self.kind == "moment":
            return describe(self.value)
        if self.kind == "generation":
            return f"generation {self.value}"
        return "the live read models"


def parse_state(text: str) -> StateName:
    """``1200``, ``gen:2``, ``live``, or an ISO 8601 time; ValueError otherwise."""
    raw = text.strip()
    if raw.isdigit():
        return StateName("position", int(raw))
    if raw.lower() == "live":
        return StateName("live", 0)
    if raw.lower().startswith(("gen:", "generation:")):
        number = raw.split(":", 1)[1]
        if not number.isdigit() or int(number) < 1:
            raise ValueError(f"a generation is gen:N with N at least 1, got {text!r}")
        return StateName("generation", int(number))
    try:
        return StateName("moment", parse_moment(raw))
    except ValueError:
        raise ValueError(f"{text!r} is neither a position (1200), a time "
                         "(2026-12-01T14:05Z), a generation (gen:2) nor live") from None


class UnknownState(LookupError):
    """A generation this appview does not have."""


def read_state(services: Services, name: StateName) -> tuple[Snapshot, str]:
    """Every row of the state named, and what it is in words (a moment says the
    position it stands for)."""
    if name.kind in ("generation", "live"):
        models = services.read_models
        if not isinstance(models, GenerationalReadModels):
            with models.read() as session:
                return snapshot(session.query_dicts), str(name)
        generation = models.live_generation() if name.kind == "live" else name.value
        if generation not in models.registry.existing():
            raise UnknownState(f"there is no generation {generation} (there are "
                               f"{', '.join(map(str, models.registry.existing())) or 'none'})")
        with models.store(generation).read() as session:
            rows = snapshot(session.query_dicts)
        live = " (live)" if generation == models.live_generation() else ""
        return rows, f"generation {generation}{live}"
    book = reading(services.event_log, forum_did=services.settings.forum_did)
    position = name.value if name.kind == "position" else book.position_at(name.value)
    with book.project(upto=position) as projected:
        rows = snapshot(projected.query)
    label = str(name) if name.kind == "position" else f"{name} (position {position})"
    return rows, label
