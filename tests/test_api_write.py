"""The writing endpoints of the JSON API against the devnet PDS: the original's
``POST /api/topics`` and ``POST /api/posts`` (201 ``{uri, cid, rkey}``), ours (edit,
delete, reactions), and every bad input answered in words with nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from events.collections import MOD_ACTION
from events.records import StrongRef, mod_action_record
from projections.ids import post_id
from tests.admin_support import csrf_from
from tests.conftest import Backend
from tests.writes_support import CREATED, MemberApp, member_app
from web import urls

NOW = datetime.now(UTC)


@dataclass
class Signed:
    app: MemberApp
    headers: dict[str, str]  # the member's CSRF header

    @property
    def client(self) -> Any:
        return self.app.client

    def stored(self) -> int:
        """The records in alice's repo."""
        count: int = self.app.net.pds.repo(self.app.net.alice.did).count()
        return count

    def head(self) -> int:
        return self.app.services.event_log.head()

    async def post(self, path: str, body: Any, **headers: str) -> tuple[int, Any]:
        answer = await self.client.post(path, json=body, headers={**self.headers, **headers})
        return answer.status, await answer.json()


@pytest.fixture
async def signed(backend: Backend, aiohttp_server: Any) -> AsyncIterator[Signed]:
    async with member_app(backend, aiohttp_server) as app:
        signed_in = await app.password_sign_in(app.net.alice)
        assert signed_in.status == 303
        token = csrf_from(await (await app.client.get(urls.signin())).text())
        yield Signed(app, {"X-CSRF-Token": token})


async def test_the_originals_create_topic_and_reply(signed: Signed) -> None:
    status, topic = await signed.post(urls.api_topics(), {
        "title": "From the API", "text": "Hello **there**", "boardUri": signed.app.forum.board_uri})
    assert status == 201 and set(topic) == {"uri", "cid", "rkey"}
    assert topic["uri"] == f"at://{signed.app.net.alice.did}/space.atbb.post/{topic['rkey']}"
    stored = signed.app.net.pds.repo(signed.app.net.alice.did).get("space.atbb.post",
                                                                   topic["rkey"])
    assert stored is not None and stored.cid == topic["cid"]
    # read your writes: the API's next read has it
    read = await signed.client.get(urls.api_topic(post_id(topic["uri"])))
    assert read.status == 200 and (await read.json())["post"]["title"] == "From the API"
    status, reply = await signed.post(urls.api_posts(), {
        "text": "A reply", "rootPostId": post_id(topic["uri"]),
        "parentPostId": post_id(topic["uri"])})
    assert status == 201
    status, _nested = await signed.post(urls.api_posts(), {
        "text": "Nested", "rootPostId": topic["uri"], "parentPostId": reply["uri"]})
    assert status == 201
    thread = await (await signed.client.get(urls.api_topic(post_id(topic["uri"])))).json()
    assert [r["text"] for r in thread["replies"]] == ["A reply", "Nested"]
    assert thread["replies"][1]["parentUri"] == reply["uri"]


async def test_edit_delete_and_reactions(signed: Signed) -> None:
    status, topic = await signed.post(urls.api_topics(), {
        "title": "T", "text": "one", "boardUri": signed.app.forum.board_uri})
    pid = post_id(topic["uri"])
    edited = await signed.client.put(urls.api_post(pid), json={"text": "two", "title": "T2"},
                                     headers=signed.headers)
    assert edited.status == 200 and (await edited.json())["cid"] != topic["cid"]
    status, reaction = await signed.post(urls.api_post_reactions(pid), {"reaction": "👍"})
    assert status == 201 and reaction["uri"].startswith(f"at://{signed.app.net.alice.did}/")
    status, again = await signed.post(urls.api_post_reactions(pid), {"reaction": "👍"})
    assert status == 200 and again["alreadyActive"] is True
    page = await (await signed.client.get(urls.topic(pid))).text()
    reactors = page[page.find('class="reactors"'):].split("</small>", 1)[0]
    # named by the handle logged when alice signed in
    assert "👍 1" in page and signed.app.net.alice.handle in reactors
    removed = await signed.client.delete(urls.api_post_reactions(pid, "👍"),
                                         headers=signed.headers)
    assert removed.status == 200 and (await removed.json()) == {"removed": 1}
    gone = await signed.client.delete(urls.api_post(pid), headers=signed.headers)
    assert gone.status == 200 and (await gone.json())["deleted"] is True
    thread = await (await signed.client.get(urls.api_topic(pid))).json()
    assert thread["post"]["title"] is None  # a tombstone keeps its place, not its words


