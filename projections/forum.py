"""The forum projection: structure, posts, members, roles, moderation, reactions, themes.

These are coupled through visibility (a ban, a hidden post or a suspended account changes
what every count shows), so they are one projection with one tracked position. Each
``apply`` is one transaction: fold the batch in memory, merge it into the record tables,
re-derive what it touched, record the position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from events import collections as c
from events.model import Logged, at_uri
from projections.apply_fold import FoldedBatch, VerdictReview
from projections.apply_members import (
    reaction_keys,
    refresh_bans,
    refresh_board_listing,
    refresh_default_role,
    refresh_member_roles,
    refresh_members,
    refresh_reaction_counts,
    role_subjects,
    update_member_base,
)
from projections.apply_posts import (
    PostInputs,
    by_did,
    existence_changes,
    mod_subject_changes,
    project_posts,
)
from projections.apply_records import TABLES, MergedTable, merge_table, write_rows
from projections.carried_html import CarriedHtml, StoreOpener
from projections.db import Session
from projections.notifications import NotificationsProjection
from projections.post_html import RENDERER_STAMP_NAME, renderer_stamp
from projections.prepare import FreshRecords, prepare
from projections.readmodel import AttachedToReadModels, ReadModels
from projections.schema import BULK_RECOUNTS
from projections.search import SearchProjection

# events applied before the first refresh of the planner's statistics (then doubling)
_FIRST_STATISTICS = 3000


class ForumProjection(AttachedToReadModels):
    """Folds the log into the forum's read models. ``attach`` it to a store first."""

    NAME = "forum"
    VERSION = 4

    def __init__(self, forum_did: str, review: VerdictReview | None = None) -> None:
        """``review`` takes the log's superseded verdicts again (ADR 0012); by default
        one for ``forum_did``, which loads the validator at the first of them."""
        self.forum_did = forum_did
        self.forum_uri = at_uri(forum_did, c.FORUM, "self")
        self.name = self.NAME
        self.version = self.VERSION
        self._review = review or VerdictReview(forum_did)
        self._store: ReadModels | None = None
        self._version_recorded = False
        self._pending_checked = False
        self._applied_since_statistics = 0
        self._statistics_every = _FIRST_STATISTICS
        # DIDs with a member row, remembered over a bulk load's committed batches (rows
        # are never deleted): its batches do not write them again (1M events: 438k rows
        # upserted for nothing, docs/performance.md)
        self._members: set[str] = set()
        # the records a bulk load from the location's beginning has had so far
        self._fresh: FreshRecords | None = None
        self._carried: CarriedHtml | None = None

    def attach(self, store: ReadModels) -> None:
        self._store = store
        self._version_recorded = False
        self._pending_checked = False
        self._applied_since_statistics = 0
        self._statistics_every = _FIRST_STATISTICS
        self._members = set()
        self._fresh = None

    def carry_html_from(self, open_store: StoreOpener | None) -> None:
        """Take posts' HTML from the generation ``open_store`` opens when the texts and
        the renderer match (a rebuild's replay: ``projections.carried_html``); None
        renders every post."""
        self._carried = None if open_store is None else CarriedHtml(open_store)

    def apply(self, batch: Sequence[Logged]) -> None:
        """Apply the events of ``batch`` past the tracked position, and the position,
        in one transaction. A batch entirely at or below the position changes nothing."""
        # its records are not among those the prepared batches of a load remembered:
        # those that follow must look for rows again
        self._fresh = None
        self._apply(lambda start: prepare(
            [logged for logged in batch if logged.position > start], self.forum_did,
            self._review, self._carried))

    def preparer(self) -> Callable[[Sequence[Logged]], FoldedBatch]:
        """The first half of ``apply``, for the processes that prepare the batches from
        this projection's position ahead (``projections.prepare_process``). From
        position 0 the location holds no record rows, so the batches that follow, while
        they load in bulk, name the records no earlier batch had (``FreshRecords``)."""
        self._fresh = FreshRecords() if self.position() == 0 else None
        return partial(prepare, forum_did=self.forum_did, review=self._review,
                       carried=self._carried)

    def apply_prepared(self, folded: FoldedBatch) -> None:
        """``apply`` of a batch the ``preparer`` prepared elsewhere. A batch at or below
        the tracked position changes nothing; one that overlaps it is refused (prepared
        batches come from one reader following this projection's position)."""
        def take(start: int) -> FoldedBatch | None:
            if folded.last_position <= start:
                return None
            if folded.first_position <= start:
                raise ValueError(
                    f"a prepared batch ({folded.first_position}..{folded.last_position})"
                    f" overlaps the {self.name} projection's position {start}")
            return folded if self._fresh is None else self._fresh.mark(folded)

        self._apply(take)

    def _apply(self, take: Callable[[int], FoldedBatch | None]) -> None:
        store = self.store
        if not store.bulk_loading:
            # remembered only while one load writes the location
            self._members = set()
            self._fresh = None
        with store.transaction() as session:
            start = store.position_in(session, self.name)
            folded = take(start)
            if folded is None or folded.count == 0:
                return
            if not self._pending_checked and not store.bulk_loading:
                # a bulk load killed before its end left recounts to do: do them in this
                # batch, before it refreshes anything incrementally on top of them
                store.recount_pending(session)
            ensured = self._apply_folded(session, folded)
            if not self._version_recorded:
                store.set_version(session, self.name, self.version)
            if start == 0:
                # what made this location's HTML: only code that wrote it from the first
                # event may say so (newer code following an older location must not)
                store.set_version(session, RENDERER_STAMP_NAME, renderer_stamp())
            store.track(session, self.name, folded.last_position)
            self._applied_since_statistics += folded.count
            if self._applied_since_statistics >= self._statistics_every:
                # at doubling intervals: a rebuild's tables grow fast, then settle
                store.refresh_statistics(session)
                self._applied_since_statistics = 0
                self._statistics_every *= 2
        self._version_recorded = True
        self._pending_checked = not store.bulk_loading
        if store.bulk_loading:  # committed: the rows are there
            self._members |= ensured

    def _apply_folded(self, session: Session, folded: FoldedBatch) -> set[str]:
        """Write the batch's rows; returns the DIDs whose member rows it ensured."""
        session.execute_values(
            "INSERT INTO rejected (position, uri, did, collection, reason)"
            " VALUES {values} ON CONFLICT (position) DO NOTHING",
            ((r.position, r.uri, r.did, r.collection, r.reason) for r in folded.rejected),
        )
        merged: dict[str, MergedTable] = {}
        for collection, folds in folded.records.items():
            table = merge_table(session, TABLES[collection], folds, folded.fresh)
            merged[collection] = table
            if collection != c.POST:
                write_rows(session, table.spec, (table.after[u] for u in table.changed()),
                           table.before)
        self._write_theme_versions(session, folded)

        posts = merged.get(c.POST)
        memberships = merged.get(c.MEMBERSHIP)
        reactions = merged.get(c.REACTION)
        assignments = merged.get(c.ROLE_ASSIGNMENT)
        member_dids: set[str] = set()
        for owned in (posts, memberships, reactions):
            if owned is not None:
                member_dids |= by_did(owned.after)
        if assignments is not None:
            member_dids |= {row["subject_did"] for row in assignments.after.values()}
        account_dids, ensured = update_member_base(
            session, member_dids, folded.identities, folded.accounts, known=self._members
        )

        boards = merged.get(c.BOARD)
        categories = merged.get(c.CATEGORY)
        refresh_board_listing(
            session,
            boards.changed() if boards else (),
            categories.changed() if categories else (),
        )

        mod_posts: set[str] = set()
        ban_dids: set[str] = set()
        mod_actions = merged.get(c.MOD_ACTION)
        if mod_actions is not None:
            mod_posts, ban_dids = mod_subject_changes(mod_actions)
        bulk = self.store.bulk_loading
        counted_dids = project_posts(
            session,
            PostInputs(
                merged=posts,
                boards_changed=existence_changes(boards) if boards else set(),
                boards_added=set(boards.after) - set(boards.before) if boards else set(),
                account_dids=account_dids,
                rederive=mod_posts,
                recount_later=bulk,
                defer_lookups=bulk,
            ),
        )
        refresh_bans(session, ban_dids)

        roles = merged.get(c.ROLE)
        changed_roles = roles.changed() if roles else []
        if changed_roles:
            refresh_default_role(session)
        refresh_member_roles(
            session, role_subjects(session, assignments, changed_roles), self.forum_did
        )

        if bulk:
            # one grouped recount of each at the end of the load; the forum's at-uri is
            # bound only where a recount has a parameter (the members')
            for name in BULK_RECOUNTS:
                self.store.defer_recount(session, name, self.forum_uri)
            return ensured
        keys = reaction_keys(session, reactions, account_dids)
        if keys:
            refresh_reaction_counts(session, keys)

        dirty_members = counted_dids | account_dids
        if memberships is not None:
            dirty_members |= {memberships.after[u]["did"] for u in memberships.changed()}
        refresh_members(session, dirty_members, self.forum_uri)
        return ensured

    def _write_theme_versions(self, session: Session, folded: FoldedBatch) -> None:
        rows = []
        for (uri, cid), (rev, fields) in sorted(folded.theme_versions.items()):
            rows.append(
                (
                    uri,
                    cid,
                    rev,
                    fields["name"],
                    fields["color_scheme"],
                    fields["tokens"],
                    fields["css_overrides"],
                    fields["font_urls"],
                    fields["created_at"],
                )
            )
        session.execute_values(
            "INSERT INTO theme_versions (uri, cid, rev, name, color_scheme, tokens,"
            " css_overrides, font_urls, created_at) VALUES {values}"
            " ON CONFLICT (uri, cid) DO UPDATE SET rev = excluded.rev"
            " WHERE excluded.rev < theme_versions.rev",
            rows,
        )


AppviewProjection = ForumProjection | NotificationsProjection | SearchProjection


def all_projections(forum_did: str) -> list[AppviewProjection]:
    """Every projection of the appview, for ``forum_did``'s forum, in the order they are
    applied: ``notifications`` and ``search`` read the posts ``forum`` wrote
    (``projections.notifications``, ``projections.search``)."""
    return [ForumProjection(forum_did), NotificationsProjection(), SearchProjection()]
