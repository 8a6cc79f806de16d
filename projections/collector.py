"""The cyclic garbage collector's pace during bulk work: a bulk load's batches, and the
preparing process that reads, decodes and prepares them."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BULK_GC_THRESHOLDS = (50_000, 20, 100)
"""The cyclic collector's thresholds during bulk work (Python's: 700, 10, 10)."""


@contextmanager
def collecting_rarely() -> Iterator[None]:
    """Run the cyclic collector rarely meanwhile. A batch allocates a few hundred
    thousand dicts and tuples (decoded events, prepared versions, rows) and frees them by
    reference counting (they form no cycles), but at the default thresholds the
    collector walked every live one several times per batch: 1.7 s of a 15 s load of
    300k events (measured; 0.01 s with these), and a fifth of the preparing process's
    time at 1M events (85.5 s → 66.2 s). The thresholds are the process's: restored
    after."""
    before = gc.get_threshold()
    gc.set_threshold(*BULK_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
