"""A post's edit history: every version the log keeps, oldest first, each with what
changed since the one before (a word-level difference: difflib)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from projections import queries_structure
from projections.history import post_history
from projections.views import PostVersion
from web import urls
from web.pages.common import (
    answer_early,
    now,
    page_viewer,
    read,
    render,
    services,
    validators,
)

_TOKEN = re.compile(r"\s+|[^\s]+")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.POST_VERSIONS, versions)


Change = tuple[str, str]
"""A run of text and what happened to it: ``same``, ``added`` or ``removed``."""


def word_changes(before: str, after: str) -> tuple[Change, ...]:
    """``after`` against ``before``, word by word (spaces kept), as runs."""
    old, new = _TOKEN.findall(before), _TOKEN.findall(after)
    runs: list[Change] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            runs.append(("same", "".join(new[j1:j2])))
            continue
        if op in ("delete", "replace"):
            runs.append(("removed", "".join(old[i1:i2])))
        if op in ("insert", "replace"):
            runs.append(("added", "".join(new[j1:j2])))
    return tuple(runs)


@dataclass(frozen=True)
class ShownVersion:
    version: PostVersion
    title_changes: tuple[Change, ...]
    text_changes: tuple[Change, ...]
    changed: bool


def shown_versions(versions: tuple[PostVersion, ...]) -> list[ShownVersion]:
    """Each version with its differences from the one before (none for the first)."""
    shown = []
    previous: PostVersion | None = None
    for version in versions:
        if previous is None:
            shown.append(ShownVersion(version, (), (), False))
        else:
            title_changes = (word_changes(previous.title or "", version.title or "")
                             if (previous.title or version.title) else ())
            shown.append(ShownVersion(
                version, title_changes, word_changes(previous.text, version.text),
                previous.text != version.text or previous.title != version.title))
        previous = version
    return shown


async def versions(request: web.Request) -> web.Response:
    post_ref = request.match_info["id"]
    viewer, moment = page_viewer(request), now(request)
    found = await validators(request, viewer, moment)
    if (early := answer_early(request, found, viewer)) is not None:
        return early
    app_services = services(request)

    def load() -> dict[str, Any] | None:
        with app_services.queries.snapshot(viewer=viewer, now=moment) as ctx:
            history = post_history(ctx, app_services.event_log, post_ref)
            forum = queries_structure.forum(ctx)
        if history is None:
            return None
        return {"forum": forum, "history": history,
                "shown": list(reversed(shown_versions(history.versions)))}

    context = await read(load)
    if context is None:
        raise web.HTTPNotFound(text="No such post.")
    return await render(request, "versions.html", context, found, viewer)
