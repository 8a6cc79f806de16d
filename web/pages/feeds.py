"""Atom feeds (RFC 4287) of a board (its topics) and of a topic (its opening post and
newest replies). Feeds are public: they are always read as an anonymous viewer, whoever
fetches them, so a moderator's feed reader never republishes hidden posts. Built with
ElementTree, so every title, name and body is escaped as XML; bodies are the sanitised
HTML of the pages, carried as escaped text (``type="html"``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web

from projections import queries_posts, queries_structure
from projections.views import DELETED_TEXT, Author, Viewer
from web import urls
from web.pages import conditional
from web.pages.common import (
    MARKDOWN,
    now,
    read,
    services,
    unchanged,
    validators,
)
from web.pages.common import not_modified as not_modified_response

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
ENTRIES = 25
_EPOCH = "1970-01-01T00:00:00Z"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.BOARD_FEED, board_feed)
    router.add_get(urls.TOPIC_FEED, topic_feed)
    router.add_get(urls.FORUM_FEED, forum_feed)


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    title: str
    updated: str
    published: str | None
    author: Author
    link: str
    html: str


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


def _author(parent: ET.Element, author: Author, base: str) -> None:
    element = ET.SubElement(parent, "author")
    _text(element, "name", author.handle or author.did)
    _text(element, "uri", base + urls.member(author.did))


def atom(
    *, feed_id: str, title: str, alternate: str, self_link: str, author: str,
    entries: Iterable[Entry], base: str, fallback_updated: str,
) -> bytes:
    """The feed document: id, title, updated, author, alternate and self links, entries."""
    # the default namespace as a plain attribute: no global namespace registration
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    items = list(entries)
    _text(feed, "id", feed_id)
    _text(feed, "title", title)
    _text(feed, "updated", max((e.updated for e in items), default=fallback_updated))
    feed_author = ET.SubElement(feed, "author")
    _text(feed_author, "name", author)
    ET.SubElement(feed, "link", {"rel": "alternate", "type": "text/html",
                                                "href": base + alternate})
    ET.SubElement(feed, "link", {"rel": "self", "type": ATOM_TYPE,
                                                "href": base + self_link})
    for item in items:
        entry = ET.SubElement(feed, "entry")
        _text(entry, "id", item.id)
        _text(entry, "title", item.title)
        _text(entry, "updated", item.updated)
        if item.published:
            _text(entry, "published", item.published)
        _author(entry, item.author, base)
        ET.SubElement(entry, "link", {"rel": "alternate", "type": "text/html",
                                                     "href": base + item.link})
        _text(entry, "content", item.html, type="html")
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document


def _base(request: web.Request) -> str:
    return str(request.url.origin())


def _body(request: web.Request, text: str, deleted: bool) -> str:
    if deleted:
        return "<p><em>Deleted by author.</em></p>"
    return str(request.app[MARKDOWN].render(text))


async def _respond(request: web.Request, build: Any) -> web.StreamResponse:
    viewer, moment = Viewer.anonymous(), now(request)
    found = await validators(request, viewer, moment)
    if unchanged(request, found):
        return not_modified_response(found, viewer)
    document = await read(lambda: build(viewer, moment))
    if document is None:
        raise web.HTTPNotFound(text="No such feed.")
    response = web.Response(body=document, content_type=ATOM_TYPE, charset="utf-8")
    conditional.apply(response, found, private=False)
    return response


async def board_feed(request: web.Request) -> web.StreamResponse:
    board_id = request.match_info["id"]
    queries = services(request).queries
    base = _base(request)

    def build(viewer: Viewer, moment: Any) -> bytes | None:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            board = queries_structure.board(ctx, board_id)
            if board is None:
                return None
            topics = queries_posts.board_topics(ctx, board.uri, 0, ENTRIES).items
            forum = queries_structure.forum(ctx)
        entries = [
            Entry(
                id=t.uri,
                title=t.title or "(untitled)",
                updated=t.last_activity_at or t.created_at or _EPOCH,
                published=t.created_at,
                author=t.author,
                link=urls.topic(t.id),
                html=_body(request, t.text, t.deleted_by_author),
            )
            for t in topics
        ]
        return atom(
            feed_id=board.uri, title=board.name, alternate=urls.board(board.id),
            self_link=urls.board_feed(board.id),
            author=(forum.name if forum and forum.name else "atBB forum"),
            entries=entries, base=base, fallback_updated=board.created_at or _EPOCH,
        )

    return await _respond(request, build)


async def forum_feed(request: web.Request) -> web.StreamResponse:
    """The forum's newest topics, in every board."""
    queries = services(request).queries
    base = _base(request)

    def build(viewer: Viewer, moment: Any) -> bytes:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            topics = queries_posts.newest_topics(ctx, ENTRIES)
            forum = queries_structure.forum(ctx)
        name = forum.name if forum and forum.name else "atBB forum"
        entries = [
            Entry(id=t.uri, title=t.title or "(untitled)",
                  updated=t.created_at or _EPOCH, published=t.created_at, author=t.author,
                  link=urls.topic(t.id), html=_body(request, t.text, t.deleted_by_author))
            for t in topics
        ]
        return atom(feed_id=base + urls.forum_feed(), title=name, alternate=urls.index(),
                    self_link=urls.forum_feed(), author=name, entries=entries, base=base,
                    fallback_updated=_EPOCH)

    return await _respond(request, build)


async def topic_feed(request: web.Request) -> web.StreamResponse:
    topic_id = request.match_info["id"]
    queries = services(request).queries
    base = _base(request)

    def build(viewer: Viewer, moment: Any) -> bytes | None:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            head = queries_posts.topic(ctx, topic_id, 0, 1)
            if head is None:
                return None
            offset = max(0, head.replies.total - ENTRIES)
            page = queries_posts.topic(ctx, topic_id, offset, ENTRIES)
        if page is None:
            return None
        title = page.topic.title or "(untitled)"
        posts = [page.topic] if offset == 0 else []
        posts += list(page.replies.items)
        entries = [
            Entry(
                id=p.uri,
                title=title if p.kind == "topic" else f"Re: {title} (#{p.position})",
                updated=p.updated_at or p.created_at or _EPOCH,
                published=p.created_at,
                author=p.author,
                link=urls.post(p.id),
                html=_body(request, p.text, p.deleted_by_author or p.text == DELETED_TEXT),
            )
            for p in reversed(posts)
        ]
        return atom(
            feed_id=page.topic.uri, title=title, alternate=urls.topic(page.topic.id),
            self_link=urls.topic_feed(page.topic.id), author=page.topic.author.handle
            or page.topic.author.did, entries=entries, base=base,
            fallback_updated=page.topic.created_at or _EPOCH,
        )

    return await _respond(request, build)
