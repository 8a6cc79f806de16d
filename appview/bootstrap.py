"""The composition root: the one place that builds the real adapters.

Everything the running appview needs (event log, validator, read models, projections,
clock) is built here from one Settings object and handed out in a Services container.
Tests call ``bootstrap`` with their own settings (a temporary SQLite directory, a
PostgreSQL schema of their own, the devnet's URLs) or pass fakes for any port.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from appview.admin_tokens import AdminTokens
from appview.auth.member_auth import MemberAuth
from appview.avatars import Avatars, AvatarSource, PdsAvatarSource
from appview.backfill.manager import BackfillManager
from appview.clock import Clock, SystemClock
from appview.ingest.appender import LineAppender, LineError
from appview.projector import SharedProjector
from appview.reader_state import ReaderState
from appview.rebuilds import ProjectionStatus, RebuildManager
from appview.reports import Reports
from appview.settings import Settings
from appview.side_db import SideDatabase
from appview.writes.admin import ForumAdmin
from appview.writes.forum import ForumWrites
from appview.writes.forum_actions import ForumActions
from appview.writes.forum_agent import ForumAgent, ForumCredentials
from appview.writes.member_handle import MemberHandles
from appview.writes.ratelimit import WriteLimiter
from appview.writes.writer import RecordWriter
from events.lexicon import LexiconValidator
from events.log import EventLog
from events.store import open_event_log
from projections.forum import AppviewProjection, ForumProjection, all_projections
from projections.generations import GenerationalReadModels, open_generations
from projections.log_match import claim_read_models
from projections.prepare_process import LogOpener
from projections.queries import Queries
from projections.readmodel import ReadModels, ReadModelStore, open_read_models
from projections.runner import Projection, project_to_head
from projections.search import SearchProjection

logger = logging.getLogger(__name__)


class ReadModelsNotOurs(RuntimeError):
    """The live read models were built from another event log than the one opened."""


@dataclass
class Services:
    settings: Settings
    clock: Clock
    event_log: EventLog
    validator: LexiconValidator
    read_models: ReadModels
    queries: Queries
    admin_tokens: AdminTokens
    # members' sign-in and sessions; the web app awaits member_auth.aclose() at cleanup
    member_auth: MemberAuth
    # the one way the live read models are projected in this process (live loop, writes)
    projector: SharedProjector
    # every write to a repository on someone's behalf (docs/writing.md)
    writer: RecordWriter
    # what members may write, decided on the read models, then through the writer
    forum_writes: ForumWrites
    # the Forum account's session: writes the forum's own records (docs/operations.md)
    forum_agent: ForumAgent
    # the forum's decisions (moderation, roles) for a member whose role grants them
    forum_actions: ForumActions
    # what administrators change (structure, roles, themes), in the Forum account's repo
    forum_admin: ForumAdmin
    # members' reports of posts (the appview's own table beside the log)
    reports: Reports
    # what each member has read (notifications, topics, boards): beside the log
    reader_state: ReaderState
    # members' avatars from their PDS: a cache beside the log, fetched by a worker the
    # web app runs (appview/avatars.py)
    avatars: Avatars
    # a member's handle, verified and logged when they sign in (local identity event)
    member_handles: MemberHandles
    # the side tables' connections, kept (sessions, reader state, avatars, tokens,
    # reports); closed with the services
    side_db: SideDatabase
    projections: list[Projection] = field(default_factory=list)
    # None when the caller passed read models of its own (no generations to switch)
    rebuilds: RebuildManager | None = None
    backfills: BackfillManager | None = None
    # opens the event log anew in another process (None: the caller passed its own log)
    open_log: LogOpener | None = None
    # why the live read models are not this log's (None: they are); see log_match
    read_models_problem: str | None = None

    def ensure_own_read_models(self) -> None:
        """Before anything projects into or serves the read models: raise
        ``ReadModelsNotOurs`` when they were built from another log, or, with
        FOREIGN_READ_MODELS=rebuild, rebuild them from this log first (in the
        foreground: serving another log's forum meanwhile would be wrong)."""
        if self.read_models_problem is None:
            return
        remedy = ("run `atbb rebuild` to build them from this log, or start with"
                  " FOREIGN_READ_MODELS=rebuild")
        if self.settings.foreign_read_models != "rebuild" or self.rebuilds is None:
            raise ReadModelsNotOurs(f"{self.read_models_problem}; {remedy}")
        logger.warning("%s; rebuilding them from this log (FOREIGN_READ_MODELS=rebuild)",
                    self.read_models_problem)
        run = self.rebuilds.run(reason="read models from another log")
        if run.status != "completed":
            raise ReadModelsNotOurs(f"{self.read_models_problem}; the rebuild failed:"
                                    f" {run.error}")
        self.read_models_problem = claim_read_models(
            self.event_log, self.read_models, [p.name for p in self.projections])

    def projection_status(self) -> list[ProjectionStatus]:
        if self.rebuilds is not None:
            return self.rebuilds.status()
        head = self.event_log.head()
        built = self.read_models.versions()
        return [ProjectionStatus(name=p.name, version=p.version,
                                 built_version=built.get(p.name), generation=1,
                                 position=p.position(), head=head,
                                 lag=max(0, head - p.position()))
                for p in self.projections]

    def appender(
        self,
        *,
        cursor_source: str | None = None,
        batch_size: int | None = None,
        on_line: Callable[[LineError], None] | None = None,
    ) -> LineAppender:
        return LineAppender(
            self.event_log,
            self.validator,
            forum_did=self.settings.forum_did,
            clock=self.clock,
            batch_size=batch_size,
            cursor_source=cursor_source,
            on_line=on_line,
        )

    def close(self) -> None:
        # background runs first: closing a store under a running thread crashes SQLite
        if self.backfills is not None:
            self.backfills.shutdown()
        if self.rebuilds is not None:
            self.rebuilds.shutdown()
        self.read_models.close()
        self.event_log.close()
        self.side_db.close()


def generations_base(settings: Settings) -> str:
    """Where the read-model generations live: a directory of SQLite files under DATA_DIR,
    or the prefix of PostgreSQL schemas named after the event log's schema."""
    if settings.is_postgres:
        return "atbb" if settings.database_schema == "public" else settings.database_schema
    return str(Path(settings.read_model_url.removeprefix("sqlite:///")))


def open_live_read_models(settings: Settings) -> GenerationalReadModels:
    registry = open_generations(settings.read_model_url, base=generations_base(settings))
    return GenerationalReadModels(settings.read_model_url, registry)


def log_opener(settings: Settings) -> LogOpener:
    """Opens the event log of ``settings`` anew: picklable, for a process of its own.
    The log exists (this process made it): the opener makes no tables, for the
    preparing processes open it at once, and concurrent DDL on PostgreSQL's catalog
    fails ("tuple concurrently updated")."""
    return partial(open_event_log, settings.event_log_url, schema=_log_schema(settings),
                   create=False)


def _log_schema(settings: Settings) -> str | None:
    return settings.database_schema if settings.is_postgres else None


def open_replay_target(settings: Settings, location: str, *,
                       carry_from: str | None = None,
                       ) -> tuple[EventLog, ReadModelStore, list[AppviewProjection]]:
    """What a rebuild's replay worker (``appview.rebuild_worker``, a process of its own)
    needs: the event log, the store of the generation being built at ``location``, and
    fresh projections attached to it. From the generation at ``carry_from`` (the one
    being replaced) the forum projection takes posts' HTML where it can
    (``projections.carried_html``), and on PostgreSQL the search projection its
    documents (``projections.search``)."""
    log = log_opener(settings)()
    try:
        store = open_read_models(settings.read_model_url, location=location)
    except BaseException:
        log.close()
        raise
    projections = all_projections(settings.forum_did)
    for projection in projections:
        projection.attach(store)
        if carry_from is None:
            continue
        if isinstance(projection, ForumProjection):
            projection.carry_html_from(partial(
                open_read_models, settings.read_model_url, location=carry_from,
                create=False))
        elif isinstance(projection, SearchProjection):  # PostgreSQL's alone (it says)
            projection.carry_documents_from(carry_from)
    return log, store, projections


def bootstrap(
    settings: Settings,
    *,
    clock: Clock | None = None,
    event_log: EventLog | None = None,
    read_models: ReadModels | None = None,
    validator: LexiconValidator | None = None,
    avatar_source: AvatarSource | None = None,
) -> Services:
    """Build the services from ``settings``; any port passed in is used as given."""
    if not settings.is_postgres:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    # None when the caller passed its own log: there is nothing to open anew elsewhere
    open_log: LogOpener | None = None
    if event_log is None:
        open_log = log_opener(settings)
        event_log = open_event_log(settings.event_log_url, schema=_log_schema(settings))
    log = event_log
    models: ReadModels = read_models or open_live_read_models(settings)
    forum_projections = all_projections(settings.forum_did)
    for projection in forum_projections:
        projection.attach(models)
    projections: list[Projection] = list(forum_projections)
    clock = clock or SystemClock()
    validator = validator or LexiconValidator.load()
    queries = Queries(models, settings.forum_did)
    projector = SharedProjector(log, projections, batch_size=settings.projection_batch_size)
    writer = RecordWriter(event_log=log, validator=validator, forum_did=settings.forum_did,
                          clock=clock, projector=projector,
                          limiter=WriteLimiter(settings.writes_per_minute, clock))
    side_db = SideDatabase(settings)
    member_auth = MemberAuth(settings, clock, side=side_db)
    forum_agent = ForumAgent(settings, clock,
                             ForumCredentials(settings, lambda: member_auth.store.box))
    rebuilds = None
    if isinstance(models, GenerationalReadModels):
        def fresh_projections() -> list[AppviewProjection]:
            return all_projections(settings.forum_did)

        rebuilds = RebuildManager(settings, log, models, fresh_projections, clock)
    services = Services(
        settings=settings,
        clock=clock,
        event_log=log,
        validator=validator,
        read_models=models,
        queries=queries,
        admin_tokens=AdminTokens(settings, clock, side=side_db),
        member_auth=member_auth,
        projector=projector,
        writer=writer,
        forum_writes=ForumWrites(writer, queries, log, clock),
        forum_agent=forum_agent,
        forum_actions=ForumActions(writer, queries, forum_agent, clock),
        forum_admin=ForumAdmin(writer, queries, log, clock, forum_agent),
        reports=Reports(settings, clock, side=side_db),
        reader_state=ReaderState(settings, side=side_db),
        avatars=Avatars(settings, clock, avatar_source or PdsAvatarSource(settings),
                        side=side_db),
        member_handles=MemberHandles(writer, log, clock, member_auth.identity),
        side_db=side_db,
        projections=projections,
        rebuilds=rebuilds,
        open_log=open_log,
    )

    def project_all() -> None:
        project_to_head(services.event_log, services.projections,
                        batch_size=settings.projection_batch_size)

    services.read_models_problem = claim_read_models(
        log, models, [p.name for p in forum_projections])
    services.backfills = BackfillManager(
        settings, services.event_log, services.validator, clock,
        make_appender=lambda: services.appender(
            cursor_source=settings.ingest_cursor_source),
        rebuilds=rebuilds, rebuild_after=project_all)
    return services
