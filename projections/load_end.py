"""The end of a bulk load: its steps, the order they need, and running them.

A bulk load (``ReadModelStore.bulk_load``) leaves work for its end: the indexes it
dropped, the posts it deferred (``apply_posts.rederive_deferred``), the recounts of
``schema.BULK_RECOUNTS`` and, on PostgreSQL, the planner's statistics. Each step names
the steps it must follow, and the list is in an order that honours them.

In one transaction the steps run in list order: an ordinary location's readers then see
all of the end or none of it. The location of a *private* load on PostgreSQL (a
rebuild's generation) has no readers until its switch and is discarded if its end
fails, so there the steps run over parallel sessions, a transaction each, every step as
soon as the steps it follows are done. The work is the server's, and one session keeps
one of its backends busy: two sessions use both cores (the end of a 1M-event load,
measured in ``docs/performance.md``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from projections import search_schema
from projections.apply_posts import rederive_deferred
from projections.db import Dialect, Session
from projections.schema import (
    BULK_RECOUNTS,
    RECOUNT_AFTER,
    RECOUNT_SOURCE,
    RECOUNTS_WITHOUT_POSTS,
    TABLES,
    add_key_statement,
    analyze_statement,
    index_name,
    index_table,
    recount_source_statement,
    recount_statements,
    recounted_table,
)

END_SESSIONS = 2
"""Sessions a private PostgreSQL load's end runs its steps over: one server backend
each, for the machine's two cores (more would only share them)."""


@dataclass(frozen=True)
class EndStep:
    """One step of the end of a bulk load: ``run`` in a session, after the steps named in
    ``after``."""

    name: str
    run: Callable[[Session], None]
    after: frozenset[str] = field(default_factory=frozenset)


def _statements(*statements: str, argument: str | None = None) -> Callable[[Session], None]:
    def run(session: Session) -> None:
        for statement in statements:
            session.execute(statement, (argument,) * statement.count("?"))

    return run


def pending_recounts(session: Session) -> dict[str, str | None]:
    """The recounts a bulk load left (``pending_recounts``), with their arguments."""
    return dict(session.query("SELECT name, argument FROM pending_recounts"))


def recount_steps(pending: Mapping[str, str | None], *, dialect: Dialect, shared: bool,
                  after: Iterable[str] = (), keys: Sequence[str] = ()) -> list[EndStep]:
    """Re-derive the deferred posts, then recount the ``pending`` tables in full and
    forget them. The narrow copy of the posts the recounts read (``RECOUNT_SOURCE``) is
    a temporary table, or with ``shared`` a table the parallel sessions all see. The
    primary key of each table ``keys`` names (``schema.RECOUNTED_KEYS``, dropped by the
    load) is added back once the table is recounted, before a recount reads it."""
    steps = [EndStep("rederive", rederive_deferred, frozenset(after))]
    recounts = {name: recount_statements(name, dialect) for name in BULK_RECOUNTS
                if name in pending}
    narrow = {name for name, statements in recounts.items()
              if any("recount_posts" in statement for statement in statements)}
    if narrow:
        make = [recount_source_statement(shared=shared)]
        if dialect == "postgresql":
            # a table just made has no statistics for the planner yet
            make.append("ANALYZE recount_posts")
        steps.append(EndStep("recount source", _statements(*make), frozenset({"rederive"})))
    # a key whose table is not recounted comes back at once, before any recount reads it
    rewritten = {recounted_table(name) for name in recounts}
    steps += [_key_step(table, set()) for table in keys if table not in rewritten]
    for name, statements in recounts.items():
        follows = set() if name in RECOUNTS_WITHOUT_POSTS else {"rederive"}
        follows |= {"recount source"} if name in narrow else set()
        for first in RECOUNT_AFTER.get(name, ()):
            if first in recounts:
                follows.add(f"recount {first}")
            if recounted_table(first) in keys:
                follows.add(f"key {recounted_table(first)}")
        steps.append(EndStep(f"recount {name}",
                             _statements(*statements, argument=pending[name]),
                             frozenset(follows)))
        if recounted_table(name) in keys:
            steps.append(_key_step(recounted_table(name), {f"recount {name}"}))
    if narrow:
        steps.append(EndStep("recount source dropped", _statements(RECOUNT_SOURCE[1]),
                             frozenset(f"recount {name}" for name in narrow)))
    if pending:
        steps.append(EndStep("recounts done", _statements("DELETE FROM pending_recounts"),
                             frozenset(f"recount {name}" for name in recounts)))
    return steps


