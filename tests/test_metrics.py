"""The Prometheus metrics (web/metrics.py), on both backends: requests counted and timed
by route pattern (never the raw path), what the process appended by source, the log head
and projection lag, rebuild progress, connection pools; the text format prometheus
parses; the whole served on a listener of its own."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

from appview.bootstrap import bootstrap
from tests.conftest import Backend
from tests.rebuild_support import append_lines, forum_lines
from tests.test_consumer import settings_for
from web.app import create_app
from web.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as the Prometheus text parser reads the exposition."""
    found = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_requests_are_counted_by_route_pattern_and_the_state_is_read(
        backend: Backend, aiohttp_client: AiohttpClient) -> None:
    forum_did, lines = forum_lines(topics=3)
    services = bootstrap(settings_for(backend, "metrics", forum_did))
    try:
        append_lines(services, lines)
        metrics = Metrics(services, None)
        client = await aiohttp_client(create_app(services, metrics=metrics))
        for path in ("/api/health", "/api/health", "/api/topics/111", "/api/topics/222",
                     "/no/such/page/at/all"):
            async with client.get(path) as answer:
                await answer.read()
        found = samples(metrics)
        requests = {labels: value for (name, labels), value in found.items()
                    if name == "atbb_http_requests_total"}
        assert requests[(("method", "GET"), ("route", "/api/health"),
                         ("status", "200"))] == 2
        # the two topics are one series: the pattern, never the ids
        topic = [value for labels, value in requests.items()
                 if ("route", "/api/topics/{id}") in labels]
        assert sum(topic) == 2
        assert not [labels for labels in requests if ("route", "/api/topics/111") in labels]
        assert requests[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
        assert found[("atbb_http_request_duration_seconds_count",
                      (("method", "GET"), ("route", "/api/health")))] == 2
        head = services.event_log.head()
        assert found[("atbb_log_head", ())] == head > 0
        appended = found[("atbb_events_appended_total", (("source", "jetstream"),))]
        assert appended == services.event_log.count()
        # nothing projected yet: the whole log is the lag
        assert found[("atbb_projection_lag_events", (("projection", "forum"),))] == head
        assert found[("atbb_projection_generation", (("projection", "forum"),))] == 1
        assert found[("atbb_rebuild_in_progress", ())] == 0
        assert found[("atbb_db_pool_limit", (("pool", "event_log"),))] > 0
        assert ("atbb_db_pool_connections", (("pool", "read_models"), ("state", "idle"))) \
            in found
        assert all(value == 1 for (name, _), value in found.items()
                   if name == "atbb_metrics_part_up")
        assert ("process_cpu_seconds_total", ()) in found
        # and the listener of its own answers in the text format
        metrics_client = await aiohttp_client(metrics.app())
        async with metrics_client.get("/metrics") as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "atbb_log_head" in await answer.text()
        async with client.get("/metrics") as answer:
            assert answer.status == 404  # never on the public port
    finally:
        services.close()


async def test_a_part_that_cannot_be_read_is_marked_down_and_the_rest_served(
        backend: Backend) -> None:
    forum_did, _ = forum_lines(topics=3)
    services = bootstrap(settings_for(backend, "down", forum_did))
    metrics = Metrics(services, None)
    services.close()  # every store closed: the state parts fail
    found = samples(metrics)
    assert found[("atbb_metrics_part_up", (("part", "log"),))] == 0
    assert ("process_cpu_seconds_total", ()) in found