async def test_bearer_tokens_write_through_the_session_held_for_their_did(
        signed: Signed) -> None:
    services = signed.app.services
    _, alice_token = services.admin_tokens.issue(signed.app.net.alice.did, "alice's script")
    _, bob_token = services.admin_tokens.issue(signed.app.net.bob.did, "bob's script")
    body = {"title": "Scripted", "text": "by a script", "boardUri": signed.app.forum.board_uri}
    fresh = signed.client.session.cookie_jar
    fresh.clear()  # no cookie: the bearer token alone, and no CSRF token needed
    ok = await signed.client.post(urls.api_topics(), json=body,
                                  headers={"Authorization": f"Bearer {alice_token}"})
    assert ok.status == 201, await ok.text()
    refused = await signed.client.post(urls.api_topics(), json=body,
                                       headers={"Authorization": f"Bearer {bob_token}"})
    answer = await refused.json()
    assert refused.status == 401 and answer["error"] == "NoPdsSession"
    assert "sign in once" in answer["message"]


BAD_TOPICS = [
    ({"title": "t", "text": "", "boardUri": None}, 400, "post.text"),
    ({"title": "t", "text": "x" * 10_001, "boardUri": None}, 400, "10001 graphemes"),
    ({"title": "", "text": "x", "boardUri": None}, 400, "post.title"),
    ({"title": "t", "text": "x"}, 400, "boardUri is required"),
    ({"title": 5, "text": "x", "boardUri": None}, 400, "title must be a string"),
    ({"title": "t", "text": "x", "boardUri": "at://did:plc:nobody/space.atbb.forum.board/3x"},
     404, "No such board"),
    ({"title": "t", "text": "x", "boardUri": "not-a-uri"}, 400, "at-uri"),
]


@pytest.mark.parametrize("body, status, words", BAD_TOPICS)
async def test_bad_topics_are_answered_in_words_and_store_nothing(
        signed: Signed, body: dict[str, Any], status: int, words: str) -> None:
    if "boardUri" in body and body["boardUri"] is None:
        body = {**body, "boardUri": signed.app.forum.board_uri}
    before, head = signed.stored(), signed.head()
    got, answer = await signed.post(urls.api_topics(), body)
    assert (got, set(answer)) == (status, {"error", "message"}) and words in answer["message"]
    assert (signed.stored(), signed.head()) == (before, head)


async def test_bad_replies_are_answered_in_words_and_store_nothing(signed: Signed) -> None:
    app = signed.app
    _, topic = await signed.post(urls.api_topics(), {"title": "t", "text": "x",
                                                     "boardUri": app.forum.board_uri})
    _, other = await signed.post(urls.api_topics(), {"title": "u", "text": "y",
                                                     "boardUri": app.forum.board_uri})
    root = post_id(topic["uri"])
    forged = f"at://{app.net.alice.did}/space.atbb.post/3kforgedforged"
    cases = [
        ({"text": "x", "rootPostId": root, "title": "Re: t"}, 400, "no title"),
        ({"text": "x", "rootPostId": root, "parentPostId": forged}, 404, "No such post"),
        ({"text": "x", "rootPostId": root, "parentPostId": other["uri"]}, 400,
         "another thread"),
        ({"text": "x", "rootPostId": "nope"}, 404, "No such topic"),
        ({"text": "   ", "rootPostId": root}, 400, "post.text"),
        ({"rootPostId": root}, 400, "text is required"),
    ]
    for body, status, words in cases:
        before, head = signed.stored(), signed.head()
        got, answer = await signed.post(urls.api_posts(), body)
        assert got == status and words in answer["message"], (body, answer)
        assert (signed.stored(), signed.head()) == (before, head)
    broken = await signed.client.post(urls.api_posts(), data=b"{not json",
                                      headers={**signed.headers,
                                               "Content-Type": "application/json"})
    assert broken.status == 400 and "not JSON" in (await broken.json())["message"]


