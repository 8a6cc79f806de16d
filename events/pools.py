"""How busy a store's connection pool is (the library's ``ConnectionPool``), for the
metrics."""

from __future__ import annotations

from dataclasses import dataclass

from eventsourcing.persistence import ConnectionPool


@dataclass(frozen=True)
class PoolUse:
    in_use: int  # connections handed out
    idle: int  # open connections waiting in the pool
    limit: int  # most connections it hands out at once (size + overflow)


def pool_use(recorder: object) -> PoolUse | None:
    """The pool of a recorder's datastore; None for a recorder without one."""
    pool = getattr(getattr(recorder, "datastore", None), "pool", None)
    if not isinstance(pool, ConnectionPool):
        return None
    return PoolUse(pool.num_in_use, pool.num_in_pool, pool.pool_size + pool.max_overflow)
