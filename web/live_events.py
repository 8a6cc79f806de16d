"""What the live streams push (``web.pages.live``): the posts that arrived in the log
between two positions, as one viewer may see them in one topic or board.

Every stream of a process that waits at the same position asks the same question when
the read models move, so each answer is computed once and shared: the log's range is
read once per (after, until), and the visible posts of a topic or board once per range
and kind of viewer (moderators, everyone else: nothing else decides what a page shows,
``projections.queries_posts.visible``). 1,000 streams on one topic cost one log read and
two queries per new position, not 1,000."""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from appview.bootstrap import Services
from events import collections as c
from events.model import RecordEvent
from projections import queries_posts
from projections.db import placeholders
from projections.views import Viewer
from web import urls

T = TypeVar("T")

ScopeKind = Literal["topic", "board"]

# the widest range a stream reads from the log to catch up; a client further behind is
# told to reload the page instead (its page is that old)
CATCH_UP_SPAN = 50_000
_READ_BATCH = 2000
_KEPT = 256  # answers kept per cache: streams are rarely more than a few positions apart


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind  # "topic": its new replies; "board": its new topics
    uri: str


@dataclass(frozen=True, slots=True)
class LiveEvent:
    position: int  # the log position of the post's creation: the SSE event id
    kind: Literal["reply", "topic"]
    data: dict[str, Any]


class _Shared:
    """Answers by key, each computed once even when many ask at the same time."""

    def __init__(self) -> None:
        self._answers: OrderedDict[Hashable, asyncio.Future[Any]] = OrderedDict()

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        found = self._answers.get(key)
        if found is None or (found.done() and found.exception() is not None):
            found = asyncio.ensure_future(compute())
            self._answers[key] = found
            while len(self._answers) > _KEPT:
                self._answers.popitem(last=False)
        result: T = await asyncio.shield(found)
        return result


def frame(event: LiveEvent) -> bytes:
    data = json.dumps(event.data, separators=(",", ":"))
    return f"id: {event.position}\nevent: {event.kind}\ndata: {data}\n\n".encode()


class LiveEvents:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._arrivals = _Shared()
        self._scoped = _Shared()
        self._chunks = _Shared()

    async def chunk(self, scope: Scope, viewer: Viewer, after: int, until: int) -> bytes:
        """The stream's bytes for the step (after, until]: each event, then a bare id of
        ``until`` when the last event is not at it; encoded once for every stream."""
        async def compute() -> bytes:
            events = await self.events(scope, viewer, after, until)
            data = b"".join(frame(event) for event in events)
            if not events or events[-1].position != until:
                data += f"id: {until}\n\n".encode()  # covered, though nothing to show
            return data

        return await self._chunks.get((after, until, scope, viewer.is_moderator), compute)

    async def events(self, scope: Scope, viewer: Viewer, after: int,
                     until: int) -> list[LiveEvent]:
        """The posts of ``scope`` created in the log at positions (after, until] that
        ``viewer`` may see now, in log order."""
        moderator = viewer.is_moderator

        async def compute() -> list[LiveEvent]:
            arrivals = await self._arrivals.get(
                (after, until), lambda: asyncio.to_thread(self._read_arrivals, after, until))
            if not arrivals:
                return []
            return await asyncio.to_thread(self._visible, scope, viewer, arrivals)

        return await self._scoped.get((after, until, scope, moderator), compute)

    def _read_arrivals(self, after: int, until: int) -> list[tuple[int, str]]:
        """(position, uri) of each post created in (after, until]."""
        log = self._services.event_log
        found: list[tuple[int, str]] = []
        position = after
        while position < until:
            batch = log.read(position, _READ_BATCH, until=until)
            if not batch:
                break
            for logged in batch:
                event = logged.event
                if (isinstance(event, RecordEvent) and event.collection == c.POST
                        and event.operation == "create" and event.valid):
                    found.append((logged.position, event.uri))
            position = batch[-1].position
        return found

    def _visible(self, scope: Scope, viewer: Viewer,
                 arrivals: Sequence[tuple[int, str]]) -> list[LiveEvent]:
        services = self._services
        at = {uri: position for position, uri in arrivals}
        moment = datetime.fromtimestamp(services.clock.now_us() / 1e6, UTC)
        rows: list[dict[str, Any]] = []
        with services.queries.snapshot(viewer=viewer, now=moment) as ctx:
            cond, params = queries_posts.visible(ctx)
            column, kind = (("thread_uri", "reply") if scope.kind == "topic"
                            else ("board_uri", "topic"))
            uris = list(at)
            for start in range(0, len(uris), 500):
                chunk = uris[start:start + 500]
                rows += ctx.session.query_dicts(
                    "SELECT p.uri, p.id, p.did, p.title, p.thread_uri FROM posts p"
                    f" WHERE p.uri IN ({placeholders(len(chunk))}) AND p.{column} = ?"
                    f" AND p.kind = ? AND p.deleted = 0 AND {cond}",
                    [*chunk, scope.uri, kind, *params])
            handles = ctx.handles([row["did"] for row in rows])
        events = []
        for row in rows:
            data: dict[str, Any] = {"id": row["id"], "url": urls.post(row["id"]),
                                    "author": handles.get(row["did"]) or row["did"]}
            if scope.kind == "board":
                data["title"] = row["title"] or ""
                data["url"] = urls.topic(row["id"])
            events.append(LiveEvent(at[row["uri"]], "reply" if kind == "reply" else "topic",
                                    data))
        return sorted(events, key=lambda event: event.position)
