"""Rendered pages kept by their ETag.

A page's ETag already names everything its HTML depends on (projection positions, bans
in force, the viewer, the URL, the theme choice, the rendering code), so the HTML
rendered once for an ETag serves every later request with that ETag: a busy page is
rendered once per change of the forum instead of once per reader. Bounded by entries and
bytes, least recently used first out; touched only from the event loop.
"""

from __future__ import annotations

from collections import OrderedDict


class PageCache:
    def __init__(self, *, max_entries: int = 2048, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._pages: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self.hits = 0
        self.misses = 0

    def get(self, etag: str) -> bytes | None:
        body = self._pages.get(etag)
        if body is None:
            self.misses += 1
            return None
        self._pages.move_to_end(etag)
        self.hits += 1
        return body

    def put(self, etag: str, body: bytes) -> None:
        if len(body) > self._max_bytes // 8:
            return  # one huge page must not flush everything else
        previous = self._pages.pop(etag, None)
        if previous is not None:
            self._bytes -= len(previous)
        self._pages[etag] = body
        self._bytes += len(body)
        while len(self._pages) > self._max_entries or self._bytes > self._max_bytes:
            _, evicted = self._pages.popitem(last=False)
            self._bytes -= len(evicted)

    def __len__(self) -> int:
        return len(self._pages)
