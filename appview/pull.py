"""`atbb events pull URL`: another appview's log, copied into this one over HTTP, a page
at a time, resuming where the last pull stopped.

The source answers ``GET /api/admin/events?after=POS&limit=N`` with the export's JSON
lines (``web.api.admin_events``). Each batch of pulled events is appended together with
the source position of its last event, as the cursor ``pull:<URL>``, in one transaction
of the local log (``EventLog.append(events, cursor)``): whatever stops a pull (a dropped
connection, a killed process, a half-received line), the local log holds exactly the
events up to the cursor and the next pull asks for those after it. An event received
twice would be refused by the log anyway (same record and rev), so nothing is doubled;
an event past the cursor is asked for again, so nothing is lost.
"""

from __future__ import annotations

import http.client
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from events.export import ExportError, ExportHeader, parse_header, parse_line
from events.log import CursorUpdate, EventLog
from events.model import LogEvent

PULL_PAGE = 50_000  # events asked for in one request
APPEND_BATCH = 5_000  # events appended (with the cursor) in one transaction
EVENTS_PATH = "/api/admin/events"

# Opens one request: the URL and the bearer token (or None), giving the answer's lines.
Fetch = Callable[[str, str | None], AbstractContextManager[Iterable[bytes]]]


class PullError(RuntimeError):
    """The source refused or could not be read; the message says why. What was pulled
    before it is kept, and the next pull resumes after it."""


@dataclass
class PullReport:
    source: str
    started_after: int = 0
    position: int = 0  # the source position the local log now holds everything up to
    source_head: int = 0  # the source's head, as its last answer gave it
    requests: int = 0
    received: int = 0
    appended: int = 0
    duplicates: int = 0
    forum_did: str = ""


def events_url(url: str) -> str:
    """The stream's URL from what a developer types: the forum's base URL (any path is
    replaced) or the stream's own URL; its query is dropped (the pull sets it)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return urlunsplit((parts.scheme, parts.netloc, EVENTS_PATH, "", ""))


def cursor_source(url: str, *, public: bool = False) -> str:
    """The local log's cursor of pulls from ``url`` (the public view is a log of its own:
    a pull of it must not resume where a full pull stopped, nor the other way round)."""
    return f"pull:{events_url(url)}" + ("?public=1" if public else "")


@contextmanager
def http_fetch(url: str, token: str | None) -> Iterator[Iterable[bytes]]:
    """GET ``url`` with the standard library's client, streaming the answer's lines."""
    request = urllib.request.Request(url, headers={"Accept": "application/jsonl"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as exc:
        body = exc.read(500).decode("utf-8", "replace")
        raise PullError(f"{url}: HTTP {exc.code}: {body}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise PullError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    with response:
        yield _lines(response)


def _lines(response: http.client.HTTPResponse, block: int = 1 << 20) -> Iterator[bytes]:
    """The answer's lines, each with its newline (the last without one when the answer
    was cut within it), read a block at a time: http.client's line by line reading of a
    chunked answer costs more than the parsing of the events."""
    rest = b""
    while chunk := response.read1(block):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line + b"\n"
    if rest:
        yield rest


def pull(log: EventLog, url: str, *, token: str | None = None, public: bool = False,
         page: int = PULL_PAGE, batch_size: int = APPEND_BATCH, fetch: Fetch = http_fetch,
         progress: Callable[[PullReport], None] | None = None) -> PullReport:
    """Append to ``log`` every event of the source's log after the last pull's, page by
    page, until an answer brings none. Raises PullError when a request fails; what was
    appended stays, with its cursor."""
    base = events_url(url)
    source = cursor_source(url, public=public)
    stored = log.cursor(source)
    report = PullReport(source=base)
    report.started_after = report.position = 0 if stored is None else stored.value
    while True:
        query = {"after": report.position, "limit": page, **({"public": 1} if public else {})}
        report.requests += 1
        received = _pull_page(log, fetch, f"{base}?{urlencode(query)}", token, source,
                              batch_size, report, progress)
        if received == 0:
            return report


class _Appender:
    """Appends the batches of one answer, in order, in a thread of its own, while the
    next batch is read and parsed (the store's work releases the GIL): each batch in
    one transaction with the cursor at its last event. ``close`` waits for every batch
    given and raises the first append's error, if any."""

    def __init__(self, log: EventLog, source: str, report: PullReport,
                 progress: Callable[[PullReport], None] | None) -> None:
        self._log, self._source, self._report, self._progress = log, source, report, progress
        self._queue: queue.Queue[tuple[list[LogEvent], int] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pull-append", daemon=True)
        self._thread.start()

    def put(self, batch: list[LogEvent], last: int) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((batch, last))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # after a failed append nothing later may be stored
            batch, last = item
            try:
                result = self._log.append(batch, CursorUpdate(self._source, last))
            except BaseException as exc:
                self._error = exc
                continue
            self._report.appended += result.appended
            self._report.duplicates += result.duplicates
            self._report.position = last
            if self._progress is not None:
                self._progress(self._report)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def _pull_page(log: EventLog, fetch: Fetch, url: str, token: str | None, source: str,
               batch_size: int, report: PullReport,
               progress: Callable[[PullReport], None] | None) -> int:
    batch: list[LogEvent] = []
    last = report.position
    received = 0
    appender = _Appender(log, source, report, progress)
    try:
        with fetch(url, token) as lines:
            header: ExportHeader | None = None
            try:
                for raw in lines:
                    if not raw.endswith(b"\n"):  # never half an event
                        raise PullError(f"{url}: the answer was cut within a line")
                    text = raw.decode("utf-8")
                    if header is None:
                        header = parse_header(text)
                        if header is None:
                            raise PullError(f"{url}: the answer does not open with an "
                                            "export header")
                        report.source_head = max(report.source_head, header.head)
                        report.forum_did = header.forum_did
                        continue
                    logged = parse_line(text)
                    if logged.position <= last:
                        raise PullError(f"{url}: positions out of order at {logged.position}")
                    batch.append(logged.event)
                    last = logged.position
                    received += 1
                    report.received += 1
                    if len(batch) >= batch_size:
                        appender.put(batch, last)
                        batch = []
            except (ExportError, UnicodeDecodeError) as exc:
                raise PullError(f"{url}: a line of the answer is not an event: {exc}") from None
            except (OSError, http.client.HTTPException) as exc:  # the connection dropped
                raise PullError(f"{url}: the answer was cut: {exc}") from None
    finally:
        # whatever was received whole is kept, with the cursor up to its last event
        try:
            if batch:
                appender.put(batch, last)
        finally:
            appender.close()
    return received
