"""ForumAdmin (appview/writes/admin.py) on both backends: role assignment allows exactly
what the permission and the priority rule allow, for every actor role × role given ×
target role; a refusal writes nothing; the Forum account's absence is a 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appview.writes.admin import ForumAdmin, assignment_refusal
from appview.writes.errors import Forbidden, WriteError
from appview.writes.forum_actions import rank
from appview.writes.forum_agent import ForumAgent, ForumCredentials
from projections.views import MemberPermissions
from tests.admin_writes_support import AdminWorld, admin_world
from tests.conftest import Backend

ROLES = ("Owner", "Admin", "Moderator", "Member")
# None: no assignment (the default Member role applies)
HOLDERS = (*ROLES, None)


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[AdminWorld]:
    async with admin_world(backend) as built:
        yield built


def expected(actor_role: str | None, given_role: str, target_role: str | None,
             same_person: bool) -> bool:
    """The rule, written out from the roles' definitions rather than the code's."""
    priority = {"Owner": 0, "Admin": 10, "Moderator": 20, "Member": 30, None: 30}
    may_manage_roles = actor_role in ("Owner", "Admin")
    mine = priority[actor_role]
    theirs = mine if same_person else priority[target_role]
    return may_manage_roles and priority[given_role] > mine and theirs > mine


async def test_role_assignment_allows_exactly_what_permission_and_priority_allow(
        world: AdminWorld) -> None:
    admin = world.services.forum_admin
    loop = asyncio.get_running_loop()

    async def attempt(actor_role: str | None, given_role: str, target_role: str | None,
                      same: bool) -> None:
        await _set(world, "alice", actor_role)
        target = "alice" if same else "bob"
        if not same:
            await _set(world, "bob", target_role)
        writes, head = world.writes(), world.head()
        allowed = expected(actor_role, given_role, target_role, same)
        case = (actor_role, given_role, target_role, same)
        try:
            done = await admin.assign_role(world.did("alice"), world.did(target),
                                           world.roles[given_role].uri)
        except Forbidden:
            assert not allowed, case
            assert (world.writes(), world.head()) == (writes, head), case
            return
        assert allowed, case
        found = await admin.permissions(world.did(target))
        assert found.role is not None and found.role.name == given_role, case
        assert done.target_did == world.did(target)

    # hypothesis drives a plain function; each example runs on the test's event loop,
    # which stays free while this thread waits for it
    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(actor_role=st.sampled_from(HOLDERS), given_role=st.sampled_from(ROLES),
           target_role=st.sampled_from(HOLDERS), same=st.booleans())
    def check(actor_role: str | None, given_role: str, target_role: str | None,
              same: bool) -> None:
        asyncio.run_coroutine_threadsafe(
            attempt(actor_role, given_role, target_role, same), loop).result()

    await asyncio.to_thread(check)


async def _set(world: AdminWorld, person: str, role: str | None) -> None:
    if role is None:
        await world.services.writer.delete(world.owner, "space.atbb.forum.roleAssignment",
                                           world.did(person))
    else:
        await world.give(person, role)


@given(actor=st.one_of(st.none(), st.integers(-1, 40)),
       perms=st.sampled_from([frozenset(), frozenset({"*"}),
                              frozenset({"space.atbb.permission.manageRoles"}),
                              frozenset({"space.atbb.permission.banUsers"})]),
       role=st.one_of(st.none(), st.integers(0, 40)),
       target=st.one_of(st.none(), st.integers(-1, 40)))
def test_the_rule_is_strictly_less_authority_on_both_sides(
        actor: int | None, perms: frozenset[str], role: int | None,
        target: int | None) -> None:
    refusal = assignment_refusal(MemberPermissions("did:plc:x", perms, actor, None),
                                 role, target)
    grants = "*" in perms or "space.atbb.permission.manageRoles" in perms
    allowed = grants and actor is not None and rank(role) > actor and rank(target) > actor
    assert (refusal is None) == allowed


async def test_without_the_forum_agent_nothing_is_written(backend: Backend) -> None:
    async with admin_world(backend) as world:
        # a fresh agent, never signed in, over the same stores
        services = world.services
        agent = ForumAgent(services.settings, services.clock, ForumCredentials(
            services.settings, lambda: services.member_auth.store.box))
        admin = ForumAdmin(services.writer, services.queries, services.event_log,
                           services.clock, agent)
        head = world.head()
        with pytest.raises(WriteError) as refused:
            await admin.create_category(world.did("admin1"), name="Never")
        assert refused.value.status in (500, 503) and world.head() == head
        assert world.writes() == 0