def _key_step(table: str, after: set[str]) -> EndStep:
    return EndStep(f"key {table}", _statements(add_key_statement(table)), frozenset(after))


def end_steps(before: Sequence[str], after: Sequence[str],
              pending: Mapping[str, str | None], *, dialect: Dialect,
              shared: bool, keys: Sequence[str] = (),
              apart: Sequence[str] = ()) -> list[EndStep]:
    """Every step of the end of a bulk load: build the ``before`` indexes (those the
    re-derivation reads), re-derive and recount (:func:`recount_steps`, which adds back
    the primary keys of the tables ``keys`` names, ``schema.RECOUNTED_KEYS``), build the
    ``after`` indexes (the read side's: each once its table's recount has rewritten it,
    from the final rows in one sort), refresh PostgreSQL's statistics. The ``apart``
    indexes (of tables nothing in the end writes: the search documents') follow nothing
    and only the statistics follow them; they come first, the longest work, so that one
    session builds them while the others do the rest."""
    memory = ([f"SET LOCAL maintenance_work_mem = '{search_schema.INDEX_MEMORY}'"]
              if dialect == "postgresql" else [])
    steps = [EndStep(f"index {index_name(s)}", _statements(*memory, s)) for s in apart]
    ahead = [EndStep(f"index {index_name(s)}", _statements(s)) for s in before]
    steps += ahead
    steps += recount_steps(pending, dialect=dialect, shared=shared,
                           after=[step.name for step in ahead], keys=keys)
    writers: dict[str, set[str]] = {}
    for name in BULK_RECOUNTS:
        if name in pending:
            writers.setdefault(recounted_table(name), set()).add(f"recount {name}")
    for statement in after:
        follows = {"rederive", *writers.get(index_table(statement), ())}
        steps.append(EndStep(f"index {index_name(statement)}", _statements(statement),
                             frozenset(follows)))
    if dialect == "postgresql":
        everything = frozenset(step.name for step in steps)
        # the posts are most of the rows: sampled in a step of their own, so that a
        # second session samples the other tables meanwhile
        steps.append(EndStep("statistics posts", _statements(analyze_statement(["posts"])),
                             everything))
        steps.append(EndStep("statistics", _statements(analyze_statement(
            [table for table in TABLES if table != "posts"])), everything))
    return steps


def _check_order(steps: Sequence[EndStep]) -> None:
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            raise ValueError(f"two steps are named {step.name!r}")
        if not step.after <= seen:
            raise ValueError(f"step {step.name!r} follows {sorted(step.after - seen)},"
                             " which do not come before it")
        seen.add(step.name)


def run_in_order(session: Session, steps: Sequence[EndStep]) -> None:
    """Run ``steps`` one after the other in ``session`` (one transaction)."""
    _check_order(steps)
    for step in steps:
        step.run(session)


def run_in_parallel(open_session: Callable[[], AbstractContextManager[Session]],
                    steps: Sequence[EndStep], *, sessions: int = END_SESSIONS) -> None:
    """Run ``steps`` over ``sessions`` threads, each step in a transaction of its own
    (``open_session()``), as soon as the steps it follows are done; the earliest ready
    step in list order goes first. The first failure stops every thread after its
    current step and is raised; what committed stays (for a location that is discarded
    when its end fails)."""
    _check_order(steps)
    waiting = list(steps)
    done: set[str] = set()
    failures: list[BaseException] = []
    changed = threading.Condition()

    def next_step() -> EndStep | None:
        with changed:
            while waiting and not failures:
                for step in waiting:
                    if step.after <= done:
                        waiting.remove(step)
                        return step
                changed.wait()
            return None

    def lane() -> None:
        while (step := next_step()) is not None:
            try:
                with open_session() as session:
                    step.run(session)
            except BaseException as exc:  # raised in the calling thread below
                with changed:
                    failures.append(exc)
                    changed.notify_all()
                return
            with changed:
                done.add(step.name)
                changed.notify_all()

    threads = [threading.Thread(target=lane, name=f"bulk-load-end-{number}")
               for number in range(max(1, sessions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
