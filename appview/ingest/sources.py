"""The consumer of the configured ingest source (``INGEST_SOURCE``): what live ingest and
catch_up follow, built the same way for both."""

from __future__ import annotations

import random
from collections.abc import Callable

from appview.clock import Clock
from appview.ingest.appender import LineAppender
from appview.ingest.consumer import (
    WANTED_COLLECTIONS,
    JetstreamConsumer,
    ReconnectPolicy,
    StreamConsumer,
)
from appview.ingest.firehose import FirehoseConsumer
from appview.settings import Settings
from events.lexicon import LexiconValidator
from events.log import EventLog


def make_consumer(
    settings: Settings,
    *,
    event_log: EventLog,
    appender: LineAppender,
    validator: LexiconValidator,
    clock: Clock,
    url: str | None = None,
    on_batch: Callable[[], None] | None = None,
    on_outdated_cursor: Callable[[], None] | None = None,
    initial_cursor: int | None = None,
    heartbeat: float | None = None,
    policy: ReconnectPolicy | None = None,
    rng: random.Random | None = None,
    wanted_collections: tuple[str, ...] = WANTED_COLLECTIONS,
    verify: bool = True,
) -> StreamConsumer:
    """``url`` overrides the source's URL setting; ``verify=False`` (the firehose only)
    decodes without checking anything, for the benchmark's baseline."""
    beat = settings.jetstream_heartbeat_seconds if heartbeat is None else heartbeat
    if settings.ingest_source == "firehose":
        return FirehoseConsumer(
            url=url or settings.firehose_url, settings=settings, event_log=event_log,
            appender=appender, validator=validator, clock=clock,
            batch_size=settings.ingest_batch_size,
            batch_seconds=settings.ingest_batch_seconds, heartbeat=beat, policy=policy,
            rng=rng, on_batch=on_batch, on_outdated_cursor=on_outdated_cursor,
            initial_cursor=initial_cursor, verify=verify)
    return JetstreamConsumer(
        url=url or settings.jetstream_url, event_log=event_log, appender=appender,
        clock=clock, batch_size=settings.ingest_batch_size,
        batch_seconds=settings.ingest_batch_seconds,
        rewind_seconds=settings.ingest_rewind_seconds, heartbeat=beat,
        compress=settings.jetstream_compress, policy=policy, rng=rng, on_batch=on_batch,
        initial_cursor=initial_cursor, wanted_collections=wanted_collections)
