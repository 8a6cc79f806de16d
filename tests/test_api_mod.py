"""The moderation endpoints: every role against every action and every target (the API
allows exactly what the permission and priority rules allow, and writes exactly one
record when it acts), refusals (401, CSRF, 403, 400 per field, 404, 500/503 without
the agent) with nothing written, idempotence, temporary bans, the mod log."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from appview.writes.forum_actions import ACTIONS, ActionKind
from events.collections import MOD_ACTION
from tests.admin_support import csrf_from
from tests.conftest import Backend
from tests.mod_support import ACTORS, PRIORITY, ModForum, mod_forum
from web import urls

# What each default role grants (events.roles.DEFAULT_ROLES).
GRANTS = {
    "Owner": {"banUsers", "lockTopics", "pinTopics", "moderatePosts"},
    "Admin": {"banUsers", "lockTopics", "pinTopics", "moderatePosts"},
    "Moderator": {"banUsers", "lockTopics", "pinTopics", "moderatePosts"},
    "Member": set(),
}
_PATH = {"ban": "ban", "unban": "ban", "lock": "lock", "unlock": "lock", "pin": "pin",
         "unpin": "pin", "delete": "hide", "undelete": "hide"}
_FIELD = {"user": "targetDid", "topic": "topicId", "post": "postId"}


def _authority(actor: str) -> int:
    if actor == "forum":
        return -1
    return PRIORITY[ACTORS[actor] or "Member"]


def _grants(actor: str, permission: str) -> bool:
    return actor == "forum" or permission in GRANTS[ACTORS[actor] or "Member"]


@dataclass(frozen=True)
class Case:
    actor: str
    action: str
    target: str  # an actor
    post: str  # "user", "topic" or "reply"


def _expected(case: Case, kind: ActionKind) -> int:
    """The status the rules give (before state: 200 means allowed)."""
    if not _grants(case.actor, kind.permission):
        return 403
    if kind.subject == "topic" and case.post == "reply":
        return 400
    if case.actor == case.target:
        return 403 if kind.subject == "user" else 200
    return 200 if _authority(case.actor) < _authority(case.target) else 403


def _cases() -> list[Case]:
    actors = ["forum", *ACTORS]
    cases = []
    for actor in actors:
        for name, kind in ACTIONS.items():
            for target in ACTORS:  # the Forum account writes no posts
                if kind.subject == "user":
                    cases.append(Case(actor, name, target, "user"))
                else:
                    cases.extend(Case(actor, name, target, post) for post in ("topic", "reply"))
            if kind.subject == "user":
                cases.append(Case(actor, name, "forum", "user"))
    random.Random(28).shuffle(cases)  # actions and reversals meet in many orders
    return cases


async def _act(forum: ModForum, case: Case, kind: ActionKind) -> tuple[int, Any]:
    path = _PATH[case.action]
    if kind.subject == "user":
        subject = forum.did(case.target)
    elif case.post == "topic":
        subject = forum.topic_id(case.target)
    else:
        subject = forum.reply_id(case.target)
    body: dict[str, Any] = {"reason": f"{case.actor} {case.action}s"}
    if kind.puts:
        body[_FIELD[kind.subject]] = subject
        return await forum.call("POST", urls.api_mod(path), case.actor, body)
    return await forum.call("DELETE", urls.api_mod(path, subject), case.actor, body)


async def test_every_role_action_and_target_is_decided_by_permission_and_priority(
        backend: Backend) -> None:
    async with mod_forum(backend) as forum:
        in_force: set[tuple[str, str, str]] = set()  # (family, target, post)
        written = 0
        for case in _cases():
            kind = ACTIONS[case.action]
            before = forum.forum_records()
            status, body = await _act(forum, case, kind)
            expected = _expected(case, kind)
            assert status == expected, (case, body)
            family = _PATH[case.action]
            key = (family, case.target, case.post)
            if status != 200:
                assert forum.forum_records() == before, case
                continue
            already = (key in in_force) == kind.puts
            assert body["alreadyActive"] is already, (case, body)
            assert body["action"] == f"space.atbb.modAction.{case.action}"
            assert forum.forum_records() == before + (0 if already else 1), case
            if not already:
                written += 1
                assert body["uri"].startswith(f"at://{forum.owner.did}/{MOD_ACTION}/")
                stored = forum.owner.repo.get(MOD_ACTION, body["uri"].rsplit("/", 1)[1])
                assert stored is not None and stored.value["createdBy"] == forum.did(case.actor)
            if kind.puts:
                in_force.add(key)
            else:
                in_force.discard(key)
        assert written > 20
        # the read models agree with what was decided
        log = forum.services.queries.modlog(limit=100)
        assert log.total == written


@pytest.fixture
async def forum(backend: Backend) -> Any:
    async with mod_forum(backend) as made:
        yield made


async def test_refusals_write_nothing(forum: ModForum) -> None:
    before = forum.forum_records()
    topic = forum.topic_id("member")
    # 401 without a credential, for every endpoint
    for method, path in (("POST", urls.api_mod("ban")),
                         ("DELETE", urls.api_mod("ban", "did:plc:x")),
                         ("POST", urls.api_mod("lock")), ("DELETE", urls.api_mod("lock", topic)),
                         ("POST", urls.api_mod("pin")), ("DELETE", urls.api_mod("pin", topic)),
                         ("POST", urls.api_mod("hide")), ("DELETE", urls.api_mod("hide", topic)),
                         ("GET", urls.api_admin_modlog())):
        status, body = await forum.call(method, path, None, {"reason": "x", "topicId": topic})
        assert status == 401 and body["error"] == "Unauthorized", path
        # 403 without the permission (a member)
        status, body = await forum.call(method, path, "member", {"reason": "x",
                                                                 "topicId": topic})
        assert status == 403, path
    # 400 for each bad field
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("ban", {"reason": "x"}, "targetDid"),
        ("ban", {"targetDid": "not a did", "reason": "x"}, "targetDid"),
        ("ban", {"targetDid": forum.did("member")}, "reason"),
        ("ban", {"targetDid": forum.did("member"), "reason": "   "}, "reason"),
        ("ban", {"targetDid": forum.did("member"), "reason": "x" * 3001}, "reason"),
        ("ban", {"targetDid": forum.did("member"), "reason": "x", "expiresAt": "tomorrow"},
         "expiresAt"),
        ("ban", {"targetDid": forum.did("member"), "reason": "x",
                 "expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
        ("ban", {"targetDid": forum.did("member"), "reason": "x", "expiresAt": 5},
         "expiresAt"),
        ("lock", {"reason": "x"}, "topicId"),
        ("lock", {"topicId": forum.reply_id("member"), "reason": "x"}, "reply"),
        ("pin", {"topicId": ["x"], "reason": "x"}, "topicId"),
        ("hide", {"postId": forum.reply_id("member"), "reason": 7}, "reason"),
    ]
    for path, body, field in bad:
        status, answer = await forum.call("POST", urls.api_mod(path), "mod", body)
        assert status == 400, (path, body, answer)
        assert field in answer["message"], (field, answer)
    answer = await forum.client.post(urls.api_mod("ban"), data=b"{not json",
                                     headers=forum.headers("mod"))
    assert answer.status == 400
    # 404: an unknown member or post
    status, _ = await forum.call("POST", urls.api_mod("ban"), "mod",
                                 {"targetDid": "did:plc:" + "a" * 24, "reason": "x"})
    assert status == 404
    status, _ = await forum.call("POST", urls.api_mod("hide"), "mod",
                                 {"postId": "3zzzzzzzzzzzz-aaaaaa", "reason": "x"})
    assert status == 404
    assert forum.forum_records() == before


async def test_a_cookie_session_needs_the_csrf_token(forum: ModForum) -> None:
    before = forum.forum_records()
    token = forum.tokens["mod"]
    signed = await forum.client.post("/signin", data={
        "token": token, "csrf_token": csrf_from(await (await forum.client.get("/signin")).text())},
        allow_redirects=False)
    assert signed.status in (302, 303), await signed.text()
    body = {"postId": forum.reply_id("member"), "reason": "spam"}
    refused = await forum.client.post(urls.api_mod("hide"), json=body)
    assert refused.status == 403 and "CSRF" in (await refused.json())["message"]
    assert forum.forum_records() == before
    csrf = csrf_from(await (await forum.client.get("/signin")).text())
    accepted = await forum.client.post(urls.api_mod("hide"), json=body,
                                       headers={"X-CSRF-Token": csrf})
    assert accepted.status == 200, await accepted.text()
    assert forum.forum_records() == before + 1


async def test_without_the_agent_nothing_is_written(backend: Backend) -> None:
    async with mod_forum(backend) as forum:
        before = forum.forum_records()
        agent = forum.services.forum_agent
        agent._session = None
        agent.status = "unavailable"
        body = {"postId": forum.reply_id("member"), "reason": "spam"}
        status, answer = await forum.call("POST", urls.api_mod("hide"), "mod", body)
        assert (status, answer["error"]) == (500, "ForumAgentUnavailable")
        agent.status = "retrying"
        status, answer = await forum.call("POST", urls.api_mod("hide"), "mod", body)
        assert (status, answer["error"]) == (503, "ForumAgentNotAuthenticated")
        assert forum.forum_records() == before


async def test_the_originals_shapes_temporary_bans_and_the_mod_log(forum: ModForum) -> None:
    member = forum.did("member")
    status, banned = await forum.call("POST", urls.api_mod("ban"), "mod", {
        "targetDid": member, "reason": "cool off", "expiresAt": "2099-01-01T00:00:00Z"})
    assert status == 200
    assert set(banned) == {"success", "action", "targetDid", "uri", "cid", "alreadyActive",
                           "expiresAt"}
    assert banned["expiresAt"] == "2099-01-01T00:00:00.000Z"
    assert forum.services.queries.ban(member, now=_now()) is not None
    # the same ban again is already in force; another end is a new ban
    status, again = await forum.call("POST", urls.api_mod("ban"), "admin", {
        "targetDid": member, "reason": "again", "expiresAt": "2099-01-01T00:00:00.000Z"})
    assert (status, again["alreadyActive"], again["uri"]) == (200, True, None)
    status, longer = await forum.call("POST", urls.api_mod("ban"), "admin", {
        "targetDid": member, "reason": "for good"})
    assert (status, longer["alreadyActive"]) == (200, False)
    status, hidden = await forum.call("POST", urls.api_mod("hide"), "mod", {
        "postId": forum.replies["member"].uri, "reason": "spam"})
    assert status == 200 and hidden["postId"] == forum.reply_id("member")
    assert hidden["postUri"] == forum.replies["member"].uri
    status, locked = await forum.call("POST", urls.api_mod("lock"), "mod", {
        "topicId": forum.topic_id("member"), "reason": "heated"})
    assert status == 200 and locked["topicId"] == forum.topic_id("member")
    status, log = await forum.call("GET", urls.api_admin_modlog(), "mod")
    assert status == 200 and (log["total"], log["offset"], log["limit"]) == (4, 0, 50)
    newest = log["actions"][0]
    assert newest["action"] == "space.atbb.modAction.lock"
    assert newest["moderatorDid"] == forum.did("mod") and newest["moderatorHandle"]
    assert newest["subjectPostUri"] == forum.topics["member"].uri
    assert newest["subjectHandle"] is None
    ban = log["actions"][-1]
    assert ban["subjectDid"] == member and ban["expiresAt"].startswith("2099-01-01")
    # filters (ours) and paging as the original: bad numbers are 400, offset clamped
    status, only = await forum.call(
        "GET", urls.api_admin_modlog() + f"?moderator={forum.did('admin')}", "mod")
    assert [a["reason"] for a in only["actions"]] == ["for good"]
    status, only = await forum.call("GET", urls.api_admin_modlog() + "?action=ban", "mod")
    assert only["total"] == 2
    status, only = await forum.call("GET", urls.api_admin_modlog() + f"?member={member}",
                                    "mod")
    assert only["total"] == 4
    status, clamped = await forum.call("GET", urls.api_admin_modlog() + "?offset=-5&limit=1",
                                       "mod")
    assert status == 200 and (clamped["offset"], len(clamped["actions"])) == (0, 1)
    for query in ("?limit=abc", "?limit=0", "?action=explode"):
        status, _ = await forum.call("GET", urls.api_admin_modlog() + query, "mod")
        assert status == 400, query
    # unban through the original's DELETE with a body
    status, lifted = await forum.call("DELETE", urls.api_mod("ban", member), "mod",
                                      {"reason": "served"})
    assert (status, lifted["alreadyActive"]) == (200, False)
    assert forum.services.queries.ban(member, now=_now()) is None


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
