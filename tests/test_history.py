"""Edit history from the log (projections.history, web/pages/history.py): every version a
viewer may see, oldest first, with the words that changed; a hidden post's versions for
moderators only; nothing for a post its author deleted; on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from appview.bootstrap import Services
from appview.devnet.scenario_model import tid
from projections.history import post_history
from projections.ids import post_id
from projections.views import Viewer
from tests.conftest import Backend
from tests.test_pages_xss import assert_inert
from tests.web_forum import (
    MODERATOR,
    Writer,
    get_text,
    page_client,
    scenario,
    seeded_services,
)
from web import urls
from web.pages.history import shown_versions, word_changes


@dataclass(frozen=True)
class Edited:
    lines: tuple[str, ...]
    topic: str
    hidden_reply: str
    deleted_reply: str


def edited_forum() -> Edited:
    """A topic edited twice (the last edit puts markup in its words), a reply edited and
    then hidden by a moderator, a reply edited and then deleted by its author."""
    story = scenario()
    end = max(op.at_us for op in story.operations())
    writer = Writer(end + 10_000_000)
    forum_did = story.forum.did
    board = next(op for op in story.operations()
                 if op.collection == "space.atbb.forum.board" and op.record is not None)
    lines: list[str] = []

    def write(rkey: str | None, record: dict[str, Any], operation: str = "create") -> str:
        line, uri, _cid = writer.write(forum_did, "space.atbb.post", rkey, record, operation)
        lines.append(line)
        return uri

    created = writer.now()
    topic = {"$type": "space.atbb.post", "createdAt": created, "title": "Draft title",
             "text": "The first words.", "board": {"uri": board.uri, "cid": board.cid}}
    topic_uri = write(None, topic)
    rkey = topic_uri.rsplit("/", 1)[1]
    write(rkey, {**topic, "text": "The first words, corrected.", "updatedAt": writer.now()},
          "update")
    write(rkey, {**topic, "title": "Final title", "updatedAt": writer.now(),
                 "text": "The first words, corrected. <script>alert(1)</script>"}, "update")
    root = {"uri": topic_uri, "cid": "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}
    replies = []
    for words in ("a reply to hide", "a reply to delete"):
        reply = {"$type": "space.atbb.post", "createdAt": writer.now(), "text": words,
                 "reply": {"root": root, "parent": root}}
        uri = write(None, reply)
        write(uri.rsplit("/", 1)[1], {**reply, "text": words + " (edited)",
                                       "updatedAt": writer.now()}, "update")
        replies.append(uri)
    hide = {"$type": "space.atbb.modAction", "action": "space.atbb.modAction.delete",
            "createdAt": writer.now(), "createdBy": forum_did, "reason": "Hidden for tests.",
            "subject": {"post": {"cid": root["cid"], "uri": replies[0]}}}
    line, _uri, _cid = writer.write(forum_did, "space.atbb.modAction", None, hide)
    lines.append(line)
    lines.append(delete_line(writer, forum_did, replies[1]))
    return Edited(tuple(lines), topic_uri, replies[0], replies[1])


def delete_line(writer: Writer, did: str, uri: str) -> str:
    writer.time_us += 1_000_000
    rkey = uri.rsplit("/", 1)[1]
    return json.dumps({"did": did, "time_us": writer.time_us, "kind": "commit", "commit": {
        "rev": tid((writer.time_us << 10) | 7), "operation": "delete",
        "collection": "space.atbb.post", "rkey": rkey}})


@pytest.fixture
def forum(backend: Backend) -> Iterator[tuple[Services, Edited]]:
    edited = edited_forum()
    with seeded_services(backend, edited.lines) as services:
        yield services, edited


ANON = Viewer.anonymous()


def history(services: Services, uri: str, viewer: Viewer = ANON) -> Any:
    with services.queries.snapshot(viewer=viewer, now=datetime.now(UTC)) as ctx:
        return post_history(ctx, services.event_log, uri)


def test_every_version_oldest_first(forum) -> None:
    services, edited = forum
    found = history(services, edited.topic)
    assert found is not None and found.post.uri == edited.topic
    assert [v.number for v in found.versions] == [1, 2, 3]
    assert [v.title for v in found.versions] == ["Draft title", "Draft title", "Final title"]
    assert found.versions[0].text == "The first words."
    assert found.versions[-1].text.endswith("<script>alert(1)</script>")
    assert found.versions[0].updated_at is None and found.versions[1].updated_at


def test_hidden_posts_for_moderators_and_deleted_ones_for_nobody(forum) -> None:
    services, edited = forum
    assert history(services, edited.hidden_reply) is None
    moderated = history(services, edited.hidden_reply, MODERATOR)
    assert moderated is not None and len(moderated.versions) == 2
    assert history(services, edited.deleted_reply) is None
    assert history(services, edited.deleted_reply, MODERATOR) is None
    assert history(services, "no-such-post") is None


def test_word_changes() -> None:
    assert word_changes("the first words.", "the first good words.") == (
        ("same", "the first "), ("added", "good "), ("same", "words."))
    assert word_changes("a b", "a c") == (("same", "a "), ("removed", "b"), ("added", "c"))
    assert word_changes("", "") == ()


async def test_the_edited_link_leads_to_the_versions_and_their_changes(forum) -> None:
    services, edited = forum
    topic_id = post_id(edited.topic)
    async with page_client(services) as client:
        topic = await get_text(client, urls.topic(topic_id))
        assert f'<a class="edited" href="{urls.post_versions(topic_id)}">edited</a>' in topic
        page = await get_text(client, urls.post_versions(topic_id))
    assert_inert(urls.post_versions(topic_id), page)
    assert page.count('<li class="version"') == 3
    assert "<del>words.</del><ins>words, corrected.</ins>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<del>Draft</del><ins>Final</ins> title" in page
    # newest first on the page
    assert page.index('id="v3"') < page.index('id="v1"')


async def test_hidden_versions_pages_for_moderators_only(forum) -> None:
    services, edited = forum
    reply_id = post_id(edited.hidden_reply)
    async with page_client(services) as client:
        await get_text(client, urls.post_versions(reply_id), 404)
        await get_text(client, urls.post_versions(post_id(edited.deleted_reply)), 404)
    async with page_client(services, MODERATOR) as client:
        page = await get_text(client, urls.post_versions(reply_id))
    assert "<ins> (edited)</ins>" in page


def test_shown_versions_mark_what_changed(forum) -> None:
    services, edited = forum
    found = history(services, edited.topic)
    shown = shown_versions(found.versions)
    assert [s.changed for s in shown] == [False, True, True]
    assert shown[1].title_changes == (("same", "Draft title"),)
