"""The original project's request file (`Trigger Backfill.bru`, the seed) run with the real
Bruno CLI against our appview on the devnet: green, unchanged.

The request file carries no credentials (the original relied on a browser session), so
the collection around it supplies an admin token as a collection-level header; the file
itself is copied in byte for byte. `.ci/run` installs the CLI (npm, tests/bruno); where it
is missing the test skips, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest
from aiohttp import web

from appview.devnet.network import DevNetwork
from tests.backfill_support import appview_for
from tests.conftest import FIXTURES, Backend
from web.app import create_app

REQUEST = FIXTURES / "Trigger Backfill.bru"
BRU = Path(__file__).parent / "bruno" / "node_modules" / ".bin" / "bru"
COLLECTION = """meta {
  name: atbb-appview
}

headers {
  Authorization: Bearer {{admin_token}}
}
"""


def bru_or_skip() -> Path:
    if BRU.exists() and shutil.which("node"):
        return BRU
    reason = f"the Bruno CLI is not installed at {BRU} (npm install --prefix tests/bruno)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


async def run_bru(bru: Path, collection: Path, url: str, token: str,
                  report: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        # "developer": Node's own vm for the assertions; the default QuickJS sandbox of
        # this CLI version sometimes evaluates before it has loaded (a Bruno race)
        str(bru), "run", REQUEST.name, "--sandbox", "developer",
        "--env-var", f"appview_url={url}",
        "--env-var", f"admin_token={token}", "--reporter-json", str(report),
        cwd=collection, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, output.decode(errors="replace")


async def test_the_seed_request_file_runs_green_with_bruno(backend: Backend,
                                                          tmp_path: Path) -> None:
    bru = bru_or_skip()
    collection = tmp_path / "collection"
    collection.mkdir()
    (collection / "bruno.json").write_text(json.dumps(
        {"version": "1", "name": "atbb-appview", "type": "collection"}))
    (collection / "collection.bru").write_text(COLLECTION)
    shutil.copyfile(REQUEST, collection / REQUEST.name)
    assert (collection / REQUEST.name).read_bytes() == REQUEST.read_bytes()
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        services = appview_for(backend, "bruno", network, seeded)
        runner = web.AppRunner(create_app(services))
        try:
            _, token = services.admin_tokens.issue(seeded.forum_did, "bruno")
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            url = f"http://127.0.0.1:{port}"
            for attempt in range(2):  # full_sync started (202), then not needed (200)
                report = tmp_path / f"report-{attempt}.json"
                code, output = await run_bru(bru, collection, url, token, report)
                assert code == 0, output
                results = json.loads(report.read_text())
                summary = results[0]["summary"] if isinstance(results, list) else \
                    results["summary"]
                assert summary["failedRequests"] == 0 and summary["failedAssertions"] == 0, \
                    output
                assert summary["passedAssertions"] >= 2, output
                if attempt == 0:
                    assert services.backfills is not None
                    [run] = services.backfills.recent(1)
                    assert run.type == "full_sync"
                    await asyncio.to_thread(services.backfills.wait, run.id, 120)
                    # what the seed's docs promise: the id is usable at once to poll
                    assert services.backfills.get(run.id) is not None
        finally:
            await runner.cleanup()
            services.close()
