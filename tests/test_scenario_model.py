"""The scenario vocabulary's fast helpers agree with the reference implementations."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from appview.devnet.scenario import build_scenario
from appview.devnet.scenario_model import SIZES, ScenarioSize, iso, record_cid, slug, tid
from appview.repos.cbor import record_cid as reference_cid
from events.model import int_to_tid


@given(st.integers(min_value=0, max_value=2**63 - 1))
@settings(max_examples=300, deadline=None)
def test_tid_matches_the_reference_encoder(value: int) -> None:
    assert tid(value) == int_to_tid(value)


def test_iso_and_slug() -> None:
    assert iso(1_783_175_888_384_849) == "2026-07-04T14:38:08.384Z"
    assert slug("Garden & Kitchen") == "garden-kitchen"
    assert slug("The Fixers' Guild") == "the-fixers-guild"


def test_cids_match_the_devnet_encoder() -> None:
    story = build_scenario(11, "small", real_dids=False).operation_list()
    records = [(op.cid, op.record) for op in story if op.record is not None]
    assert len(records) > 400
    for cid, record in records:
        assert cid == record_cid(record) == reference_cid(record)


def test_sizes_name_small_and_large_and_check_their_bounds() -> None:
    assert SIZES["small"].posts == 240 and SIZES["large"].posts == 5_000
    SIZES["large"].check()
    assert ScenarioSize(topics=3, replies_per_topic=0.5).posts == 5
