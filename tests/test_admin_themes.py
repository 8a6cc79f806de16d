"""The themes pages (web/admin/themes.py) on both backends, without JavaScript: create
from a preset, the token editor's preview (unsaved) and save, reset to a preset,
duplicate, export and import as JSON, the policy form, deletion through a confirmation
page, and a refused change shown as an error; the preview and swatch stylesheets carry
checked tokens only."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.admin_support import csrf_from
from tests.admin_writes_support import AdminWorld, admin_world
from tests.conftest import Backend
from web import urls
from web.admin.themes import imported_fields


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[AdminWorld]:
    async with admin_world(backend) as built:
        await built.cookie_session("admin1")
        yield built


async def post(world: AdminWorld, path: str, fields: dict[str, str],
               page: str | None = None) -> tuple[int, str]:
    token = csrf_from(await (await world.client.get(page or urls.admin_themes())).text())
    answer = await world.client.post(path, data={**fields, "csrf_token": token})
    return answer.status, await answer.text()


async def test_a_theme_is_created_edited_previewed_and_applied(world: AdminWorld) -> None:
    status, text = await post(world, urls.admin_themes(),
                              {"name": "Harbour", "preset": "clean-dark"})
    assert status == 200 and "Theme created." in text and "Theme “Harbour”" in text
    theme = world.services.queries.themes().items[0]
    assert theme.color_scheme == "dark" and theme.tokens["color-bg"] == "#16181c"
    editor = urls.admin_theme(theme.id)
    # a preview renders the values sent and saves nothing
    head = world.head()
    status, text = await post(world, urls.admin_theme_preview(theme.id), {
        "name": "Harbour", "colorScheme": "dark", "token-color-bg": "#102030"}, editor)
    assert status == 200 and "Preview: not saved yet." in text and world.head() == head
    preview = re.search(r'href="(/admin/themes/preview\.css\?[^"]+)"', text)
    assert preview is not None
    css = await (await world.client.get(preview.group(1).replace("&amp;", "&"))).text()
    assert "--color-bg: #102030;" in css and css.startswith(".theme-preview")
    # a value the stylesheet would not carry never reaches the preview
    hostile = await (await world.client.get(urls.theme_preview_css(
        {"color-bg": "red;}body{display:none"}))).text()
    assert "display" not in hostile
    status, text = await post(world, urls.admin_theme_save(theme.id), {
        "name": "Harbour", "colorScheme": "dark", "token-color-bg": "#102030"}, editor)
    assert status == 200 and "Theme saved." in text
    assert world.services.queries.theme(theme.id).tokens["color-bg"] == "#102030"  # type: ignore[union-attr]
    # offered as the defaults, it colours /theme.css
    status, text = await post(world, urls.admin_theme_policy(), {
        "available": theme.uri, "defaultLight": theme.uri, "defaultDark": theme.uri})
    assert status == 200 and "Theme policy saved." in text
    assert "--color-bg: #102030;" in await (await world.client.get(urls.theme_css())).text()
    # reset fills the editor with a preset, unsaved
    status, text = await post(world, urls.admin_theme_reset(theme.id),
                              {"preset": "classic-bb"}, editor)
    assert status == 200 and 'value="#e5e8ee"' in text and "not saved yet" in text
    assert world.services.queries.theme(theme.id).tokens["color-bg"] == "#102030"  # type: ignore[union-attr]
    # the default theme is not deleted; the refusal reads as an error
    confirm = await world.client.get(urls.admin_theme_delete(theme.id))
    assert "Delete the theme “Harbour”?" in await confirm.text()
    status, text = await post(world, urls.admin_theme_delete(theme.id), {})
    assert status == 409 and "notice-error" in text


async def test_duplicate_export_import_and_delete(world: AdminWorld) -> None:
    await post(world, urls.admin_themes(), {"name": "Paper", "preset": "clean-light"})
    theme = world.services.queries.themes().items[0]
    status, text = await post(world, urls.admin_theme_duplicate(theme.id), {})
    assert status == 200 and "Paper (Copy)" in text
    swatches = await (await world.client.get(urls.admin_theme_swatches())).text()
    assert f".swatch-{theme.id}-color-bg {{ background: #fbfaf7; }}" in swatches
    exported = await world.client.get(urls.admin_theme_export(theme.id))
    assert 'filename="paper-light.json"' in exported.headers["Content-Disposition"]
    body = await exported.json()
    assert "cssOverrides" not in body and body["tokens"]["color-bg"] == "#fbfaf7"
    body["name"] = "Paper again"
    body["tokens"]["--Not A Token"] = "x"
    body["cssOverrides"] = "body { display: none }"
    token = csrf_from(await (await world.client.get(urls.admin_themes())).text())
    data = aiohttp.FormData()
    data.add_field("csrf_token", token)
    data.add_field("file", json.dumps(body).encode(), filename="paper.json",
                   content_type="application/json")
    imported = await world.client.post(urls.admin_themes_import(), data=data)
    assert imported.status == 200 and "Theme imported." in await imported.text()
    again = next(t for t in world.services.queries.themes().items if t.name == "Paper again")
    assert again.css_overrides is None and "--Not A Token" not in again.tokens
    status, text = await post(world, urls.admin_theme_delete(again.id), {})
    assert status == 200 and "Theme deleted." in text and "Paper again" not in text


def test_an_imported_file_is_checked() -> None:
    for raw, words in ((b"x" * 200_000, "larger"), (b"{nope", "not JSON"), (b"[]", "object"),
                       (b'{"colorScheme": "light", "tokens": {}}', "name"),
                       (b'{"name": "a", "colorScheme": "blue", "tokens": {}}', "colorScheme"),
                       (b'{"name": "a", "colorScheme": "dark", "tokens": {},'
                        b' "fontUrls": ["http://x"]}', "https")):
        with pytest.raises(ValueError, match=words):
            imported_fields(raw)


async def test_only_theme_managers_use_the_pages(world: AdminWorld) -> None:
    world.client.session.cookie_jar.clear()
    await world.cookie_session("mod1")
    assert (await world.client.get(urls.admin_themes())).status == 403
