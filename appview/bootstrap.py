"""The composition root: the one place that builds the real adapters.

Everything the running appview needs (event log, validator, read models, projections,
clock) is built here from one Settings object and handed out in a Services container.
Tests call ``bootstrap`` with their own settings (a temporary SQLite directory, a
PostgreSQL schema of their own, the devnet's URLs) or pass fakes for any port.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from appview.clock import Clock, SystemClock
from appview.ingest.appender import LineAppender, LineError
from appview.settings import Settings
from events.lexicon import LexiconValidator
from events.log import EventLog
from events.store import open_event_log
from projections.forum import all_projections
from projections.queries import Queries
from projections.readmodel import ReadModelStore, open_read_models
from projections.runner import Projection


@dataclass
class Services:
    settings: Settings
    clock: Clock
    event_log: EventLog
    validator: LexiconValidator
    read_models: ReadModelStore
    queries: Queries
    projections: list[Projection] = field(default_factory=list)

    def appender(
        self,
        *,
        cursor_source: str | None = None,
        batch_size: int | None = None,
        on_error: Callable[[LineError], None] | None = None,
    ) -> LineAppender:
        return LineAppender(
            self.event_log,
            self.validator,
            forum_did=self.settings.forum_did,
            clock=self.clock,
            batch_size=batch_size,
            cursor_source=cursor_source,
            on_error=on_error,
        )

    def close(self) -> None:
        self.read_models.close()
        self.event_log.close()


def read_model_location(settings: Settings, generation: int = 1) -> str:
    """Where generation N of the read models lives: a SQLite file under DATA_DIR, or a
    PostgreSQL schema named after the event log's schema."""
    if settings.is_postgres:
        base = "atbb" if settings.database_schema == "public" else settings.database_schema
        return f"{base}_g{generation}"
    directory = Path(settings.read_model_url.removeprefix("sqlite:///"))
    return str(directory / f"gen-{generation}.sqlite3")


def bootstrap(
    settings: Settings,
    *,
    clock: Clock | None = None,
    event_log: EventLog | None = None,
    read_models: ReadModelStore | None = None,
    validator: LexiconValidator | None = None,
) -> Services:
    """Build the services from ``settings``; any port passed in is used as given."""
    if not settings.is_postgres:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = event_log or open_event_log(
        settings.event_log_url,
        schema=settings.database_schema if settings.is_postgres else None,
    )
    models = read_models or open_read_models(
        settings.read_model_url, location=read_model_location(settings)
    )
    forum_projections = all_projections(settings.forum_did)
    for projection in forum_projections:
        projection.attach(models)
    projections: list[Projection] = list(forum_projections)
    return Services(
        settings=settings,
        clock=clock or SystemClock(),
        event_log=log,
        validator=validator or LexiconValidator.load(),
        read_models=models,
        queries=Queries(models, settings.forum_did),
        projections=projections,
    )
