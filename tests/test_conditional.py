"""ETag and Last-Modified validators: matching, and Last-Modified never reused across
two states of the same second."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp.test_utils import make_mocked_request

from web.pages.conditional import Freshness, is_not_modified, make_etag


@dataclass
class FakeClock:
    us: int

    def now_us(self) -> int:
        return self.us


def test_etag_depends_on_every_part() -> None:
    assert make_etag(["a", "b"]) == make_etag(["a", "b"])
    assert make_etag(["a", "b"]) != make_etag(["ab"])
    assert make_etag(["a"]).startswith('W/"')


def test_last_modified_only_once_its_second_has_passed() -> None:
    clock = FakeClock(1_000_000_500_000)  # x.5 seconds
    freshness = Freshness(clock, "code")
    first = freshness.validators(["state-1"])
    assert first.last_modified is None  # its whole second has not passed yet
    clock.us += 400_000
    assert freshness.validators(["state-1"]).last_modified is None
    clock.us += 200_000  # now past the second the state was first seen in
    stamped = freshness.validators(["state-1"])
    assert stamped.last_modified == datetime.fromtimestamp(1_000_001, UTC)
    assert stamped.etag == first.etag
    # A new state seen now gets a later stamp: If-Modified-Since of the old one misses it.
    clock.us += 1_000_000
    newer = freshness.validators(["state-2"])
    clock.us += 1_000_000
    newer = freshness.validators(["state-2"])
    assert newer.last_modified is not None and newer.last_modified > stamped.last_modified


def test_forgotten_states_get_a_fresh_stamp() -> None:
    clock = FakeClock(5_000_000)
    freshness = Freshness(clock, "code", capacity=2)
    freshness.validators(["a"])
    clock.us += 1_000_000
    before = freshness.validators(["a"]).last_modified
    freshness.validators(["b"])
    freshness.validators(["c"])  # evicts "a"
    clock.us += 2_500_000
    assert freshness.validators(["a"]).last_modified is None  # seen afresh: not stamped yet
    clock.us += 1_000_000
    again = freshness.validators(["a"]).last_modified
    assert before is not None and again is not None and again > before


def test_conditional_request_matching() -> None:
    clock = FakeClock(10_000_000)
    freshness = Freshness(clock, "code")
    freshness.validators(["s"])
    clock.us += 2_000_000
    found = freshness.validators(["s"])
    assert found.last_modified is not None
    opaque = found.etag.removeprefix("W/")

    def request(**headers: str) -> bool:
        return is_not_modified(make_mocked_request("GET", "/", headers=headers), found)

    assert request(**{"If-None-Match": found.etag})
    assert request(**{"If-None-Match": opaque})
    assert request(**{"If-None-Match": f'"other", {found.etag}'})
    assert request(**{"If-None-Match": "*"})
    assert not request(**{"If-None-Match": '"other"'})
    http_date = found.last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert request(**{"If-Modified-Since": http_date})
    earlier = datetime.fromtimestamp(found.last_modified.timestamp() - 1, UTC)
    assert not request(**{"If-Modified-Since": earlier.strftime("%a, %d %b %Y %H:%M:%S GMT")})
    # If-None-Match wins when both are sent.
    assert not request(**{"If-None-Match": '"other"', "If-Modified-Since": http_date})
    assert not request()
