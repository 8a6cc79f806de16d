"""The project's own Bruno requests for moderation (`tests/bruno/requests/`: one per
endpoint, in the original's folders and names) run green with the real Bruno CLI
against the appview, whose Forum account's agent writes to its repository: ban and
unban, lock and unlock, hide and unhide, pin and unpin, then the mod log that lists
them. Skips where the CLI is missing, except under CI=true."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from tests.conftest import Backend
from tests.mod_support import mod_forum
from tests.test_bruno import COLLECTION, bru_or_skip

REQUESTS = Path(__file__).parent / "bruno" / "requests"


async def _run(bru: Path, collection: Path, folder: str, variables: dict[str, str],
               report: Path) -> tuple[int, str, dict[str, int]]:
    arguments = [str(bru), "run", folder, "--sandbox", "developer",
                 "--reporter-json", str(report)]
    for name, value in variables.items():
        arguments += ["--env-var", f"{name}={value}"]
    process = await asyncio.create_subprocess_exec(
        *arguments, cwd=collection, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    results = json.loads(report.read_text())
    summary = results[0]["summary"] if isinstance(results, list) else results["summary"]
    return process.returncode or 0, output.decode(errors="replace"), summary


async def test_the_moderation_requests_run_green_with_bruno(backend: Backend,
                                                            tmp_path: Path) -> None:
    bru = bru_or_skip()
    collection = tmp_path / "collection"
    shutil.copytree(REQUESTS, collection)
    (collection / "bruno.json").write_text(json.dumps(
        {"version": "1", "name": "atbb-appview", "type": "collection"}))
    (collection / "collection.bru").write_text(COLLECTION)
    async with mod_forum(backend) as forum:
        variables = {
            "appview_url": str(forum.client.make_url("")).rstrip("/"),
            "admin_token": forum.tokens["forum"],  # the Forum account: every permission
            "target_did": forum.did("member"),
            "topic_id": forum.topic_id("member"),
            "post_id": forum.reply_id("member"),
        }
        before = forum.forum_records()
        code, output, summary = await _run(bru, collection, "Moderation", variables,
                                           tmp_path / "moderation.json")
        assert code == 0, output
        assert summary["failedRequests"] == 0 and summary["failedAssertions"] == 0, output
        assert summary["totalRequests"] == 8 and summary["passedAssertions"] >= 48, output
        assert forum.forum_records() == before + 8
        code, output, summary = await _run(bru, collection, "Admin", variables,
                                           tmp_path / "admin.json")
        assert code == 0 and summary["failedAssertions"] == 0, output