async def test_banned_and_locked_are_403_with_the_reason(signed: Signed) -> None:
    app = signed.app
    _, topic = await signed.post(urls.api_topics(), {"title": "t", "text": "x",
                                                     "boardUri": app.forum.board_uri})
    writer, owner = app.services.writer, app.forum.owner
    await writer.create(owner, MOD_ACTION, mod_action_record(
        "space.atbb.modAction.lock", subject_post=StrongRef(topic["uri"], topic["cid"]),
        reason="Settled.", created_by=owner.did, created_at=CREATED))
    before, head = signed.stored(), signed.head()
    got, answer = await signed.post(urls.api_posts(), {"text": "x", "rootPostId": topic["uri"]})
    assert got == 403 and "locked" in answer["message"]
    await writer.create(owner, MOD_ACTION, mod_action_record(
        "space.atbb.modAction.ban", subject_did=app.net.alice.did, reason="Flooding.",
        created_by=owner.did, created_at=CREATED))
    head = signed.head()
    got, answer = await signed.post(urls.api_topics(), {"title": "t", "text": "x",
                                                        "boardUri": app.forum.board_uri})
    assert got == 403 and answer["message"] == "You are banned from this forum: Flooding."
    assert (signed.stored(), signed.head()) == (before, head)


async def test_csrf_and_sessions(signed: Signed) -> None:
    body = {"title": "t", "text": "x", "boardUri": signed.app.forum.board_uri}
    before, head = signed.stored(), signed.head()
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        answer = await signed.client.post(urls.api_topics(), json=body, headers=headers)
        assert answer.status == 403 and "CSRF" in (await answer.json())["message"]
    # the member's grant revoked at their server: the session ends, in words
    for grant in signed.app.net.pds.oauth.grants_of(signed.app.net.alice.did):
        grant.revoked = True
    oauth = await signed.app.oauth_sign_in(signed.app.net.alice)
    assert oauth.status == 303
    token = csrf_from(await (await signed.client.get(urls.signin())).text())
    for grant in signed.app.net.pds.oauth.grants_of(signed.app.net.alice.did):
        grant.revoked = True
    answer = await signed.client.post(urls.api_topics(), json=body,
                                      headers={"X-CSRF-Token": token})
    assert answer.status == 401 and "sign in again" in (await answer.json())["message"]
    assert (signed.stored(), signed.head()) == (before, head)
    signed.client.session.cookie_jar.clear()
    anonymous = await signed.client.post(urls.api_topics(), json=body)
    assert anonymous.status == 401


async def test_the_limit_is_a_429_with_retry_after(backend: Backend,
                                                   aiohttp_server: Any) -> None:
    async with member_app(backend, aiohttp_server, writes_per_minute=1) as app:
        await app.password_sign_in(app.net.alice)
        headers = {"X-CSRF-Token": csrf_from(await (await app.client.get(urls.signin())).text())}
        body = {"title": "t", "text": "x", "boardUri": app.forum.board_uri}
        first = await app.client.post(urls.api_topics(), json=body, headers=headers)
        assert first.status == 201
        second = await app.client.post(urls.api_topics(), json=body, headers=headers)
        assert second.status == 429 and 1 <= int(second.headers["Retry-After"]) <= 60
        assert (await second.json())["error"] == "RateLimited"
