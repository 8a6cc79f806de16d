"""The project's own Bruno requests for administration (`tests/bruno/requests/Admin`
and `Admin Themes`: one per endpoint, in the original's folders and names) run green
with the real Bruno CLI against the appview, whose Forum account's agent writes to its
repository: roles and members, a category and a board created, changed and deleted, a
theme created, changed, offered, duplicated, listed and its copy deleted. Skips where
the CLI is missing, except under CI=true."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.admin_writes_support import admin_world
from tests.conftest import Backend
from tests.test_bruno import COLLECTION, bru_or_skip
from tests.test_bruno_moderation import REQUESTS, _run

# the mod log's request expects the moderation requests' actions (test_bruno_moderation)
NOT_HERE = ("Admin/Get Mod Action Log.bru",)


async def test_the_admin_requests_run_green_with_bruno(backend: Backend,
                                                       tmp_path: Path) -> None:
    bru = bru_or_skip()
    collection = tmp_path / "collection"
    shutil.copytree(REQUESTS, collection)
    for name in NOT_HERE:
        (collection / name).unlink()
    (collection / "bruno.json").write_text(json.dumps(
        {"version": "1", "name": "atbb-appview", "type": "collection"}))
    (collection / "collection.bru").write_text(COLLECTION)
    async with admin_world(backend) as world:
        variables = {
            "appview_url": str(world.client.make_url("")).rstrip("/"),
            "admin_token": world.tokens["forum"],  # the Forum account: every permission
            "target_did": world.did("alice"),
        }
        expected = {"Admin": (10, 7), "Admin Themes": (6, 5)}  # requests, records written
        for folder, (requests, written) in expected.items():
            before = world.writes()
            code, output, summary = await _run(bru, collection, folder, variables,
                                               tmp_path / f"{folder}.json")
            assert code == 0, output
            assert summary["failedRequests"] == 0 and summary["failedAssertions"] == 0, \
                output
            assert summary["totalRequests"] == requests, output
            assert summary["passedAssertions"] >= 3 * requests, output
            assert world.writes() - before == written, output
        role = world.services.queries.member_permissions(world.did("alice")).role
        assert role is not None and role.name == "Member"
        assert [t.name for t in world.services.queries.themes().items] == ["Bruno light"]
