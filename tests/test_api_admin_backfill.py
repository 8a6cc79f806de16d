"""`/api/admin/backfill` on the devnet, both backends: every status code of api.md and the
seed's request file, the id usable at once, the errors list."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from appview.devnet.network import DevNetwork
from appview.leader import LeaderLock
from events.log import CursorUpdate
from tests.backfill_support import appview_for
from tests.conftest import Backend
from tests.test_consumer import caught_up, running, wait_for
from web import urls
from web.app import create_app
from web.auth.access import MANAGE_FORUM

NOBODY = "did:plc:nobodynobodynobodynobod"


async def poll(client: TestClient[Any, Any], run_id: str, auth: dict[str, str]) -> Any:
    for _ in range(600):
        body = await (await client.get(urls.api_admin_backfill_run(run_id),
                                       headers=auth)).json()
        if body["status"] != "in_progress":
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("the backfill never finished")


async def test_the_backfill_endpoints_answer_as_specified(backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        services = appview_for(backend, "api", network, seeded)
        try:
            _, operator = services.admin_tokens.issue(seeded.forum_did)
            _, nobody = services.admin_tokens.issue(NOBODY)
            auth = {"Authorization": f"Bearer {operator}"}
            async with TestClient(TestServer(create_app(services))) as client:
                post = urls.api_admin_backfill()
                assert (await client.post(post)).status == 401
                refused = await client.post(post,
                                            headers={"Authorization": f"Bearer {nobody}"})
                assert refused.status == 403
                assert MANAGE_FORUM.rsplit(".", 1)[1] in (await refused.json())["message"]

                # no cursor at all: gap detection picks full_sync; the id polls at once
                started = await client.post(post, headers=auth)
                assert started.status == 202
                body = await started.json()
                assert body["message"] == "Backfill started" and body["type"] == "full_sync"
                assert body["status"] == "in_progress" and isinstance(body["id"], str)
                immediately = await client.get(urls.api_admin_backfill_run(body["id"]),
                                               headers=auth)
                assert immediately.status == 200
                # while it runs, a second one is a conflict
                busy = await client.post(urls.api_admin_backfill("catch_up"), headers=auth)
                assert busy.status in (409, 202)
                done = await poll(client, body["id"], auth)
                assert done["status"] == "completed" and done["type"] == "full_sync"
                assert set(done) == {"id", "status", "type", "didsTotal", "didsProcessed",
                                     "recordsIndexed", "errorCount", "startedAt",
                                     "completedAt", "errorMessage"}
                assert done["didsProcessed"] == done["didsTotal"] > 1
                assert done["recordsIndexed"] > 0 and done["errorCount"] == 0
                if busy.status == 202:
                    await poll(client, (await busy.json())["id"], auth)

                # a fresh cursor: nothing needed; an unknown force falls through to that
                services.event_log.append([], CursorUpdate("jetstream",
                                                           services.clock.now_us()))
                for target in (post, urls.api_admin_backfill("sideways")):
                    fine = await client.post(target, headers=auth)
                    assert fine.status == 200
                    assert (await fine.json())["message"].startswith("No backfill needed.")

                lock = LeaderLock(services.settings, purpose="backfill")
                assert lock.acquire()
                try:
                    conflict = await client.post(urls.api_admin_backfill("full_sync"),
                                                 headers=auth)
                    assert conflict.status == 409
                finally:
                    lock.release()

                forced = await client.post(urls.api_admin_backfill("catch_up"), headers=auth)
                assert forced.status == 202 and (await forced.json())["type"] == "catch_up"
                caught = await poll(client, (await forced.json())["id"], auth)
                assert caught["status"] == "completed"

                for bad in ("abc", "²", "١٢", "9" * 19):
                    assert (await client.get(urls.api_admin_backfill_run(bad),
                                             headers=auth)).status == 400
                assert (await client.get(urls.api_admin_backfill_run("999999"),
                                         headers=auth)).status == 404
                errors = await client.get(urls.api_admin_backfill_errors(body["id"]),
                                          headers=auth)
                assert (await errors.json()) == {"errors": []}
                listing = await (await client.get(post, headers=auth)).json()
                assert [r["id"] for r in listing["backfills"]][-1] == body["id"]
        finally:
            services.close()


async def test_errors_are_listed_oldest_first_with_their_did(backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        services = appview_for(backend, "errs", network, seeded)
        try:
            victim = seeded.accounts[1]
            host = next(h for h in network.pds.values() if h.account(victim.did) is not None)
            host.set_account_status(victim.did, "deactivated")
            # the log knows the victim: a record of theirs was ingested before
            async with running(services, network.jetstream_url) as live:
                await wait_for(lambda: caught_up(services, network, live))
            _, operator = services.admin_tokens.issue(seeded.forum_did)
            auth = {"Authorization": f"Bearer {operator}"}
            async with TestClient(TestServer(create_app(services))) as client:
                started = await client.post(urls.api_admin_backfill("full_sync"),
                                            headers=auth)
                run = await poll(client, (await started.json())["id"], auth)
                assert run["status"] == "completed" and run["errorCount"] == 1
                errors = (await (await client.get(urls.api_admin_backfill_errors(run["id"]),
                                                  headers=auth)).json())["errors"]
                assert [e["did"] for e in errors] == [victim.did]
                assert set(errors[0]) == {"id", "did", "collection", "errorMessage",
                                          "createdAt"}
                assert "RepoDeactivated" in errors[0]["errorMessage"]
        finally:
            services.close()


async def test_without_a_backfill_manager_the_answer_is_503(backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        services = appview_for(backend, "none", network, seeded)
        try:
            _, operator = services.admin_tokens.issue(seeded.forum_did)
            services.backfills = None
            async with TestClient(TestServer(create_app(services))) as client:
                answer = await client.post(urls.api_admin_backfill(),
                                           headers={"Authorization": f"Bearer {operator}"})
                assert answer.status == 503
        finally:
            services.close()
