"""`GET /api/health`: always 200, says what works and what does not, no secrets.

It is public, so error texts lose whatever locates the insides: URLs (the Jetstream
URL, a database URL), host names, IP addresses, ports and file paths. The operator's
page (/admin) shows them whole."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from appview.ingest.firehose import FirehoseConsumer
from web.keys import LIVE, SERVICES

# Beyond this many seconds without a Jetstream event the firehose counts as lagging.
LAG_DEGRADED_SECONDS = 300.0

# Most specific first: a URL holds a host, a host may hold a port.
_REDACTIONS = (
    (re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*"), "<url>"),
    (re.compile(r"(?<![\w:.])\[?[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
                r"(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?:%[\w.-]+)?\]?(?::\d+)?(?![\w:.])"),
     "<address>"),
    (re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?(?![\w.])"), "<address>"),
    (re.compile(r"(?<![\w.-])(?:[\w-]+\.)+[A-Za-z][\w-]*\.?(?::\d+)?(?![\w-])"), "<host>"),
    (re.compile(r"(?<![\w.-])[\w-]+:\d{1,5}(?!\w)"), "<host>"),
    (re.compile(r"(?<![\w.])/[^\s'\"]*"), "<path>"),
)


def public_error(text: str | None) -> str | None:
    """``text`` without URLs, addresses, host names, ports and paths."""
    if text is None:
        return None
    for pattern, stand_in in _REDACTIONS:
        text = pattern.sub(stand_in, text)
    return text


async def health(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    now_us = services.clock.now_us()
    body: dict[str, Any] = {
        "status": "healthy",
        "timestamp": datetime.fromtimestamp(now_us / 1e6, UTC).isoformat().replace("+00:00", "Z"),
        "services": {},
    }
    problems: list[str] = []

    try:
        started = time.perf_counter()
        head = await asyncio.to_thread(services.event_log.head)
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        positions = {p.name: await asyncio.to_thread(p.position) for p in services.projections}
        body["services"]["database"] = {"status": "up", "latency_ms": latency_ms}
        body["services"]["projections"] = {
            name: {"position": pos, "lag_events": max(0, head - pos)}
            for name, pos in positions.items()
        }
    except Exception as exc:  # health reports the failure instead of failing itself
        body["services"]["database"] = {"status": "down", "error": type(exc).__name__}
        body["services"]["projections"] = {}
        problems.append("database")

    live = request.app.get(LIVE)
    if live is None:
        body["services"]["firehose"] = {
            "status": "disabled", "connected": False, "last_event_at": None,
            "lag_seconds": None,
        }
    elif live.role != "leader":
        # another process ingests (and projects); this one serves what it writes
        body["services"]["firehose"] = {
            "status": "follower", "connected": False, "last_event_at": None,
            "lag_seconds": None, "role": live.role,
        }
    else:
        status = live.consumer.status
        lag = status.lag_seconds(now_us)
        body["services"]["firehose"] = {
            "status": "connected" if status.connected else "disconnected",
            "role": live.role,
            "connected": status.connected,
            "last_event_at": None if status.last_event_at is None else datetime.fromtimestamp(
                status.last_event_at / 1e6, UTC).isoformat().replace("+00:00", "Z"),
            "lag_seconds": lag,
            "cursor": None if status.cursor is None else str(status.cursor),
            "circuit_breaker": status.breaker,
            "reconnects": max(0, status.connects - 1),
            "bad_frames": sum(status.bad_frames.values()),
            "stored": status.stored,
            "database_retries": status.database_retries,
            "last_error": public_error(status.last_error),
            "source": live.consumer.name,
        }
        if isinstance(live.consumer, FirehoseConsumer):
            checks = live.consumer.stats
            resyncs = live.consumer.resyncs
            body["services"]["firehose"]["verification"] = {
                "commits": checks.commits, "dropped": checks.dropped,
                "verified": checks.verified, "rejected": checks.rejected,
                "last_rejection": checks.last_rejection,
                "repo_resyncs": checks.resyncs,
                "repo_resyncs_queued": 0 if resyncs is None else resyncs.status.queued,
                "infos": dict(checks.infos),
            }
        if not status.connected:
            problems.append("firehose")
        projector = live.projector
        if projector.last_error is not None:
            problems.append("projections")
            body["services"]["projector"] = {
                "status": "failing", "error": public_error(projector.last_error),
                "failures_in_a_row": projector.failures_in_a_row,
                "failing_since": None if projector.failing_since is None else
                datetime.fromtimestamp(projector.failing_since, UTC).isoformat().replace(
                    "+00:00", "Z"),
                "retry_in_seconds": projector.retry_in,
            }
    agent = services.forum_agent.health()
    if "error" in agent:
        agent["error"] = public_error(agent["error"])
    body["services"]["forumAgent"] = agent
    if agent["status"] in ("retrying", "failed"):
        problems.append("forumAgent")  # read-only: nothing the forum decides is written
    if "database" in problems:
        body["status"] = "unhealthy"
    elif problems:
        body["status"] = "degraded"
    return web.json_response(body)
