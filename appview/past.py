"""The forum as it was at a past position or moment of the log, for `atbb serve --at` /
`--until`: fresh read models, in a scratch SQLite file, projected from the log up to
that position, beside (never instead of) the live ones."""

from __future__ import annotations

from pathlib import Path

from appview.bootstrap import Services, bootstrap
from appview.logbook import reading
from appview.settings import Settings
from events.moments import describe
from projections.readmodel import open_read_models
from projections.runner import project_from_start


def past_label(position: int, at: int | None) -> str:
    """How the banner says when: ``as it was at 2026-12-01 14:05:00 UTC (log position
    1180)``, or ``as it was at log position 1180``."""
    if at is not None:
        return f"as it was at {describe(at)} (log position {position})"
    return f"as it was at log position {position}"


def open_past(settings: Settings, directory: Path, *, until: int | None = None,
              at: int | None = None) -> tuple[Services, str]:
    """Services whose read models are the forum at position ``until`` or at moment ``at``
    (unix microseconds), projected into a new SQLite file in ``directory``; and the
    banner's words. The event log is the live one, read only by what is served."""
    if (until is None) == (at is None):
        raise ValueError("give a position or a moment, one of them")
    store = open_read_models(f"sqlite:///{directory}", location=str(directory / "past.sqlite3"))
    try:
        services = bootstrap(settings, read_models=store)
    except BaseException:
        store.close()
        raise
    try:
        log = services.event_log
        head = log.head()
        if at is not None:
            position = reading(log).position_at(at)
        else:
            assert until is not None
            position = min(until, head)
        project_from_start(log, services.projections, store,
                           batch_size=settings.projection_batch_size, until=position)
    except BaseException:
        services.close()
        raise
    return services, past_label(position, at)
