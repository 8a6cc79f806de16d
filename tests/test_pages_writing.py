"""The writing pages without JavaScript (forms that post and redirect, or come back with
what was typed and the error) and with htmx (the same forms in place), against the
devnet PDS: new topic, reply, nested reply, quote, edit, delete, reactions, preview."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html import unescape
from typing import Any

import pytest

from projections.ids import post_id
from tests.admin_support import csrf_from
from tests.conftest import Backend
from tests.web_forum import executable_markup
from tests.writes_support import MemberApp, member_app
from web import urls

HTMX = {"HX-Request": "true"}


@pytest.fixture
async def app(backend: Backend, aiohttp_server: Any) -> AsyncIterator[MemberApp]:
    async with member_app(backend, aiohttp_server) as started:
        assert (await started.password_sign_in(started.net.alice)).status == 303
        yield started


def board_path(app: MemberApp) -> str:
    return urls.board(app.forum.board.rkey)


async def page(app: MemberApp, path: str, status: int = 200) -> str:
    answer = await app.client.get(path, allow_redirects=False)
    text: str = await answer.text()
    assert answer.status == status, (path, text[:300])
    return text


async def post_form(app: MemberApp, path: str, form_page: str, status: int = 303,
                    headers: dict[str, str] | None = None, **fields: str) -> Any:
    answer = await app.client.post(path, allow_redirects=False, headers=headers or {},
                                   data={"csrf_token": csrf_from(form_page), **fields})
    assert answer.status == status, (path, (await answer.text())[:500])
    return answer


async def new_topic(app: MemberApp, title: str, text: str) -> str:
    board = await page(app, board_path(app))
    answer = await post_form(app, urls.new_topic(app.forum.board.rkey), board, title=title,
                             text=text, action="post")
    location = answer.headers["Location"]
    match = re.match(r"/t/([^?#]+)(\?page=\d+)?#p-(.+)$", location)
    assert match and match.group(1) == match.group(3), location
    return match.group(1)


async def test_a_topic_from_the_board_page_and_a_reply_without_javascript(
        app: MemberApp) -> None:
    board = await page(app, board_path(app))
    assert 'id="compose"' in board and "New topic" in board
    topic = await new_topic(app, "Posted from a form", "The **body**.")
    html = await page(app, urls.topic(topic))
    assert "Posted from a form" in html and "<strong>body</strong>" in html
    reply = await post_form(app, urls.reply(topic), html, text="First reply", action="post")
    reply_id = reply.headers["Location"].split("#p-", 1)[1]
    html = await page(app, urls.topic(topic))
    assert f'id="p-{reply_id}"' in html and "First reply" in html
    # nested: "reply to this post" and a quote
    nested_form = await page(app, urls.reply(topic, parent=reply_id))
    assert 'name="parent" value="' + reply_id + '"' in nested_form and "In answer to" in nested_form
    nested = await post_form(app, urls.reply(topic), nested_form, text="Nested",
                             parent=reply_id, action="post")
    nested_id = nested.headers["Location"].split("#p-", 1)[1]
    post = app.services.queries.post(nested_id, now=datetime.now(UTC))
    assert post is not None and post_id(post.parent_uri or "") == reply_id
    quote_form = await page(app, urls.reply(topic, quote=reply_id))
    box = unescape(quote_form.split('name="text"', 1)[1].split(">", 1)[1].split("</textarea>")[0])
    # the handle, logged when alice signed in (appview/writes/member_handle.py)
    assert box.startswith(f"[@{app.net.alice.handle} wrote](at://{app.net.alice.did}/")
    assert "> First reply" in box
    quoted = await post_form(app, urls.reply(topic), quote_form, text=box + "Agreed.",
                             parent=reply_id, action="post")
    html = await page(app, quoted.headers["Location"].split("#")[0])
    assert "<blockquote>" in html and f'href="/p/{reply_id}"' in html


async def test_a_failed_write_keeps_what_was_typed(app: MemberApp) -> None:
    board = await page(app, board_path(app))
    head = app.services.event_log.head()
    answer = await post_form(app, urls.new_topic(app.forum.board.rkey), board, status=400,
                             title="A title kept", text="x" * 10_001, action="post")
    text = await answer.text()
    assert "10001 graphemes" in text and 'value="A title kept"' in text
    assert "x" * 10_001 in text and app.services.event_log.head() == head
    with_htmx = await post_form(app, urls.new_topic(app.forum.board.rkey), board, status=400,
                                headers=HTMX, title="", text="body kept", action="post")
    fragment = await with_htmx.text()
    assert 'id="compose"' in fragment and "body kept" in fragment and "post.title" in fragment


async def test_preview_renders_as_the_page_does_and_stores_nothing(app: MemberApp) -> None:
    board = await page(app, board_path(app))
    head = app.services.event_log.head()
    text = "Some *emphasis* and <script>alert(1)</script>"
    answer = await post_form(app, urls.new_topic(app.forum.board.rkey), board, status=200,
                             title="Kept", text=text, action="preview")
    html = await answer.text()
    assert "<em>emphasis</em>" in html and 'value="Kept"' in html
    assert executable_markup(html)[0] == []
    fragment = await app.client.post(urls.preview(), data={"text": text}, headers=HTMX)
    rendered = await fragment.text()
    assert fragment.status == 200 and "<em>emphasis</em>" in rendered
    assert "<script" not in rendered and "&lt;script&gt;" in rendered
    assert app.services.event_log.head() == head


async def test_edit_and_delete_ones_own_post(app: MemberApp) -> None:
    topic = await new_topic(app, "Before", "Old words")
    html = await page(app, urls.topic(topic))
    assert f'href="{urls.edit_post(topic)}"' in html
    form = await page(app, urls.edit_post(topic))
    assert 'value="Before"' in form and "Old words" in form
    await post_form(app, urls.edit_post(topic), form, title="After", text="New words",
                    action="post")
    html = await page(app, urls.topic(topic))
    assert "After" in html and "New words" in html and "edited" in html
    reply = await post_form(app, urls.reply(topic), html, text="to delete", action="post")
    reply_id = reply.headers["Location"].split("#p-", 1)[1]
    confirm = await page(app, urls.delete_post(reply_id))
    gone = await post_form(app, urls.delete_post(reply_id), confirm)
    assert gone.headers["Location"] == urls.topic(topic)
    html = await page(app, urls.topic(topic))
    assert "Deleted by author." in html and "to delete" not in html
    # another member's post offers no edit, and its forms refuse
    await app.client.post(urls.signout(), data={"csrf_token": csrf_from(html)})
    await app.password_sign_in(app.net.bob)
    html = await page(app, urls.topic(topic))
    assert f'href="{urls.edit_post(topic)}"' not in html
    await page(app, urls.edit_post(topic), 403)


async def test_reactions_with_and_without_htmx(app: MemberApp) -> None:
    topic = await new_topic(app, "React to me", "x")
    html = await page(app, urls.topic(topic))
    answer = await post_form(app, urls.react(topic), html, add="🎉")
    assert answer.headers["Location"].endswith(f"#p-{topic}")
    html = await page(app, urls.topic(topic))
    assert "🎉 1" in html and 'aria-pressed="true"' in html
    fragment = await post_form(app, urls.react(topic), html, status=200, headers=HTMX,
                               remove="🎉")
    bar = await fragment.text()
    assert f'id="reactions-{topic}"' in bar and "🎉 1" not in bar
    refused = await post_form(app, urls.react(topic), html, status=404, remove="🎉")
    assert "not reacted" in await refused.text()


async def test_with_htmx_a_success_moves_to_the_post_without_a_reload(app: MemberApp) -> None:
    board = await page(app, board_path(app))
    answer = await post_form(app, urls.new_topic(app.forum.board.rkey), board, status=200,
                             headers=HTMX, title="In place", text="x", action="post")
    target = json.loads(answer.headers["HX-Location"])
    assert target["path"].startswith("/t/") and "#p-" in target["path"]


async def test_forms_need_the_csrf_token_and_a_session(app: MemberApp) -> None:
    board = await page(app, board_path(app))
    head = app.services.event_log.head()
    missing = await app.client.post(urls.new_topic(app.forum.board.rkey),
                                    data={"title": "t", "text": "x"})
    assert missing.status == 403 and "CSRF token is missing" in await missing.text()
    wrong = await app.client.post(urls.new_topic(app.forum.board.rkey),
                                  data={"title": "t", "text": "x", "csrf_token": "forged"})
    assert wrong.status == 403
    await app.client.post(urls.signout(), data={"csrf_token": csrf_from(board)})
    anonymous = await page(app, board_path(app))
    assert 'id="compose"' not in anonymous and "to start a topic" in anonymous
    form = await app.client.get(urls.new_topic(app.forum.board.rkey), allow_redirects=False)
    assert form.status == 303 and form.headers["Location"].startswith(urls.SIGNIN)
    assert app.services.event_log.head() == head


async def test_script_and_html_in_a_post_are_escaped_on_every_page(app: MemberApp) -> None:
    payload = '<script>alert(1)</script><img src=x onerror=alert(1)> [x](javascript:alert(1))'
    topic = await new_topic(app, payload[:100], payload)
    html = await page(app, urls.topic(topic))
    await post_form(app, urls.reply(topic), html, text=payload, action="post")
    for path in (urls.topic(topic), board_path(app), urls.member(app.net.alice.did),
                 urls.topic_feed(topic), urls.board_feed(app.forum.board.rkey),
                 urls.edit_post(topic), urls.reply(topic, quote=topic)):
        findings, _scripts = executable_markup(await page(app, path))
        assert findings == [], path
