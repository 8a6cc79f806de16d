"""How busy a store's connection pool is, for the metrics: the library's own pool
(SQLite) or psycopg's (PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import ConnectionPool


@dataclass(frozen=True)
class PoolUse:
    in_use: int  # connections handed out
    idle: int  # open connections waiting in the pool
    limit: int  # most connections it hands out at once (size + overflow)


def pool_use(recorder: object) -> PoolUse | None:
    """The pool of a recorder's datastore; None for a recorder without one."""
    pool: Any = getattr(getattr(recorder, "datastore", None), "pool", None)
    if isinstance(pool, ConnectionPool):
        return PoolUse(pool.num_in_use, pool.num_in_pool, pool.pool_size + pool.max_overflow)
    # psycopg's pool, told by its module: a SQLite deployment never imports psycopg
    if any(kind.__module__.startswith("psycopg_pool") for kind in type(pool).__mro__):
        stats = pool.get_stats()
        available = stats.get("pool_available", 0)
        return PoolUse(stats.get("pool_size", 0) - available, available,
                       stats.get("pool_max", 0))
    return None
