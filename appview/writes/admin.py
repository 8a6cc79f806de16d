"""What an administrator may change in the forum's structure, roles and themes, decided
on the read models before anything is sent, and written to the **Forum account's repo**
through the :class:`~appview.writes.writer.RecordWriter` (validated, logged at once as
``local``, projected: read-your-writes).

Every method takes the acting DID (a signed-in member, or an admin token's DID) and
checks, in this order: the permission its role grants (``Forbidden``), the request's
values (``BadWrite`` / ``InvalidRecord`` naming the field), the records it is about
(``NotFound``), the state that forbids it (``Conflict``: a category with boards, a board
with posts, a theme that is a default). Only then is the Forum account's agent asked
for its session (``NoForumAgent``, 500, without credentials; ``ForumAgentNotReady``,
503, while it is not signed in) and the record written; a refusal writes nothing
anywhere.

Role assignment follows the priority rule (lower priority = more authority, the Forum
account itself is -1): the actor may give a role only of strictly less authority than
their own, and only to someone of strictly less authority than their own
(:func:`assignment_refusal`). An assignment already in force writes nothing and answers
``already_active``.

Records are the original's shapes (``events.records``) with ``createdBy`` naming the
acting member (an extra field for categories, boards, themes and the policy: records
are open objects, and other readers ignore it). An update is a full ``putRecord`` of
the current version (from the event log) with the changed fields, ``createdAt`` kept,
swapped on the CID the read models hold, so a change made meanwhile is a 409.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from appview.clock import Clock
from appview.writes.errors import (
    BadWrite,
    Conflict,
    Forbidden,
    NotFound,
)
from appview.writes.forum import record_time
from appview.writes.forum_actions import rank
from appview.writes.writer import RecordWriter, RepoSession, Written
from events.collections import BOARD, CATEGORY, ROLE_ASSIGNMENT, THEME, THEME_POLICY
from events.log import EventLog
from events.model import RecordEvent
from events.records import (
    StrongRef,
    board_record,
    category_record,
    edited,
    role_assignment_record,
    theme_policy_record,
    theme_record,
)
from projections.queries import Queries
from projections.views import (
    Board,
    Category,
    MemberPermissions,
    Role,
    Theme,
    ThemePolicy,
    permission,
)

MANAGE_CATEGORIES = "manageCategories"
MANAGE_ROLES = "manageRoles"
MANAGE_MEMBERS = "manageMembers"
MANAGE_THEMES = "manageThemes"

class ForumAccount(Protocol):
    """What the admin writes need of the Forum account's agent
    (``appview.writes.forum_agent.ForumAgent``): its session, or a ``WriteError``
    (500 no agent, 503 not signed in now) before anything is sent."""

    def session(self) -> RepoSession: ...


def assignment_refusal(actor: MemberPermissions, role_priority: int | None,
                       target_authority: int | None) -> str | None:
    """Why ``actor`` may not give a role of ``role_priority`` to someone whose authority
    is ``target_authority`` (None: they may). The permission, then the priority rule."""
    if "*" not in actor.permissions and permission(MANAGE_ROLES) not in actor.permissions:
        return f"Your role does not grant {permission(MANAGE_ROLES)}."
    if actor.authority is None:
        return "You hold no role with a priority, so you can assign none."
    if rank(role_priority) <= actor.authority:
        return "Cannot assign a role with equal or higher authority than your own."
    if rank(target_authority) <= actor.authority:
        return "Cannot change the role of someone with equal or higher authority than yours."
    return None


@dataclass(frozen=True, slots=True)
class Assigned:
    """A role assignment: ``written`` is None when it was already in force."""

    role: Role
    target_did: str
    written: Written | None


def _text_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


class ForumAdmin:
    """The administrators' writes (module doc). One per process, built by bootstrap."""

    def __init__(self, writer: RecordWriter, queries: Queries, event_log: EventLog,
                 clock: Clock, account: ForumAccount) -> None:
        self.writer = writer
        self._queries = queries
        self._log = event_log
        self._clock = clock
        self.account = account

    # -- reading ---------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now_us() / 1e6, UTC)

    def _stamp(self) -> str:
        return record_time(self._clock.now_us())

    async def permissions(self, did: str) -> MemberPermissions:
        return await asyncio.to_thread(self._queries.member_permissions, did)

    async def _grants(self, did: str, name: str) -> MemberPermissions:
        found = await self.permissions(did)
        if "*" not in found.permissions and permission(name) not in found.permissions:
            raise Forbidden(f"Your role in this forum does not grant {permission(name)}.")
        return found

    def _current(self, uri: str, cid: str | None) -> dict[str, Any] | None:
        """The version of a record the read models hold, from the log."""
        versions = [logged.event for logged in self._log.history(uri)
                    if isinstance(logged.event, RecordEvent)
                    and logged.event.record is not None]
        exact = [event for event in versions if event.cid == cid]
        chosen = exact or versions
        if not chosen:
            return None
        record = max(chosen, key=lambda event: event.version).record
        return None if record is None else dict(record)

    async def _session(self) -> RepoSession:
        return self.account.session()

    # -- categories ------------------------------------------------------------------

    async def _category(self, category_id: str) -> Category:
        found = await asyncio.to_thread(self._queries.category, category_id)
        if found is None or found.cid is None:
            raise NotFound(f"No category {category_id!r}.")
        return found

    async def create_category(self, actor: str, *, name: str, description: str | None = None,
                              sort_order: int | None = None, slug: str | None = None,
                              ) -> Written:
        await self._grants(actor, MANAGE_CATEGORIES)
        record = category_record(name.strip(), created_at=self._stamp(),
                                 description=_text_or_none(description), slug=slug,
                                 sort_order=sort_order)
        record["createdBy"] = actor
        session = await self._session()
        return await self.writer.create(session, CATEGORY, record, actor=actor)

    async def update_category(self, actor: str, category_id: str, *,
                              changes: Mapping[str, Any]) -> Written:
        """``changes``: record fields (``name``, ``description``, ``sortOrder``,
        ``slug``) to set; None removes an optional one; absent ones are kept."""
        await self._grants(actor, MANAGE_CATEGORIES)
        found = await self._category(category_id)
        return await self._put(actor, CATEGORY, found.uri, found.cid, changes)

    async def delete_category(self, actor: str, category_id: str) -> Written:
        await self._grants(actor, MANAGE_CATEGORIES)
        found = await self._category(category_id)
        boards = await asyncio.to_thread(self._queries.category_board_count, found.uri)
        if boards:
            raise Conflict(f"The category {found.name!r} still has {boards} board(s):"
                           " move or delete them first.")
        session = await self._session()
        return await self.writer.delete(session, CATEGORY, found.id, actor=actor)

    # -- boards ----------------------------------------------------------------------

    async def _board(self, board_id: str) -> Board:
        found = await asyncio.to_thread(
            lambda: self._queries.board(board_id, now=self._now()))
        if found is None or found.cid is None:
            raise NotFound(f"No board {board_id!r}.")
        return found

    async def create_board(self, actor: str, *, name: str, category: str,
                           description: str | None = None, sort_order: int | None = None,
                           slug: str | None = None) -> Written:
        await self._grants(actor, MANAGE_CATEGORIES)
        parent = await self._category(category)
        assert parent.cid is not None  # _category checked
        record = board_record(name.strip(), StrongRef(parent.uri, parent.cid),
                              created_at=self._stamp(),
                              description=_text_or_none(description), slug=slug,
                              sort_order=sort_order)
        record["createdBy"] = actor
        session = await self._session()
        return await self.writer.create(session, BOARD, record, actor=actor)

    async def update_board(self, actor: str, board_id: str, *,
                           changes: Mapping[str, Any]) -> Written:
        """As ``update_category``; the board stays in its category (no reparenting, as
        the original)."""
        await self._grants(actor, MANAGE_CATEGORIES)
        found = await self._board(board_id)
        return await self._put(actor, BOARD, found.uri, found.cid, changes)

    async def delete_board(self, actor: str, board_id: str) -> Written:
        await self._grants(actor, MANAGE_CATEGORIES)
        found = await self._board(board_id)
        posts = await asyncio.to_thread(self._queries.board_post_count, found.uri)
        if posts:
            raise Conflict(f"The board {found.name!r} has posts ({posts} topic(s)):"
                           " remove them first.")
        session = await self._session()
        return await self.writer.delete(session, BOARD, found.id, actor=actor)

    async def _put(self, actor: str, collection: str, uri: str, cid: str | None,
                   changes: Mapping[str, Any]) -> Written:
        current = await asyncio.to_thread(self._current, uri, cid)
        if current is None:
            raise NotFound("The record is not fully known here yet.")
        record = edited({key: value for key, value in current.items()
                         if key not in changes or changes[key] is not None},
                        **{key: value for key, value in changes.items() if value is not None})
        record["createdBy"] = actor
        session = await self._session()
        return await self.writer.put(session, collection, uri.rsplit("/", 1)[-1], record,
                                     swap_record=cid, actor=actor)

    # -- roles -----------------------------------------------------------------------

    async def assign_role(self, actor: str, target_did: str, role_ref: str) -> Assigned:
        """Give ``target_did`` the role ``role_ref`` (an at-uri or rkey of a role)."""
        me = await self.permissions(actor)
        if "*" not in me.permissions and permission(MANAGE_ROLES) not in me.permissions:
            raise Forbidden(f"Your role in this forum does not grant {permission(MANAGE_ROLES)}.")
        role = await asyncio.to_thread(self._queries.role, role_ref)
        if role is None or role.cid is None:
            raise NotFound(f"No role {role_ref!r}.")
        member = await asyncio.to_thread(lambda: self._queries.member(target_did,
                                                                      now=self._now()))
        if member is None:
            raise NotFound(f"{target_did} is not a member of this forum (no membership).")
        target = await self.permissions(target_did)
        refusal = assignment_refusal(me, role.priority, target.authority)
        if refusal is not None:
            raise Forbidden(refusal)
        if target.role is not None and target.role.uri == role.uri and not role.is_default:
            return Assigned(role, target_did, None)
        record = role_assignment_record(target_did, StrongRef(role.uri, role.cid),
                                        created_by=actor, created_at=self._stamp())
        session = await self._session()
        written = await self.writer.put(session, ROLE_ASSIGNMENT, target_did, record,
                                        actor=actor)
        return Assigned(role, target_did, written)

    # -- themes ----------------------------------------------------------------------

    async def _theme(self, rkey: str) -> Theme:
        found = await asyncio.to_thread(self._queries.theme, rkey)
        if found is None:
            raise NotFound(f"No theme {rkey!r}.")
        return found

    async def create_theme(self, actor: str, *, name: str, color_scheme: str,
                           tokens: Mapping[str, str], css_overrides: str | None = None,
                           font_urls: Iterable[str] | None = None) -> Written:
        await self._grants(actor, MANAGE_THEMES)
        record = theme_record(name.strip(), color_scheme, tokens, created_at=self._stamp(),
                              css_overrides=css_overrides,
                              font_urls=None if font_urls is None else list(font_urls))
        record["createdBy"] = actor
        session = await self._session()
        return await self.writer.create(session, THEME, record, actor=actor)

    async def update_theme(self, actor: str, rkey: str, *, name: str, color_scheme: str,
                           tokens: Mapping[str, str], css_overrides: str | None = None,
                           font_urls: Iterable[str] | None = None) -> Written:
        """A full replacement, as the original: ``cssOverrides`` and ``fontUrls`` keep
        their values when not given; ``createdAt`` is kept."""
        await self._grants(actor, MANAGE_THEMES)
        found = await self._theme(rkey)
        record = theme_record(
            name.strip(), color_scheme, tokens,
            created_at=found.created_at or self._stamp(),
            css_overrides=found.css_overrides if css_overrides is None else css_overrides,
            font_urls=(list(found.font_urls) or None) if font_urls is None
            else list(font_urls))
        record["createdBy"] = actor
        session = await self._session()
        return await self.writer.put(session, THEME, found.id, record,
                                     swap_record=found.cid, actor=actor)

    async def delete_theme(self, actor: str, rkey: str) -> Written:
        await self._grants(actor, MANAGE_THEMES)
        found = await self._theme(rkey)
        policy = await asyncio.to_thread(self._queries.theme_policy)
        if policy is not None and found.uri in (policy.default_light_theme,
                                                policy.default_dark_theme):
            raise Conflict(f"The theme {found.name!r} is a default of the theme policy:"
                           " choose another default first.")
        session = await self._session()
        return await self.writer.delete(session, THEME, found.id, actor=actor)

    async def duplicate_theme(self, actor: str, rkey: str) -> Written:
        """A copy under a new record key, named "<name> (Copy)"."""
        await self._grants(actor, MANAGE_THEMES)
        found = await self._theme(rkey)
        record = theme_record(f"{found.name} (Copy)"[:100], found.color_scheme or "light",
                              dict(found.tokens), created_at=self._stamp(),
                              css_overrides=found.css_overrides,
                              font_urls=list(found.font_urls) or None)
        record["createdBy"] = actor
        session = await self._session()
        return await self.writer.create(session, THEME, record, actor=actor)

    async def put_theme_policy(self, actor: str, *, available: Iterable[tuple[str, str | None]],
                               default_light: str, default_dark: str,
                               allow_user_choice: bool = True) -> Written:
        """``available``: (uri, cid or None for a live reference) of each offered theme;
        both defaults must be among them."""
        await self._grants(actor, MANAGE_THEMES)
        entries = list(available)
        if not entries:
            raise BadWrite("availableThemes must name at least one theme.")
        uris = [uri for uri, _cid in entries]
        for field, uri in (("defaultLightThemeUri", default_light),
                           ("defaultDarkThemeUri", default_dark)):
            if uri not in uris:
                raise BadWrite(f"{field} must be one of availableThemes.")
        record = theme_policy_record(
            [uri if cid is None else StrongRef(uri, cid) for uri, cid in entries],
            default_light=default_light, default_dark=default_dark,
            updated_at=self._stamp(), allow_user_choice=allow_user_choice)
        record["createdBy"] = actor
        session = await self._session()
        return await self.writer.put(session, THEME_POLICY, "self", record, actor=actor)

    async def policy(self) -> ThemePolicy | None:
        return await asyncio.to_thread(self._queries.theme_policy)
