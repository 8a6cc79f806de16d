"""Moderation from the topic page without JavaScript: the links a moderator sees, the
confirmation page with the post in context, the action taken with a reason and its
effect on the topic page; refusals shown in words with nothing written."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from events.collections import MOD_ACTION
from tests.admin_support import csrf_from
from tests.conftest import Backend
from tests.mod_support import ModForum, mod_forum
from web import urls


@pytest.fixture
async def forum(backend: Backend) -> Any:
    async with mod_forum(backend) as made:
        yield made


async def _sign_in(forum: ModForum, actor: str) -> None:
    form = await (await forum.client.get(urls.signin())).text()
    answer = await forum.client.post(urls.signin(), data={
        "token": forum.tokens[actor], "csrf_token": csrf_from(form)}, allow_redirects=False)
    assert answer.status == 303


def _links(page: str) -> dict[str, str]:
    """Moderation links of a page: label -> href."""
    return {unescape(label): unescape(href) for href, label in re.findall(
        r'<a class="mod-link" href="([^"]+)"[^>]*>([^<]+)</a>', page)}


async def _confirm_and_act(forum: ModForum, href: str, reason: str,
                           **extra: str) -> tuple[Any, str]:
    page = await (await forum.client.get(href)).text()
    assert 'id="mod-form"' in page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    fields = {k: unescape(v) for k, v in fields.items()}
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page)[1])  # type: ignore[index]
    answer = await forum.client.post(action, data={**fields, "reason": reason, **extra},
                                     allow_redirects=False)
    return answer, page


async def test_a_moderator_locks_pins_hides_and_bans_from_the_topic_page(
        forum: ModForum) -> None:
    await _sign_in(forum, "mod")
    topic_url = urls.topic(forum.topic_id("member"))
    page = await (await forum.client.get(topic_url)).text()
    links = _links(page)
    assert {"Lock", "Pin", "Hide", "Ban author"} <= set(links)
    assert '<dialog id="mod-dialog"' in page and "mod.js" in page
    before = forum.forum_records()

    answer, confirm = await _confirm_and_act(forum, links["Lock"], "Heated thread")
    assert "Lock the topic?" in confirm and "Topic of member" in confirm
    assert answer.status == 303 and answer.headers["Location"] == topic_url
    answer, _ = await _confirm_and_act(forum, links["Pin"], "Announcement")
    assert answer.status == 303
    page = await (await forum.client.get(topic_url)).text()
    assert '<span class="badge">Locked</span>' in page
    assert '<span class="badge">Pinned</span>' in page
    links = _links(page)
    assert {"Unlock", "Unpin"} <= set(links)

    reply_links = _links(page)
    hide = [href for href, _label in re.findall(
        r'<a class="mod-link" href="([^"]+)"[^>]*>(Hide)</a>', page)]
    assert len(hide) == 2  # the topic and the member's reply
    answer, _ = await _confirm_and_act(forum, unescape(hide[1]), "Spam")
    assert answer.status == 303
    answer, confirm = await _confirm_and_act(forum, reply_links["Ban author"], "Repeated spam",
                                             duration="7d")
    assert "Ban the author?" in confirm and "7 days" in confirm
    assert answer.status == 303
    page = await (await forum.client.get(topic_url)).text()
    assert "Hidden by a moderator" in page and "Author banned" in page
    assert {"Unhide", "Unban author"} <= set(_links(page))
    assert forum.forum_records() == before + 4
    ban = next(e for e in forum.services.queries.modlog().items if e.action.endswith(".ban"))
    assert ban.reason == "Repeated spam" and ban.expires_at is not None

    # the mod log page shows them in words, with the subjects linked
    log = await (await forum.client.get(urls.admin_modlog())).text()
    mod_handle = forum.services.queries.member(forum.did("mod"), now=_now())
    assert mod_handle is not None
    by_handle = await (await forum.client.get(
        urls.admin_modlog() + f"?moderator=%40{mod_handle.handle}&action=lock")).text()
    assert by_handle.count('class="modlog-entry"') == 1 and "Heated thread" in by_handle
    for words in ("<strong>locked</strong>", "<strong>pinned</strong>", "<strong>hid</strong>",
                  "<strong>banned</strong>", "Heated thread", "until"):
        assert words in log, words


async def test_a_refusal_is_shown_in_words_and_writes_nothing(forum: ModForum) -> None:
    await _sign_in(forum, "mod")
    before = forum.forum_records()
    page = await (await forum.client.get(urls.topic(forum.topic_id("admin")))).text()
    assert _links(page) == {}  # an admin's posts: nothing a moderator may do is offered
    page = await (await forum.client.get(urls.topic(forum.topic_id("mod2")))).text()
    assert _links(page) == {}  # nor of another moderator's
    page = await (await forum.client.get(urls.topic(forum.topic_id("mod")))).text()
    assert {"Lock", "Pin", "Hide"} <= set(_links(page))  # their own topic: yes
    assert "Ban author" not in _links(page)  # but never a ban of themselves
    lock = urls.mod_confirm("lock", forum.topic_id("admin"))
    answer, _ = await _confirm_and_act(forum, lock, "   ")
    assert answer.status == 400 and "reason is required" in await answer.text()
    answer, _ = await _confirm_and_act(forum, lock, "Admins too")
    assert answer.status == 403
    assert "equal or higher authority" in await answer.text()
    answer = await forum.client.post(urls.mod_action("lock"), data={
        "subject": forum.topic_id("member"), "reason": "no token"}, allow_redirects=False)
    assert answer.status == 403
    assert forum.forum_records() == before
    assert not [r for r in forum.owner.repo.list_records(MOD_ACTION, limit=10)]


async def test_members_see_no_moderation_and_may_not_use_it(forum: ModForum) -> None:
    await _sign_in(forum, "member")
    page = await (await forum.client.get(urls.topic(forum.topic_id("mod")))).text()
    assert _links(page) == {} and "mod-dialog" not in page
    answer = await forum.client.get(urls.mod_confirm("lock", forum.topic_id("mod")),
                                    allow_redirects=False)
    assert answer.status == 403
    anonymous = forum.client.session.cookie_jar
    anonymous.clear()
    answer = await forum.client.get(urls.mod_confirm("lock", forum.topic_id("mod")),
                                    allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"].startswith(urls.signin())


async def test_with_htmx_the_dialog_form_answers_with_a_location(forum: ModForum) -> None:
    await _sign_in(forum, "mod")
    href = urls.mod_confirm("hide", forum.reply_id("member"),
                            next_path=urls.topic(forum.topic_id("member")))
    page = await (await forum.client.get(href, headers={"HX-Request": "true"})).text()
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    answer = await forum.client.post(urls.mod_action("hide"), headers={"HX-Request": "true"},
                                     data={**{k: unescape(v) for k, v in fields.items()},
                                           "reason": "Off topic"}, allow_redirects=False)
    assert answer.status == 200 and "HX-Location" in answer.headers


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
