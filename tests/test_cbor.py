"""The devnet's DAG-CBOR and CID code against real network records."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import libipld
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appview.repos.cbor import (
    CborError,
    Cid,
    decode,
    decode_json,
    decode_links_raw,
    encode,
    encode_json,
    ipld_to_json,
    json_to_ipld,
    record_cid,
)
from tests.conftest import CAPTURE

LINK = "bafyreiftot7eltsc3f6g4qktykmbv6jcmdmhcx5osscan6jpdxkpqcmcza"


def capture_events() -> list[dict[str, Any]]:
    lines = (CAPTURE / "expected_v1.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_every_captured_record_cid_recomputes_exactly() -> None:
    manifest = json.loads((CAPTURE / "manifest.json").read_text(encoding="utf-8"))
    events = capture_events()
    assert len(events) == manifest["v1_events"] == 152
    checked = deletes = 0
    for event in events:
        commit = event.get("commit")
        if commit is None:
            continue
        if commit["operation"] == "delete":
            assert "record" not in commit and "cid" not in commit
            deletes += 1
            continue
        assert record_cid(commit["record"]) == commit["cid"], commit["rkey"]
        checked += 1
    assert checked == manifest["creates"] + manifest["updates"] == 146
    assert deletes == manifest["deletes"]


def test_captured_records_round_trip_and_match_libipld() -> None:
    for event in capture_events():
        record = event.get("commit", {}).get("record")
        if record is None:
            continue
        block = encode_json(record)
        assert decode_json(block) == record
        # libipld agrees wherever its bytes-as-CID guess cannot bite (no $bytes here).
        assert block == libipld.encode_dag_cbor(libipld.decode_dag_cbor(block))


def test_link_is_tag_42_and_bytes_stay_bytes_even_when_they_look_like_a_cid() -> None:
    cid_bytes = Cid.parse(LINK).raw
    assert encode_json({"$link": LINK}) == b"\xd8\x2a\x58\x25\x00" + cid_bytes
    looks_like_cid = {"$bytes": base64.b64encode(cid_bytes).decode()}
    block = encode_json(looks_like_cid)
    assert block[0] == 0x58  # a byte string, not tag 42
    assert decode(block) == cid_bytes
    assert decode_json(block) == {"$bytes": looks_like_cid["$bytes"].rstrip("=")}


def test_maps_are_sorted_length_first_and_ints_are_minimal() -> None:
    assert encode({"bb": 1, "a": 2, "c": 3}) == bytes.fromhex("a361610261630362626201")
    assert encode(23) == b"\x17"
    assert encode(24) == b"\x18\x18"
    assert encode(-1) == b"\x20"
    assert encode(2**32) == b"\x1b\x00\x00\x00\x01\x00\x00\x00\x00"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"n": 1.5}, "floats"),
        ({"n": 2**64}, "64-bit"),
        ({"$link": "not-a-cid"}, "not a CID"),
        ({"$link": 7}, "$link must be a CID string"),
        ({"$bytes": "!!"}, "not base64"),
        ({1: "x"}, "keys must be strings"),
        ({"s": {1, 2}}, "set is not a JSON value"),
    ],
)
def test_values_outside_the_data_model_are_refused_with_a_reason(value, reason) -> None:
    with pytest.raises(CborError, match=reason.replace("$", r"\$")):
        json_to_ipld(value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xa1\x61a\x01\x00", "trailing"),
        (b"\x9f\xff", "indefinite"),
        (b"\xc1\x00", "tag 1"),
        (b"\x62a", "truncated"),
        (b"\xa1\x01\x01", "keys must be text"),
        (b"\x61\xff", "UTF-8"),
        (b"\xf7", "simple value"),
        (b"\xd8\x2a\x41\x01", "CID link"),
    ],
)
def test_malformed_dag_cbor_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(CborError, match=reason):
        decode(data)


def test_cid_string_and_binary_forms_agree() -> None:
    cid = Cid.parse(LINK)
    assert str(cid) == LINK
    assert Cid.coerce(cid.raw) == cid == Cid.coerce(LINK)
    expected = libipld.encode_cid(cid.raw[:4] + hashlib.sha256(b"\xa0").digest())
    assert str(Cid.for_dag_cbor(b"\xa0")) == expected
    with pytest.raises(CborError):
        Cid.coerce(b"\x00\x01")


def _bytes_json(data: bytes) -> dict[str, str]:
    return {"$bytes": base64.b64encode(data).decode().rstrip("=")}


_keys = st.text(max_size=8).filter(lambda key: key not in ("$link", "$bytes"))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.text()
    | st.builds(_bytes_json, st.binary())
    | st.just({"$link": LINK}),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_json_round_trips_through_dag_cbor(value) -> None:
    assert decode_json(encode_json(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_decoding_arbitrary_bytes_only_ever_raises_cbor_error(data: bytes) -> None:
    try:
        decode(data)
    except CborError as exc:
        assert str(exc), "every refusal carries a reason"


def _reference_json(data: bytes) -> Any:
    try:
        return ipld_to_json(decode(data))
    except CborError:
        return CborError


def _fast_json(data: bytes) -> Any:
    try:
        return decode_json(data)
    except CborError:
        return CborError


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64), json_values.map(encode_json)))
def test_decode_json_fast_path_agrees_with_the_reference_decoder(data: bytes) -> None:
    # libipld reads tag-free blocks; whatever it accepts must read as ours does, and
    # whatever ours refuses must still be refused (repr: a NaN is not equal to itself)
    assert repr(_fast_json(data)) == repr(_reference_json(data))


def test_decode_json_accepts_what_only_the_reference_decoder_accepts() -> None:
    unsorted = bytes([0xA2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02])  # {"b": 1, "a": 2}
    with pytest.raises(ValueError):
        libipld.decode_dag_cbor(unsorted)
    assert decode_json(unsorted) == {"b": 1, "a": 2}


def test_decode_links_raw_gives_links_as_raw_cid_bytes() -> None:
    node = {"l": {"$link": LINK}, "e": []}
    assert decode_links_raw(encode_json(node)) == {"l": Cid.parse(LINK).raw, "e": []}
    unsorted = bytes([0xA2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02])
    assert decode_links_raw(unsorted) == {"b": 1, "a": 2}
