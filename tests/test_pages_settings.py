"""A member's appearance settings (web/pages/settings.py) on both backends: the light
and dark choices among the themes the policy offers, the swatch preview, the cookies
and /theme.css following them while the policy lets members choose."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from events.collections import THEME, THEME_POLICY
from events.records import theme_policy_record, theme_record
from tests.admin_support import csrf_from
from tests.admin_writes_support import AdminWorld, admin_world
from tests.conftest import Backend
from tests.writes_support import CREATED
from web import urls
from web.theme_presets import PRESETS


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[AdminWorld]:
    async with admin_world(backend) as built:
        yield built


async def offer(world: AdminWorld, *, allow: bool = True) -> dict[str, str]:
    uris = {}
    for key in ("clean-light", "neobrutal-light", "clean-dark"):
        scheme, tokens = PRESETS[key]
        written = await world.services.writer.create(world.owner, THEME, theme_record(
            key, scheme, tokens, created_at=CREATED))
        uris[key] = written.uri
    await world.services.writer.put(world.owner, THEME_POLICY, "self", theme_policy_record(
        list(uris.values()), default_light=uris["clean-light"],
        default_dark=uris["clean-dark"], updated_at=CREATED, allow_user_choice=allow))
    return uris


async def test_a_member_chooses_a_light_theme_and_sees_it(world: AdminWorld) -> None:
    uris = await offer(world)
    anonymous = await world.client.get(urls.settings(), allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"].startswith("/signin")
    await world.cookie_session("alice")
    page = await (await world.client.get(urls.settings())).text()
    assert "neobrutal-light" in page and 'name="darkThemeUri"' in page
    swatch = await world.client.get(urls.settings_preview(lightThemeUri=uris["neobrutal-light"]))
    text = await swatch.text()
    assert swatch.status == 200 and 'id="theme-preview-light"' in text and "neobrutal-light" in text
    assert "#fbfaf7" in await (await world.client.get(urls.theme_css())).text()
    saved = await world.client.post(urls.settings_appearance(), allow_redirects=False, data={
        "lightThemeUri": uris["neobrutal-light"], "darkThemeUri": "",
        "csrf_token": csrf_from(page)})
    assert saved.status == 303 and saved.headers["Location"] == "/settings?saved=1"
    css = await world.client.get(urls.theme_css())
    assert "#f5f0e8" in await css.text() and css.headers["Cache-Control"].startswith("private")
    assert "Preferences saved." in await (await world.client.get(
        "/settings?saved=1")).text()
    refused = await world.client.post(urls.settings_appearance(), allow_redirects=False, data={
        "lightThemeUri": "at://did:plc:x/space.atbb.forum.theme/nope", "darkThemeUri": "",
        "csrf_token": csrf_from(page)})
    assert refused.headers["Location"] == "/settings?error=choice"
    assert "notice-error" in await (await world.client.get(refused.headers["Location"])).text()


async def test_a_closed_policy_keeps_the_forums_themes(world: AdminWorld) -> None:
    uris = await offer(world, allow=False)
    await world.cookie_session("alice")
    page = await (await world.client.get(urls.settings())).text()
    assert "uses its own themes for everyone" in page and "lightThemeUri" not in page
    world.client.session.cookie_jar.update_cookies({"atbb-light-theme": uris["neobrutal-light"]})
    assert "#f5f0e8" not in await (await world.client.get(urls.theme_css())).text()
