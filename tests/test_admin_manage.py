"""The structure and members pages (web/admin/manage.py) on both backends, as a browser
without JavaScript uses them: plain forms with the CSRF token, redirects with a notice,
refusals shown as error notices with their status, deletion through a confirmation
page; and the Admin link for those who may use an administration page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from tests.admin_support import csrf_from
from tests.admin_writes_support import AdminWorld, admin_world
from tests.conftest import Backend
from web import urls


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[AdminWorld]:
    async with admin_world(backend) as built:
        yield built


async def form(world: AdminWorld, path: str, fields: dict[str, str], page: str) -> tuple[
        int, str]:
    """POST a form of ``page`` with its CSRF token; the status and the page it ends on."""
    token = csrf_from(await (await world.client.get(page)).text())
    answer = await world.client.post(path, data={**fields, "csrf_token": token})
    return answer.status, await answer.text()


async def test_an_admin_builds_the_structure_with_forms(world: AdminWorld) -> None:
    await world.cookie_session("admin1")
    page = urls.admin_structure()
    status, text = await form(world, urls.admin_categories(),
                              {"name": "Off topic", "description": "Anything", "sortOrder": ""},
                              page)
    assert status == 200 and "Created." in text and "Off topic" in text
    category = next(c for c in world.services.queries.categories().items
                    if c.name == "Off topic")
    status, text = await form(world, urls.admin_boards(),
                              {"name": "Pets", "category": category.uri}, page)
    assert status == 200 and "Pets" in text
    status, text = await form(world, urls.admin_category(category.id),
                              {"name": "Off-topic", "description": "", "sortOrder": "5"}, page)
    assert status == 200 and "Saved." in text and "Off-topic" in text
    # a refusal is an error notice with its status, nothing else changed
    head = world.head()
    status, text = await form(world, urls.admin_category_delete(category.id), {}, page)
    assert status == 409 and 'class="notice notice-error"' in text and "board" in text
    status, text = await form(world, urls.admin_categories(), {"name": "x" * 101}, page)
    assert status == 400 and "notice-error" in text
    status, text = await form(world, urls.admin_categories(), {"name": "y", "sortOrder": "-1"},
                              page)
    assert status == 400 and "Order must be" in text
    assert world.head() == head
    # deleting asks first, without JavaScript: a page with the form
    board = world.services.queries.category_boards(category.id, now=datetime.now(UTC))
    assert board is not None
    confirm = await world.client.get(urls.admin_board_delete(board.items[0].id))
    assert confirm.status == 200 and "Delete the board “Pets”?" in await confirm.text()
    status, text = await form(world, urls.admin_board_delete(board.items[0].id), {}, page)
    assert status == 200 and "Deleted." in text and "Pets" not in text


async def test_moving_renumbers_the_siblings(world: AdminWorld) -> None:
    await world.cookie_session("admin1")
    page = urls.admin_structure()
    for name in ("B", "C"):
        await form(world, urls.admin_categories(), {"name": name}, page)
    names = [c.name for c in world.services.queries.categories().items]
    assert names == ["B", "C", "General"]  # order 0 each, then by name
    last = world.services.queries.categories().items[2]
    status, text = await form(world, urls.admin_category_move(last.id),
                              {"direction": "up"}, page)
    assert status == 200 and "Moved." in text
    assert [c.name for c in world.services.queries.categories().items] == ["B", "General", "C"]
    assert [c.sort_order for c in world.services.queries.categories().items] == [0, 10, 20]


async def test_members_are_searched_and_given_roles(world: AdminWorld) -> None:
    await world.cookie_session("admin1")
    listed = await world.client.get(urls.admin_members(search="nothing-like-this"))
    assert listed.status == 200 and "0 members" in await listed.text()
    page = urls.admin_members()
    text = await (await world.client.get(page)).text()
    assert text.count('name="role"') == 6
    status, text = await form(world, urls.admin_member_role(world.did("bob")),
                              {"role": world.roles["Moderator"].uri, "next": page}, page)
    assert status == 200 and "Role assigned." in text
    assert world.services.queries.member_permissions(world.did("bob")).role is not None
    status, text = await form(world, urls.admin_member_role(world.did("admin2")),
                              {"role": world.roles["Member"].uri, "next": page}, page)
    assert status == 403 and "notice-error" in text and "authority" in text


async def test_who_may_see_the_pages_and_the_admin_link(world: AdminWorld) -> None:
    anonymous = await world.client.get(urls.admin_structure(), allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"].startswith("/signin")
    await world.cookie_session("alice")
    assert (await world.client.get(urls.admin_structure())).status == 403
    assert (await world.client.get(urls.admin_members())).status == 403
    index = await (await world.client.get(urls.index())).text()
    assert ">Admin</a>" not in index
    world.client.session.cookie_jar.clear()
    await world.cookie_session("admin1")
    index = await (await world.client.get(urls.index())).text()
    assert re.search(r'href="/admin/structure">Admin</a>', index)
    world.client.session.cookie_jar.clear()
    await world.cookie_session("forum")
    index = await (await world.client.get(urls.index())).text()
    assert re.search(r'href="/admin">Admin</a>', index)
    # a full_sync and a rebuild are asked about first
    status_page = await (await world.client.get(urls.admin())).text()
    assert f'href="{urls.admin_action("rebuild")}"' in status_page
    confirm = await (await world.client.get(urls.admin_action("full_sync"))).text()
    assert "Start a full_sync?" in confirm and 'method="post"' in confirm


async def test_a_refused_start_on_the_status_page_reads_as_an_error(world: AdminWorld) -> None:
    await world.cookie_session("forum")
    busy = await (await world.client.get(f"{urls.admin()}?notice=busy")).text()
    assert 'class="notice notice-error" role="alert"' in busy and "Not started:" in busy
    started = await (await world.client.get(f"{urls.admin()}?notice=rebuild")).text()
    assert 'class="notice" role="status"' in started and "notice-error" not in started
