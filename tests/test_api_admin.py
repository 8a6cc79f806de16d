"""The administration endpoints (web/api/admin.py) on both backends: members and roles,
categories and boards, themes and the policy; each one's refusals (401, CSRF, 403, 400
per field, 404, 409) with nothing written to the Forum account's repo or the log, and
each write read back at once (read-your-writes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.admin_writes_support import AdminWorld, admin_world
from tests.conftest import Backend
from tests.original_atbb import ORIGINAL_TOKENS
from tests.writes_support import FakeRepoSession
from web import urls


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[AdminWorld]:
    async with admin_world(backend) as built:
        yield built


async def call(world: AdminWorld, method: str, path: str, body: Any = None, *,
               person: str | None = "admin1",
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    sent = dict(headers or {})
    if person is not None:
        sent.update(world.bearer(person))
    answer = await world.client.request(method, path, json=body, headers=sent)
    return answer.status, await answer.json()


async def refused_unchanged(world: AdminWorld, method: str, path: str, body: Any,
                            status: int, *, person: str | None = "admin1") -> Any:
    """The request is refused with ``status`` and nothing is written or logged."""
    writes, head = world.writes(), world.head()
    got, answer = await call(world, method, path, body, person=person)
    assert got == status, answer
    assert set(answer) == {"error", "message"}
    assert world.writes() == writes and world.head() == head
    return answer


# -- every write endpoint: 401, CSRF, 403 ----------------------------------------------

WRITES: list[tuple[str, str, Any]] = [
    ("POST", urls.api_admin_categories(), {"name": "X"}),
    ("PUT", urls.api_admin_category("nope"), {"name": "X"}),
    ("DELETE", urls.api_admin_category("nope"), None),
    ("POST", urls.api_admin_boards(), {"name": "X", "categoryUri": "nope"}),
    ("PUT", urls.api_admin_board("nope"), {"name": "X"}),
    ("DELETE", urls.api_admin_board("nope"), None),
    ("POST", urls.api_admin_themes(), {"name": "T", "colorScheme": "light", "tokens": {}}),
    ("PUT", urls.api_admin_theme("nope"), {"name": "T", "colorScheme": "light", "tokens": {}}),
    ("DELETE", urls.api_admin_theme("nope"), None),
    ("POST", urls.api_admin_theme_duplicate("nope"), None),
    ("PUT", urls.api_admin_theme_policy(), {"availableThemes": []}),
]


async def test_every_write_refuses_without_a_credential_a_csrf_token_or_the_permission(
        world: AdminWorld) -> None:
    role_path = urls.api_admin_member_role(world.did("bob"))
    role_body = {"roleUri": world.roles["Moderator"].uri}
    for method, path, body in [*WRITES, ("POST", role_path, role_body)]:
        await refused_unchanged(world, method, path, body, 401, person=None)
        # mod1 (a Moderator) holds none of the admin permissions
        answer = await refused_unchanged(world, method, path, body, 403, person="mod1")
        assert "permission" in answer["message"] or "grant" in answer["message"]
    # a cookie session needs its CSRF token; with it, the same request goes through
    csrf = await world.cookie_session("admin1")
    writes = world.writes()
    for method, path, body in [*WRITES, ("POST", role_path, role_body)]:
        status, answer = await call(world, method, path, body, person=None)
        assert status == 403 and "CSRF" in answer["message"], (path, answer)
    assert world.writes() == writes
    status, created = await call(world, "POST", urls.api_admin_categories(), {"name": "Via"},
                                 person=None, headers={"X-CSRF-Token": csrf})
    assert status == 201, created


async def test_reads_need_a_session_and_their_permission(world: AdminWorld) -> None:
    for path in (urls.api_admin_members_me(), urls.api_admin_roles(),
                 urls.api_admin_members(), urls.api_admin_themes()):
        status, _ = await call(world, "GET", path, person=None)
        assert status == 401
    for path in (urls.api_admin_members(), urls.api_admin_themes()):
        status, answer = await call(world, "GET", path, person="alice")
        assert status == 403, answer
    status, me = await call(world, "GET", urls.api_admin_members_me(), person="alice")
    assert status == 200 and me["did"] == world.did("alice") and me["role"] == "Member"
    assert me["priority"] == 30 and "space.atbb.permission.createTopics" in me["permissions"]
    status, roles = await call(world, "GET", urls.api_admin_roles(), person="alice")
    assert [r["name"] for r in roles["roles"]] == ["Owner", "Admin", "Moderator", "Member"]
    assert roles["roles"][0]["permissions"] == ["*"] and roles["roles"][0]["priority"] == 0


# -- categories and boards -------------------------------------------------------------

async def test_categories_and_boards_are_created_updated_and_deleted(
        world: AdminWorld) -> None:
    status, category = await call(world, "POST", urls.api_admin_categories(), {
        "name": "  News ", "description": "What's new", "sortOrder": 3})
    assert status == 201 and category["uri"].endswith(f"/{category['id']}")
    stored = world.owner.repo.get("space.atbb.forum.category", category["id"])
    assert stored is not None and stored.value["name"] == "News"
    assert stored.value["createdBy"] == world.did("admin1")
    # read your writes: the public API shows it at once, by its rkey
    read = await (await world.client.get(urls.api_category(category["id"]))).json()
    assert read["name"] == "News" and read["sortOrder"] == 3
    status, updated = await call(world, "PUT", urls.api_admin_category(category["id"]),
                                 {"name": "Newer"})
    assert status == 200 and updated["cid"] != category["cid"]
    read = await (await world.client.get(urls.api_category(category["id"]))).json()
    # the fields not sent are kept (a full putRecord of the current version)
    assert (read["name"], read["description"], read["sortOrder"]) == ("Newer", "What's new", 3)
    status, board = await call(world, "POST", urls.api_admin_boards(), {
        "name": "Announcements", "categoryUri": category["uri"], "sortOrder": 1})
    assert status == 201, board
    boards = await (await world.client.get(urls.api_category_boards(category["id"]))).json()
    assert [b["name"] for b in boards["boards"]] == ["Announcements"]
    # a category with a board is not deleted
    answer = await refused_unchanged(world, "DELETE", urls.api_admin_category(category["id"]),
                                     None, 409)
    assert "board" in answer["message"]
    status, renamed = await call(world, "PUT", urls.api_admin_board(board["id"]),
                                 {"description": "Read me"})
    assert status == 200, renamed
    status, gone = await call(world, "DELETE", urls.api_admin_board(board["id"]))
    assert status == 200 and gone["success"] is True
    status, gone = await call(world, "DELETE", urls.api_admin_category(category["id"]))
    assert status == 200 and gone["success"] is True
    assert (await world.client.get(urls.api_category(category["id"]))).status == 404


async def test_a_board_with_posts_is_not_deleted(world: AdminWorld) -> None:
    alice = FakeRepoSession("alice")
    await world.services.forum_writes.new_topic(alice, board=world.forum.board_uri,
                                                title="Hi", text="there")
    board_id = world.forum.board.rkey
    answer = await refused_unchanged(world, "DELETE", urls.api_admin_board(board_id), None,
                                     409)
    assert "posts" in answer["message"]


BAD_STRUCTURE: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "categories", {}, "name"),
    ("POST", "categories", {"name": ""}, "name"),
    ("POST", "categories", {"name": 7}, "name"),
    ("POST", "categories", {"name": "x" * 200}, "name"),
    ("POST", "categories", {"name": "X", "sortOrder": -1}, "sortOrder"),
    ("POST", "categories", {"name": "X", "sortOrder": "1"}, "sortOrder"),
    ("POST", "categories", {"name": "X", "description": ["a"]}, "description"),
    ("POST", "categories", {"name": "X", "slug": "Not A Slug"}, "slug"),
    ("POST", "boards", {"name": "X"}, "categoryUri"),
    ("POST", "boards", {"categoryUri": "CAT"}, "name"),
    ("POST", "boards", {"name": "X", "categoryUri": "CAT", "sortOrder": 1.5}, "sortOrder"),
    ("PUT", "category", {"name": ""}, "name"),
    ("PUT", "board", {"sortOrder": -3}, "sortOrder"),
    ("PUT", "board", {"categoryUri": "CAT"}, "categoryUri"),
]


async def test_each_bad_field_is_a_400_naming_it(world: AdminWorld) -> None:
    category = world.forum.category.uri
    paths = {"categories": urls.api_admin_categories(), "boards": urls.api_admin_boards(),
             "category": urls.api_admin_category(world.forum.category.rkey),
             "board": urls.api_admin_board(world.forum.board.rkey)}
    for method, where, body, field in BAD_STRUCTURE:
        sent = {k: (category if v == "CAT" else v) for k, v in body.items()}
        answer = await refused_unchanged(world, method, paths[where], sent, 400)
        assert field in answer["message"], (body, answer)
    bad_json = await world.client.post(urls.api_admin_categories(), data=b"{nope",
                                       headers=world.bearer("admin1"))
    assert bad_json.status == 400


async def test_unknown_records_are_404(world: AdminWorld) -> None:
    for method, path, body in [
            ("PUT", urls.api_admin_category("3zzzzzzzzzzzz"), {"name": "X"}),
            ("DELETE", urls.api_admin_board("3zzzzzzzzzzzz"), None),
            ("POST", urls.api_admin_boards(), {"name": "X", "categoryUri": "3zzzzzzzzzzzz"}),
            ("DELETE", urls.api_admin_theme("3zzzzzzzzzzzz"), None),
            ("POST", urls.api_admin_theme_duplicate("3zzzzzzzzzzzz"), None)]:
        await refused_unchanged(world, method, path, body, 404)


# -- members and roles -----------------------------------------------------------------

async def test_members_are_listed_searched_and_paged(world: AdminWorld) -> None:
    status, listed = await call(world, "GET", urls.api_admin_members())
    assert status == 200 and listed["total"] == 6 and listed["limit"] == 100
    by_did = {m["did"]: m for m in listed["members"]}
    assert by_did[world.did("mod1")]["role"] == "Moderator"
    assert by_did[world.did("alice")]["role"] is None  # the default role applies
    assert set(listed["members"][0]) >= {"did", "handle", "role", "roleUri", "joinedAt"}
    status, found = await call(world, "GET", urls.api_admin_members(
        search=world.did("bob")[8:20].upper()))
    assert [m["did"] for m in found["members"]] == [world.did("bob")]
    status, paged = await call(world, "GET", urls.api_admin_members(offset=-5, limit=2))
    assert status == 200 and paged["offset"] == 0 and len(paged["members"]) == 2


async def test_roles_are_assigned_by_the_priority_rule(world: AdminWorld) -> None:
    moderator = world.roles["Moderator"].uri
    status, answer = await call(world, "POST", urls.api_admin_member_role(world.did("alice")),
                                {"roleUri": moderator})
    assert status == 200 and answer["success"] and answer["roleAssigned"] == "Moderator"
    assert answer["alreadyActive"] is False
    stored = world.owner.repo.get("space.atbb.forum.roleAssignment", world.did("alice"))
    assert stored is not None and stored.value["createdBy"] == world.did("admin1")
    status, me = await call(world, "GET", urls.api_admin_members_me(), person="alice")
    assert me["role"] == "Moderator"  # read your writes
    status, again = await call(world, "POST", urls.api_admin_member_role(world.did("alice")),
                               {"roleUri": moderator})
    assert status == 200 and again["alreadyActive"] is True
    # an Admin gives neither the Admin role nor anything to another Admin or the Owner
    for target, role in (("bob", "Admin"), ("admin2", "Member"), ("owner1", "Member"),
                         ("admin1", "Member")):
        answer = await refused_unchanged(world, "POST", urls.api_admin_member_role(
            world.did(target)), {"roleUri": world.roles[role].uri}, 403)
        assert "authority" in answer["message"]
    # the Owner may, and so may the Forum account's token
    status, _ = await call(world, "POST", urls.api_admin_member_role(world.did("admin2")),
                           {"roleUri": world.roles["Member"].uri}, person="owner1")
    assert status == 200
    status, _ = await call(world, "POST", urls.api_admin_member_role(world.did("owner1")),
                           {"roleUri": world.roles["Admin"].uri}, person="forum")
    assert status == 200
    for body, expected in (({}, 400), ({"roleUri": 3}, 400), ({"roleUri": "admin"}, 400),
                           ({"roleUri": world.forum.board.uri}, 400),
                           ({"roleUri": moderator.rsplit("/", 1)[0] + "/3zzzzzzzzzzzz"}, 404)):
        await refused_unchanged(world, "POST", urls.api_admin_member_role(world.did("bob")),
                                body, expected)
    await refused_unchanged(world, "POST", urls.api_admin_member_role("did:plc:nobody"),
                            {"roleUri": moderator}, 404)


# -- themes ----------------------------------------------------------------------------

THEME = {"name": "Sunset", "colorScheme": "light", "tokens": dict(ORIGINAL_TOKENS),
         "fontUrls": ["https://fonts.example/sunset.css"]}


async def test_themes_are_created_edited_duplicated_and_deleted(world: AdminWorld) -> None:
    status, theme = await call(world, "POST", urls.api_admin_themes(), THEME)
    assert status == 201, theme
    stored = world.owner.repo.get("space.atbb.forum.theme", theme["rkey"])
    assert stored is not None and "color-bg" in stored.value["tokens"]  # no "--"
    status, edited = await call(world, "PUT", urls.api_admin_theme(theme["rkey"]), {
        **THEME, "fontUrls": None, "tokens": {**ORIGINAL_TOKENS, "color-bg": "#000000"}})
    assert status == 200, edited
    public = await (await world.client.get(urls.api_theme(theme["rkey"]))).json()
    assert public["tokens"]["color-bg"] == "#000000"
    assert public["fontUrls"] == ["https://fonts.example/sunset.css"]  # kept
    status, copy = await call(world, "POST", urls.api_admin_theme_duplicate(theme["rkey"]))
    assert status == 201 and copy["name"] == "Sunset (Copy)" and copy["rkey"] != theme["rkey"]
    status, listed = await call(world, "GET", urls.api_admin_themes())
    assert [t["name"] for t in listed["themes"]] == ["Sunset", "Sunset (Copy)"]
    assert listed["isTruncated"] is False
    status, policy = await call(world, "PUT", urls.api_admin_theme_policy(), {
        "availableThemes": [{"uri": theme["uri"]}, {"uri": copy["uri"], "cid": copy["cid"]}],
        "defaultLightThemeUri": theme["uri"], "defaultDarkThemeUri": copy["uri"]})
    assert status == 200 and policy["uri"].endswith("/space.atbb.forum.themePolicy/self")
    public = await (await world.client.get(urls.api_theme_policy())).json()
    assert public["defaultLightThemeUri"] == theme["uri"]
    answer = await refused_unchanged(world, "DELETE", urls.api_admin_theme(theme["rkey"]),
                                     None, 409)
    assert "default" in answer["message"]
    status, _ = await call(world, "PUT", urls.api_admin_theme_policy(), {
        "availableThemes": [{"uri": copy["uri"]}], "allowUserChoice": False,
        "defaultLightThemeUri": copy["uri"], "defaultDarkThemeUri": copy["uri"]})
    assert status == 200
    status, gone = await call(world, "DELETE", urls.api_admin_theme(theme["rkey"]))
    assert status == 200 and gone["success"] is True


BAD_THEMES: list[tuple[dict[str, Any], str]] = [
    ({**THEME, "name": None}, "name"),
    ({**THEME, "colorScheme": "sepia"}, "colorScheme"),
    ({**THEME, "tokens": None}, "tokens"),
    ({**THEME, "tokens": {"color-bg": 3}}, "tokens.color-bg"),
    ({**THEME, "tokens": {"color-bg": "red; x: y"}}, "tokens"),
    ({**THEME, "fontUrls": ["http://fonts.example/a.css"]}, "fontUrls"),
    ({**THEME, "fontUrls": "https://fonts.example/a.css"}, "fontUrls"),
    ({**THEME, "cssOverrides": 5}, "cssOverrides"),
]


async def test_bad_theme_fields_and_policies_are_400(world: AdminWorld) -> None:
    for body, field in BAD_THEMES:
        answer = await refused_unchanged(world, "POST", urls.api_admin_themes(), body, 400)
        assert field in answer["message"], (body, answer)
    _status, theme = await call(world, "POST", urls.api_admin_themes(), THEME)
    uri = theme["uri"]
    for body, field in [
            ({"availableThemes": [], "defaultLightThemeUri": uri,
              "defaultDarkThemeUri": uri}, "availableThemes"),
            ({"availableThemes": [{"uri": "x"}], "defaultLightThemeUri": uri,
              "defaultDarkThemeUri": uri}, "availableThemes[0].uri"),
            ({"availableThemes": [{"uri": uri}], "defaultDarkThemeUri": uri},
             "defaultLightThemeUri"),
            ({"availableThemes": [{"uri": uri}], "defaultLightThemeUri": uri,
              "defaultDarkThemeUri": uri + "x"}, "defaultDarkThemeUri"),
            ({"availableThemes": [{"uri": uri}], "defaultLightThemeUri": uri,
              "defaultDarkThemeUri": uri, "allowUserChoice": "yes"}, "allowUserChoice")]:
        answer = await refused_unchanged(world, "PUT", urls.api_admin_theme_policy(), body, 400)
        assert field in answer["message"], (body, answer)


async def test_the_api_assigns_roles_exactly_as_permission_and_priority_allow(
        world: AdminWorld) -> None:
    """Every actor role × role given × target role (or oneself), through the endpoint:
    200 and the role held when the rules allow it, 403 and nothing written otherwise."""
    loop = asyncio.get_running_loop()
    priority = {"Owner": 0, "Admin": 10, "Moderator": 20, "Member": 30, None: 30}

    async def set_role(person: str, role: str | None) -> None:
        if role is None:
            await world.services.writer.delete(world.owner, "space.atbb.forum.roleAssignment",
                                               world.did(person))
        else:
            await world.give(person, role)

    async def attempt(actor: str | None, given: str, target: str | None, same: bool) -> None:
        await set_role("alice", actor)
        if not same:
            await set_role("bob", target)
        who = "alice" if same else "bob"
        mine = priority[actor]
        allowed = (actor in ("Owner", "Admin") and priority[given] > mine
                   and (mine if same else priority[target]) > mine)
        writes, head = world.writes(), world.head()
        status, answer = await call(world, "POST", urls.api_admin_member_role(world.did(who)),
                                    {"roleUri": world.roles[given].uri}, person="alice")
        case = (actor, given, target, same, answer)
        if allowed:
            assert status == 200, case
            held = world.services.queries.member_permissions(world.did(who)).role
            assert held is not None and held.name == given, case
        else:
            assert status == 403, case
            assert (world.writes(), world.head()) == (writes, head), case

    holders = ("Owner", "Admin", "Moderator", "Member", None)

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(actor=st.sampled_from(holders),
           given_role=st.sampled_from(("Owner", "Admin", "Moderator", "Member")),
           target=st.sampled_from(holders), same=st.booleans())
    def check(actor: str | None, given_role: str, target: str | None, same: bool) -> None:
        asyncio.run_coroutine_threadsafe(attempt(actor, given_role, target, same),
                                         loop).result()

    await asyncio.to_thread(check)
