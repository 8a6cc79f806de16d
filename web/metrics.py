"""Prometheus metrics of one process, in the text format, on a listener of their own.

The listener (METRICS_HOST:METRICS_PORT, worker *i* of `atbb serve --workers N` on
METRICS_PORT + i) is apart from the public port and asks no token: it is bound where
only the scraper reaches. Each process is a target of its own (no multiprocess mode,
whose files and per-metric modes would need an environment variable before import and a
directory wiped at every start): Prometheus's own ``instance`` label tells them apart,
and ``sum``/``max`` across them give the appview's totals.

What is counted as it happens (requests: counts by route pattern, method and status,
latency histograms by route pattern and method) lives in this object's registry; what
the appview already keeps (what was appended and projected, lags, rebuild and backfill
progress, connection pools) is read when scraped (``StateCollector``), so nothing on the
ingest path pays for metrics nobody reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from appview.bootstrap import Services
from appview.live import LiveIngest

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
# Methods the router serves; any other is counted as "other" (a label per made-up
# method would let anyone grow the series without bound).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0)
UNMATCHED = "unmatched"  # 404s and 405s: no route, so no pattern


def route_of(request: web.Request) -> str:
    """The route pattern that answered (``/t/{rkey}``), never the raw path."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


class Metrics:
    """The registry of one process, the middleware timing its requests, and the
    application serving ``/metrics``."""

    def __init__(self, services: Services, live: LiveIngest | None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "atbb_http_requests", "HTTP requests answered, by route pattern, method and"
            " status.", ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "atbb_http_request_duration_seconds", "Time to answer a request, by route"
            " pattern and method (a streamed answer: until its end).", ["route", "method"],
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(StateCollector(services, live))
        ProcessCollector(registry=self.registry)

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            route = route_of(request)
            method = request.method if request.method in METHODS else "other"
            self.requests.labels(route, method, str(status)).inc()
            self.latency.labels(route, method).observe(time.perf_counter() - started)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        # the state is read from the databases: off the event loop
        body = await asyncio.to_thread(self.exposition)
        # the classic text format, which every Prometheus reads (our names need no more)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(METRICS_PATH, self.handle)
        return app


class StateCollector(Collector):
    """What the appview keeps anyway, read at each scrape. A part that cannot be read
    (the database down) is left out and ``atbb_metrics_part_up{part}`` says 0."""

    def __init__(self, services: Services, live: LiveIngest | None) -> None:
        self._services = services
        self._live = live

    def collect(self) -> Iterable[Metric]:
        parts: list[tuple[str, Callable[[], Iterator[Metric]]]] = [
            ("process", self._process), ("log", self._log),
            ("projections", self._projections), ("rebuild", self._rebuild),
            ("backfill", self._backfill), ("pools", self._pools),
        ]
        up = GaugeMetricFamily("atbb_metrics_part_up", "1 when the part of the metrics"
                               " could be read at this scrape, 0 when it failed.",
                               labels=["part"])
        for name, part in parts:
            try:
                families = list(part())
            except Exception as exc:  # a scrape never fails for one part
                log.debug("metrics part %s failed: %s", name, exc)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up

    def _process(self) -> Iterator[Metric]:
        live = self._live
        if live is None:
            return
        writer = GaugeMetricFamily("atbb_writer", "1 while this process holds the writer"
                                   " role (ingest, projections, backfill, rebuild).")
        writer.add_metric([], 1 if live.role == "leader" else 0)
        yield writer
        projected = CounterMetricFamily(
            "atbb_events_projected", "Events this process applied to the read models, by"
            " the source that brought them.", labels=["source"])
        for source, count in sorted(dict(self._services.projector.projected).items()):
            projected.add_metric([source], count)
        yield projected
        failures = GaugeMetricFamily("atbb_projector_failures_in_a_row",
                                     "Failed projection attempts since the last success.")
        failures.add_metric([], live.projector.failures_in_a_row)
        yield failures
        if live.role != "leader":
            return
        status = live.consumer.status
        connected = GaugeMetricFamily("atbb_ingest_connected", "1 while the ingest source"
                                      " is connected.", labels=["source"])
        connected.add_metric([live.consumer.name], 1 if status.connected else 0)
        yield connected
        lag = status.lag_seconds(self._services.clock.now_us())
        if lag is not None:
            family = GaugeMetricFamily("atbb_ingest_lag_seconds", "How far ingest is"
                                       " behind its source (as /api/health's lag).",
                                       labels=["source"])
            family.add_metric([live.consumer.name], lag)
            yield family

    def _log(self) -> Iterator[Metric]:
        event_log = self._services.event_log
        head = GaugeMetricFamily("atbb_log_head", "The event log's last position.")
        head.add_metric([], event_log.head())
        yield head
        counts = getattr(event_log, "appended_by_source", None)
        if counts is None:
            return
        appended = CounterMetricFamily("atbb_events_appended", "Events this process"
                                       " appended to the log, by source.", labels=["source"])
        for source, count in sorted(counts().items()):
            appended.add_metric([source], count)
        yield appended

    def _projections(self) -> Iterator[Metric]:
        position = GaugeMetricFamily("atbb_projection_position", "The last log position"
                                     " applied to the live read models.",
                                     labels=["projection"])
        lag = GaugeMetricFamily("atbb_projection_lag_events", "Events appended to the log"
                                " and not yet in the live read models.",
                                labels=["projection"])
        generation = GaugeMetricFamily("atbb_projection_generation", "The live generation"
                                       " of the read models.", labels=["projection"])
        for status in self._services.projection_status():
            position.add_metric([status.name], status.position)
            lag.add_metric([status.name], status.lag)
            generation.add_metric([status.name], status.generation)
        yield from (position, lag, generation)

    def _rebuild(self) -> Iterator[Metric]:
        rebuilds = self._services.rebuilds
        if rebuilds is None:
            return
        run = rebuilds.current()  # this process's or another's
        running = GaugeMetricFamily("atbb_rebuild_in_progress", "1 while a rebuild of the"
                                    " read models runs (in any process).")
        running.add_metric([], 0 if run is None else 1)
        yield running
        done = GaugeMetricFamily("atbb_rebuild_events_done", "Events the running rebuild"
                                 " has replayed.")
        total = GaugeMetricFamily("atbb_rebuild_events_total", "Events the running rebuild"
                                  " replays.")
        done.add_metric([], 0 if run is None else run.events_done)
        total.add_metric([], 0 if run is None else run.events_total)
        yield from (done, total)

    def _backfill(self) -> Iterator[Metric]:
        backfills = self._services.backfills
        if backfills is None:
            return
        unfinished = backfills.store.unfinished()
        run = unfinished[-1] if unfinished else None
        running = GaugeMetricFamily("atbb_backfill_in_progress", "1 while a backfill of"
                                    " this type is unfinished (in any process).",
                                    labels=["type"])
        for kind in ("catch_up", "full_sync"):
            running.add_metric([kind], 1 if run is not None and run.type == kind else 0)
        yield running
        repos_total = GaugeMetricFamily("atbb_backfill_repos_total", "Repos the"
                                        " unfinished full_sync reads.")
        repos_done = GaugeMetricFamily("atbb_backfill_repos_done", "Repos the unfinished"
                                       " full_sync has read.")
        records = GaugeMetricFamily("atbb_backfill_records", "Records the unfinished"
                                    " backfill has stored.")
        repos_total.add_metric([], 0 if run is None else run.dids_total)
        repos_done.add_metric([], 0 if run is None else run.dids_processed)
        records.add_metric([], 0 if run is None else run.records_indexed)
        yield from (repos_total, repos_done, records)

    def _pools(self) -> Iterator[Metric]:
        connections = GaugeMetricFamily("atbb_db_pool_connections", "Database connections"
                                        " of this process's pools, in use or idle.",
                                        labels=["pool", "state"])
        limit = GaugeMetricFamily("atbb_db_pool_limit", "Most connections a pool hands"
                                  " out at once.", labels=["pool"])
        for name, holder in (("event_log", self._services.event_log),
                             ("read_models", self._services.read_models)):
            measure = getattr(holder, "pool_use", None)
            use = None if measure is None else measure()
            if use is None:
                continue
            connections.add_metric([name, "in_use"], use.in_use)
            connections.add_metric([name, "idle"], use.idle)
            limit.add_metric([name], use.limit)
        yield from (connections, limit)
