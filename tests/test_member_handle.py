"""A member's handle is logged when they sign in (appview/writes/member_handle.py): a
local identity event, projected at once, that the network's own identity events still
replace; nothing is logged for a handle that does not resolve back, a silent directory
or an unknown DID, and the member stays signed in (both backends)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from appview.auth.errors import IdentityError
from appview.auth.identity import ResolvedIdentity
from appview.bootstrap import Services, bootstrap
from appview.devnet.clock import DevClock
from appview.writes.member_handle import MemberHandles
from events.model import IdentityChanged
from tests.conftest import Backend
from tests.web_forum import settings_for

FORUM = "did:plc:forumforumforumforumforu"
ALICE = "did:plc:aliceaaaaaaaaaaaaaaaaaaa"


class Directory:
    """The Identity port over a table: what each DID's document claims, where each
    handle resolves; ``silent`` answers nothing."""

    def __init__(self) -> None:
        self.claims: dict[str, str | None] = {}
        self.handles: dict[str, str] = {}
        self.silent = False
        self.broken = False

    async def _answer(self) -> None:
        if self.silent:
            await asyncio.sleep(3600)
        if self.broken:
            raise ConnectionResetError("the directory hung up")

    async def resolve_handle(self, handle: str) -> str:
        await self._answer()
        if handle not in self.handles:
            raise IdentityError(f"the handle {handle} does not resolve")
        return self.handles[handle]

    async def resolve_did(self, did: str, *, fresh: bool) -> ResolvedIdentity:
        await self._answer()
        if did not in self.claims:
            raise IdentityError(f"{did}: unknown")
        return ResolvedIdentity(did, "http://pds.invalid", self.claims[did])


@pytest.fixture
def services(backend: Backend) -> Iterator[Services]:
    built = bootstrap(settings_for(backend, FORUM), clock=DevClock())
    try:
        yield built
    finally:
        built.close()


def handles_for(services: Services, directory: Directory) -> MemberHandles:
    return MemberHandles(services.writer, services.event_log, services.clock,
                         lambda: directory, timeout=0.5)


def shown_handle(services: Services, did: str) -> str | None:
    with services.read_models.read() as session:
        row = session.query_one("SELECT handle FROM members WHERE did = ?", (did,))
    return None if row is None else row[0]


def identities(services: Services, did: str) -> list[IdentityChanged]:
    return [logged.event for logged in services.event_log.history(f"identity:{did}")
            if isinstance(logged.event, IdentityChanged)]


def network_identity(did: str, handle: str, seq: int) -> IdentityChanged:
    return IdentityChanged(did, handle, seq, None, "firehose", seq, 1)


async def test_a_verified_handle_is_logged_as_local_and_shown_at_once(
        services: Services) -> None:
    directory = Directory()
    directory.claims[ALICE] = "Alice.Example.com"
    directory.handles["alice.example.com"] = ALICE
    event = await handles_for(services, directory).signed_in(ALICE)
    assert event is not None and event.source == "local" and event.seq == 0
    assert shown_handle(services, ALICE) == "alice.example.com"
    # signing in again with the same handle logs nothing more
    assert await handles_for(services, directory).signed_in(ALICE) is None
    assert len(identities(services, ALICE)) == 1


async def test_the_networks_identity_events_still_win(services: Services) -> None:
    directory = Directory()
    directory.claims[ALICE] = "alice.example.com"
    directory.handles["alice.example.com"] = ALICE
    await handles_for(services, directory).signed_in(ALICE)
    # the network's event for the same account (any real seq) comes later and wins
    services.event_log.append([network_identity(ALICE, "alice.new.com", 41)])
    services.projector.project_through(services.event_log.head())
    assert shown_handle(services, ALICE) == "alice.new.com"
    # a handle changed while the appview missed the network's event: one past its seq
    directory.claims[ALICE] = "alice.third.com"
    directory.handles["alice.third.com"] = ALICE
    event = await handles_for(services, directory).signed_in(ALICE)
    assert event is not None and event.seq == 42
    assert shown_handle(services, ALICE) == "alice.third.com"
    services.event_log.append([network_identity(ALICE, "alice.fourth.com", 50)])
    services.projector.project_through(services.event_log.head())
    assert shown_handle(services, ALICE) == "alice.fourth.com"


@pytest.mark.parametrize("case", ["resolves elsewhere", "does not resolve", "no claim",
                                  "unknown DID", "silent directory", "broken directory"])
async def test_an_unverified_handle_logs_nothing(services: Services, case: str) -> None:
    directory = Directory()
    directory.claims[ALICE] = "alice.example.com"
    directory.handles["alice.example.com"] = "did:plc:someoneelseeeeeeeeeeeeee"
    if case == "does not resolve":
        directory.handles.clear()
    elif case == "no claim":
        directory.claims[ALICE] = None
    elif case == "unknown DID":
        directory.claims.clear()
    elif case == "silent directory":
        directory.silent = True
    elif case == "broken directory":
        directory.broken = True
    assert await handles_for(services, directory).signed_in(ALICE) is None
    assert identities(services, ALICE) == []
    assert shown_handle(services, ALICE) is None
