"""The collector's pace during bulk work."""

from __future__ import annotations

import gc

import pytest

from projections.collector import BULK_GC_THRESHOLDS, collecting_rarely


def test_collecting_rarely_sets_the_bulk_thresholds_and_restores_them_even_on_failure() -> None:
    before = gc.get_threshold()
    assert before != BULK_GC_THRESHOLDS
    with collecting_rarely():
        assert gc.get_threshold() == BULK_GC_THRESHOLDS
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), collecting_rarely():
        raise RuntimeError("a failed batch")
    assert gc.get_threshold() == before
