"""Rendered pages kept by ETag: hits, eviction by count and by bytes."""

from __future__ import annotations

from web.pages.cache import PageCache


def test_a_page_is_served_again_for_its_etag_only() -> None:
    cache = PageCache()
    assert cache.get("a") is None
    cache.put("a", b"<p>a</p>")
    assert cache.get("a") == b"<p>a</p>" and cache.get("b") is None
    assert (cache.hits, cache.misses) == (1, 2)


def test_the_least_recently_used_pages_leave_first() -> None:
    cache = PageCache(max_entries=2)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"  # a is now the most recent
    cache.put("c", b"3")
    assert cache.get("b") is None and cache.get("a") == b"1" and len(cache) == 2


def test_the_byte_budget_holds_and_a_huge_page_is_not_kept() -> None:
    cache = PageCache(max_entries=100, max_bytes=80)
    for key in "abcdefgh":
        cache.put(key, b"x" * 10)
    cache.put("i", b"y" * 10)
    assert len(cache) == 8 and cache.get("a") is None
    cache.put("huge", b"z" * 11)  # more than an eighth of the budget
    assert cache.get("huge") is None and len(cache) == 8
