"""Typed queries over the forum read models: what the web layer and the JSON API call.

:class:`Queries` reads through ``ReadModels`` (one location, or whichever generation is
live); each call reads one consistent snapshot. Visibility depends on who asks
(``viewer``) and when (``now``: bans expire, and the projection never reads the clock), so
the calls that show posts or counts take both.
Several reads that must agree (a page and its counts) can share one snapshot through
:meth:`Queries.snapshot` and the functions of the ``queries_*`` modules.

Every id parameter also accepts the record's full at-uri. Lists return
:class:`projections.views.Page` in a stable total order, so pages partition the list;
bad paging (negative offset, huge limit) is clamped, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from projections import (
    queries_admin,
    queries_forum_records,
    queries_members,
    queries_moderation,
    queries_posts,
    queries_search,
    queries_structure,
    queries_writes,
)
from projections.queries_common import Context
from projections.readmodel import ReadModels
from projections.views import (
    AdminMember,
    Ban,
    Board,
    Category,
    Forum,
    Member,
    MemberPermissions,
    MemberProfile,
    ModLogEntry,
    OwnReaction,
    Page,
    Post,
    PostLocation,
    PostTarget,
    ReactionCount,
    Reactions,
    Role,
    SearchResults,
    Theme,
    ThemePolicy,
    TopicPage,
    TopicSummary,
    Viewer,
)

_ANONYMOUS = Viewer.anonymous()


class Queries:
    def __init__(self, store: ReadModels, forum_did: str) -> None:
        self._store = store
        self.forum_did = forum_did

    @contextmanager
    def snapshot(self, *, viewer: Viewer = _ANONYMOUS, now: datetime) -> Iterator[Context]:
        """One read transaction, for several queries that must see the same state."""
        with self._store.read() as session:
            yield Context.open(session, self.forum_did, viewer, now)

    @contextmanager
    def _undated(self, viewer: Viewer = _ANONYMOUS) -> Iterator[Context]:
        # For reads that no ban can change: no need to load the banned set.
        with self._store.read() as session:
            yield Context(session, self.forum_did, viewer, "", ())

    # --- structure -----------------------------------------------------------------------

    def forum(self) -> Forum | None:
        with self._undated() as ctx:
            return queries_structure.forum(ctx)

    def categories(self, *, offset: int | None = None, limit: int | None = None) -> Page[Category]:
        with self._undated() as ctx:
            return queries_structure.categories(ctx, offset, limit)

    def category(self, category_id: str) -> Category | None:
        with self._undated() as ctx:
            return queries_structure.category(ctx, category_id)

    def category_boards(
        self,
        category_id: str,
        *,
        viewer: Viewer = _ANONYMOUS,
        now: datetime,
        offset: int | None = None,
        limit: int | None = None,
    ) -> Page[Board] | None:
        with self.snapshot(viewer=viewer, now=now) as ctx:
            return queries_structure.category_boards(ctx, category_id, offset, limit)

    def board(self, board_id: str, *, viewer: Viewer = _ANONYMOUS, now: datetime) -> Board | None:
        with self.snapshot(viewer=viewer, now=now) as ctx:
            return queries_structure.board(ctx, board_id)

    # --- posts ---------------------------------------------------------------------------

    def board_topics(
        self,
        board_id: str,
        *,
        viewer: Viewer = _ANONYMOUS,
        now: datetime,
        offset: int | None = None,
        limit: int | None = None,
    ) -> Page[TopicSummary] | None:
        """None when the board is not listed."""
        with self.snapshot(viewer=viewer, now=now) as ctx:
            uri = queries_structure.board_uri(ctx, board_id)
            return None if uri is None else queries_posts.board_topics(ctx, uri, offset, limit)

    def topic(
        self,
        topic_id: str,
        *,
        viewer: Viewer = _ANONYMOUS,
        now: datetime,
        offset: int | None = None,
        limit: int | None = None,
    ) -> TopicPage | None:
        with self.snapshot(viewer=viewer, now=now) as ctx:
            return queries_posts.topic(ctx, topic_id, offset, limit)

    def post(self, post_id: str, *, viewer: Viewer = _ANONYMOUS, now: datetime) -> Post | None:
        with self.snapshot(viewer=viewer, now=now) as ctx:
            return queries_posts.post(ctx, post_id)

    def post_location(
        self,
        post_id: str,
        *,
        viewer: Viewer = _ANONYMOUS,
        now: datetime,
        limit: int | None = None,
    ) -> PostLocation | None:
        with self.snapshot(viewer=viewer, now=now) as ctx:
            return queries_posts.post_location(ctx, post_id, limit)

    def reaction_counts(self, post_uris: Iterable[str]) -> dict[str, tuple[ReactionCount, ...]]:
        with self._undated() as ctx:
            return queries_posts.reaction_counts(ctx, post_uris)

    def search(self, request: queries_search.SearchRequest, *, viewer: Viewer = _ANONYMOUS,
               now: datetime) -> SearchResults:
        """The viewer's hits (``queries_search.search``); QueryProblem when the query or
        a filter cannot be searched."""
        with self.snapshot(viewer=viewer, now=now) as ctx:
            return queries_search.search(ctx, request)

    # --- members and roles ---------------------------------------------------------------

    def member(self, did: str, *, now: datetime) -> Member | None:
        with self.snapshot(now=now) as ctx:
            return queries_members.member(ctx, did)

    def member_profile(
        self, did: str, *, viewer: Viewer = _ANONYMOUS, now: datetime
    ) -> MemberProfile | None:
        with self.snapshot(viewer=viewer, now=now) as ctx:
            return queries_members.member_profile(ctx, did)

    def members(
        self, *, now: datetime, offset: int | None = None, limit: int | None = None
    ) -> Page[Member]:
        with self.snapshot(now=now) as ctx:
            return queries_members.members(ctx, offset, limit)

    def member_permissions(self, did: str) -> MemberPermissions:
        with self._undated() as ctx:
            return queries_members.member_permissions(ctx, did)

    def viewer(self, did: str | None) -> Viewer:
        with self._undated() as ctx:
            return queries_members.viewer(ctx, did)

    def role_badges(self, dids: list[str]) -> dict[str, str]:
        with self._undated() as ctx:
            return queries_members.role_badges(ctx, dids)

    def is_banned(self, did: str, *, now: datetime) -> bool:
        with self.snapshot(now=now) as ctx:
            return queries_members.is_banned(ctx, did)

    def roles(self, *, offset: int | None = None, limit: int | None = None) -> Page[Role]:
        with self._undated() as ctx:
            return queries_members.roles(ctx, offset, limit)

    def role(self, role_id: str) -> Role | None:
        with self._undated() as ctx:
            return queries_members.role(ctx, role_id)

    def admin_members(self, *, search: str | None = None, offset: int | None = None,
                      limit: int | None = None) -> Page[AdminMember]:
        with self._undated() as ctx:
            return queries_admin.members(ctx, search, offset, limit)

    def category_board_count(self, category_uri: str) -> int:
        with self._undated() as ctx:
            return queries_admin.category_board_count(ctx, category_uri)

    def board_post_count(self, board_uri: str) -> int:
        with self._undated() as ctx:
            return queries_admin.board_post_count(ctx, board_uri)

    # --- mod log and themes --------------------------------------------------------------

    def modlog(self, *, offset: int | None = None, limit: int | None = None,
               moderator: str | None = None, action: str | None = None,
               member: str | None = None) -> Page[ModLogEntry]:
        with self._undated() as ctx:
            return queries_forum_records.modlog(ctx, offset, limit, moderator=moderator,
                                                action=action, member=member)

    def did_for_handle(self, handle: str) -> str | None:
        with self._undated() as ctx:
            return queries_moderation.did_for_handle(ctx, handle)

    def themes(self, *, offset: int | None = None, limit: int | None = None) -> Page[Theme]:
        with self._undated() as ctx:
            return queries_forum_records.themes(ctx, offset, limit)

    def theme(self, rkey: str) -> Theme | None:
        with self._undated() as ctx:
            return queries_forum_records.theme(ctx, rkey)

    def theme_version(self, uri: str, cid: str) -> Theme | None:
        with self._undated() as ctx:
            return queries_forum_records.theme_version(ctx, uri, cid)

    def theme_policy(self) -> ThemePolicy | None:
        with self._undated() as ctx:
            return queries_forum_records.theme_policy(ctx)

    # --- what writes are decided on ------------------------------------------------------

    def post_target(self, post_ref: str, *, viewer: Viewer = _ANONYMOUS,
                    now: datetime) -> PostTarget | None:
        with self.snapshot(viewer=viewer, now=now) as ctx:
            return queries_writes.post_target(ctx, post_ref)

    def ban(self, did: str, *, now: datetime) -> Ban | None:
        with self.snapshot(now=now) as ctx:
            return queries_writes.ban(ctx, did)

    def membership(self, did: str) -> str | None:
        with self._undated() as ctx:
            return queries_writes.membership(ctx, did)

    def own_reactions(self, did: str, post_uri: str) -> list[OwnReaction]:
        with self._undated() as ctx:
            return queries_writes.own_reactions(ctx, did, post_uri)

    def reactions(self, post_uris: Iterable[str], *,
                  viewer: Viewer = _ANONYMOUS) -> dict[str, Reactions]:
        with self._undated(viewer) as ctx:
            return queries_writes.reactions(ctx, post_uris)
