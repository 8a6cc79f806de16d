"""A devnet with a seeded forum and an appview pointed at it, for the backfill tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from appview.bootstrap import Services, bootstrap
from appview.devnet.network import DevNetwork
from appview.devnet.seed import SeededForum
from appview.settings import Settings
from tests.conftest import Backend
from tests.test_consumer import dump, settings_for


def appview_for(backend: Backend, name: str, network: DevNetwork, seeded: SeededForum,
                **overrides: Any) -> Services:
    options = {"plc_url": network.plc_url, "jetstream_url": network.jetstream_url,
               "relay_url": network.relay_url,
               "handle_resolver_dev_urls": network.handle_resolver_dev_urls,
               "backfill_rate_limit": 0.0, **overrides}
    settings: Settings = settings_for(backend, name, seeded.forum_did).with_overrides(
        **options)
    return bootstrap(settings)


def comparable(services: Services) -> dict[str, list[str]]:
    """The read models as the current repos make them: without what depends on how and
    when a record reached the log (observed times, the rev it arrived with, the firehose's
    sequence numbers, positions of rejections) nor tombstones of records deleted before
    (a fresh read of the repos never saw them)."""
    out: dict[str, list[str]] = {}
    for table, rows in dump(services, with_times=False).items():
        cleaned = []
        for text in rows:
            row = json.loads(text)
            if row.get("deleted") == 1:
                continue
            for key in list(row):
                if key.endswith(("rev", "_seq")) or key == "position":
                    row.pop(key)
            cleaned.append(json.dumps(row, sort_keys=True))
        out[table] = sorted(cleaned)
    return out


async def fresh_sync(backend: Backend, network: DevNetwork,
                     seeded: SeededForum) -> dict[str, list[str]]:
    """What a new appview makes of the current repos with one full_sync (an empty
    database): the expected read models after any repair."""
    fresh = appview_for(backend, "fresh", network, seeded)
    try:
        assert fresh.backfills is not None
        assert fresh.backfills.detect() == "full_sync"
        run = await asyncio.to_thread(fresh.backfills.run, "full_sync")
        assert run.status == "completed", run.error_message
        return comparable(fresh)
    finally:
        fresh.close()
