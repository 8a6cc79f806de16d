"""Members report a post from its topic page; moderators see the queue with the post in
context, act on it from there and close its reports; the others may not see the queue."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from tests.admin_support import csrf_from
from tests.conftest import Backend
from tests.mod_support import ModForum, mod_forum
from tests.test_pages_moderation import _confirm_and_act, _sign_in
from web import urls


@pytest.fixture
async def forum(backend: Backend) -> Any:
    async with mod_forum(backend) as made:
        yield made


async def test_a_member_reports_and_a_moderator_acts_from_the_queue(forum: ModForum) -> None:
    before = forum.forum_records()
    await _sign_in(forum, "mod2")  # any signed-in reader may report another's post
    reply = forum.reply_id("member")
    page = await (await forum.client.get(urls.topic(forum.topic_id("member")))).text()
    assert f'href="{urls.report_post(reply)}"' in page
    form = await (await forum.client.get(urls.report_post(reply))).text()
    assert "A reply by member" in form
    empty = await forum.client.post(urls.report_post(reply), data={
        "reason": " ", "csrf_token": csrf_from(form)})
    assert empty.status == 400 and "reason is required" in await empty.text()
    sent = await forum.client.post(urls.report_post(reply), data={
        "reason": "Spam link", "csrf_token": csrf_from(form)})
    assert sent.status == 200 and "moderators will look at it" in await sent.text()
    assert forum.forum_records() == before  # a report is the appview's own
    no_csrf = await forum.client.post(urls.report_post(reply), data={"reason": "x"})
    assert no_csrf.status == 403

    forum.client.session.cookie_jar.clear()
    await _sign_in(forum, "member")
    assert (await forum.client.get(urls.mod_reports())).status == 403

    forum.client.session.cookie_jar.clear()
    await _sign_in(forum, "mod")
    queue = await (await forum.client.get(urls.mod_reports())).text()
    assert "Spam link" in queue and "A reply by member" in queue
    assert "Topic of member" in queue  # the topic it is in
    hide = unescape(re.search(r'<a href="([^"]+)">Hide</a>', queue)[1])  # type: ignore[index]
    answer, _ = await _confirm_and_act(forum, hide, "Reported spam")
    assert answer.status == 303 and answer.headers["Location"] == urls.mod_reports()
    queue = await (await forum.client.get(urls.mod_reports())).text()
    assert "Hidden by a moderator" in queue and "Unhide" in queue
    closed = await forum.client.post(urls.mod_reports_close(), data={
        "post_uri": forum.replies["member"].uri, "outcome": "resolved",
        "csrf_token": csrf_from(queue)}, allow_redirects=False)
    assert closed.status == 303
    assert "No open reports." in await (await forum.client.get(urls.mod_reports())).text()
    assert forum.services.reports.open_count() == 0
