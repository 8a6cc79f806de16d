"""Posts' HTML carried over from the generation a rebuild replaces.

Rendering a body (``projections.post_html``) is most of a bulk load's work when done for
every post: about 220 µs a post with Markdown in it, two minutes of CPU at 1M events,
where the rest of a rebuild takes about 30 s. A rebuild's new generation mostly holds
the same posts with the same texts as the generation it replaces, whose rows hold their
HTML already. So the batches of a rebuild take a post's HTML from the live generation's
row when that row has the same uri and the very same text, and render only the others
(new posts, edits, posts whose row was lost).

The HTML is a function of the text and the renderer alone, so a post carried this way
has the HTML rendering would give, as long as the live generation's HTML was made by
this code's renderer: its stamp (``renderer_stamp``, recorded when the forum projection
first wrote the generation) must be this code's, or nothing is carried. A generation
built before the stamp existed, or by another version of the renderer or its libraries,
is rendered in full. ``atbb rebuild --verify`` (``projections.rebuild.verify``) never
carries: it compares a generation rendered from scratch with the live one.

An instance crosses to the preparing processes (``projections.prepare_process``) inside
the preparer; each process opens the live generation for reading on first use, without
creating anything in it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from projections.post_html import RENDERER_STAMP_NAME, renderer_stamp
from projections.readmodel import ReadModelStore

log = logging.getLogger(__name__)

StoreOpener = Callable[[], ReadModelStore]
"""Opens the generation being replaced, for reading (picklable, e.g. a
``functools.partial`` of ``projections.readmodel.open_read_models`` with
``create=False``)."""


class CarriedHtml:
    """The HTML of posts in the generation being replaced, looked up a batch at a time."""

    def __init__(self, open_store: StoreOpener) -> None:
        self._open_store = open_store
        self._store: ReadModelStore | None = None
        self._usable: bool | None = None

    def __getstate__(self) -> dict[str, Any]:
        # a copy in another process opens the store anew
        return {"_open_store": self._open_store, "_store": None, "_usable": None}

    def usable(self) -> bool:
        """Whether the generation's HTML was made by this code's renderer (asked once)."""
        if self._usable is None:
            try:
                stamp = self._open().versions().get(RENDERER_STAMP_NAME)
            except Exception:
                log.warning("posts' HTML is rendered anew: the generation being replaced"
                            " could not be read", exc_info=True)
                stamp = None
            self._usable = stamp == renderer_stamp()
            if not self._usable:
                self.close()
        return self._usable

    def html_of(self, texts: Iterable[tuple[str, str]]) -> dict[str, str]:
        """The stored HTML of each ``(uri, text)`` whose row has that very text."""
        wanted = dict(texts)
        if not wanted or not self.usable():
            return {}
        try:
            with self._open().read() as session:
                rows = session.query_in(
                    "SELECT uri, text, html FROM posts WHERE uri {in}", wanted)
        except Exception:
            log.warning("posts' HTML is rendered anew from here: the generation being"
                        " replaced could not be read", exc_info=True)
            self._usable = False
            self.close()
            return {}
        return {uri: html for uri, text, html in rows
                if html is not None and text is not None and wanted.get(uri) == text}

    def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            try:
                store.close()
            except Exception:
                log.debug("closing the generation being replaced failed", exc_info=True)

    def _open(self) -> ReadModelStore:
        if self._store is None:
            self._store = self._open_store()
        return self._store
