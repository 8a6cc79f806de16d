"""The identifier types: what each accepts and refuses, with real values from the capture."""

from __future__ import annotations

import hashlib
import json
import re

import libipld
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.ids import CID, DID, NSID, TID, AtUri, Handle, RecordKey, StrongRef
from events.model import int_to_tid, tid_to_int
from tests.conftest import CAPTURE

PLC = "did:plc:wq4aajammjtxdomz3e23667t"
RECORD_CID = "bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i"
ANYTHING = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(),
    st.lists(st.text(), max_size=3), st.dictionaries(st.text(), st.text(), max_size=3),
)


def capture_messages() -> list[dict[str, object]]:
    lines = (CAPTURE / "expected_v1.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def capture_strings(pattern: str) -> set[str]:
    text = (CAPTURE / "expected_v1.jsonl").read_text(encoding="utf-8")
    return set(re.findall(pattern, text))


# --- DID ---------------------------------------------------------------------------------


def test_every_did_of_the_capture_is_valid() -> None:
    dids = {str(message["did"]) for message in capture_messages()}
    manifest = json.loads((CAPTURE / "manifest.json").read_text(encoding="utf-8"))
    dids |= set(manifest["commit_dids"])
    assert len(dids) > 100
    assert all(DID.is_valid(did) for did in dids)
    assert {DID.parse(did).method for did in dids} == {"plc"}


@pytest.mark.parametrize(
    "did",
    [
        PLC,
        "did:web:example.com",
        "did:web:pds1",
        "did:web:sub.example-host.co.uk",
        "did:web:localhost%3A2583",
        "did:web:localhost%3a8080",
    ],
)
def test_valid_dids(did: str) -> None:
    assert DID.is_valid(did)
    assert DID.parse(did) == did
    assert isinstance(DID.parse(did), str)


@pytest.mark.parametrize(
    "did",
    [
        "",
        "did:plc:",
        "did:plc:wq4aajammjtxdomz3e23667",  # 23 characters
        "did:plc:wq4aajammjtxdomz3e23667tt",  # 25
        "did:plc:wq4aajammjtxdomz3e23661t",  # '1' is not base32
        "did:plc:WQ4AAJAMMJTXDOMZ3E23667T",
        "did:PLC:wq4aajammjtxdomz3e23667t",
        "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "did:web:example.com/path",
        "did:web:example.com:8080",
        "did:web:example.com%3A443",  # a port only on localhost
        "did:web:-bad.example.com",
        "did:web:bad-.example.com",
        "did:web:" + "a" * 64 + ".com",
        "did:web:",
        PLC + "\n",
        " " + PLC,
        "at://" + PLC,
    ],
)
def test_invalid_dids(did: str) -> None:
    assert not DID.is_valid(did)
    with pytest.raises(ValueError, match="not a did"):
        DID.parse(did)


def test_did_errors_say_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"24 characters of a-z2-7 .*'did:plc:abc'"):
        DID.parse("did:plc:abc")
    with pytest.raises(ValueError, match="a hostname"):
        DID.parse("did:web:a/b")


# --- Handle ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handle", ["alice.test", "alice.bsky.social", "a.co", "xn--ls8h.example", "a-b.c-d.org"]
)
def test_valid_handles(handle: str) -> None:
    assert Handle.is_valid(handle)
    assert Handle.parse(handle) == handle


def test_handle_parse_lowercases() -> None:
    assert Handle.parse("Alice.Bsky.Social") == "alice.bsky.social"


@pytest.mark.parametrize(
    "handle",
    [
        "alice",
        "-alice.test",
        "alice-.test",
        "alice.1test",
        "alice..test",
        "alice.test.",
        ".alice.test",
        "al ice.test",
        "alicé.test",
        "a" * 64 + ".test",
        ("a" * 63 + ".") * 4 + "com",  # 259 characters
        "",
    ],
)
def test_invalid_handles(handle: str) -> None:
    assert not Handle.is_valid(handle)
    with pytest.raises(ValueError, match="not a handle"):
        Handle.parse(handle)


# --- NSID --------------------------------------------------------------------------------


def test_every_collection_of_the_capture_is_an_nsid() -> None:
    collections = {
        str(message["commit"]["collection"])  # type: ignore[index]
        for message in capture_messages()
        if message["kind"] == "commit"
    }
    assert "app.bsky.feed.like" in collections
    assert all(NSID.is_valid(collection) for collection in collections)


@pytest.mark.parametrize(
    "nsid",
    [
        "space.atbb.post",
        "space.atbb.forum.roleAssignment",
        "com.atproto.repo.strongRef",
        "fm.teal.alpha.actor.status",
        "com.ex-ample.thing2",
        "a1.b.c",
    ],
)
def test_valid_nsids(nsid: str) -> None:
    assert NSID.parse(nsid) == nsid


def test_nsid_parts() -> None:
    nsid = NSID.parse("space.atbb.forum.board")
    assert (nsid.authority, nsid.name) == ("space.atbb.forum", "board")


@pytest.mark.parametrize(
    "nsid",
    [
        "space.atbb",
        "space..post",
        "1space.atbb.post",
        "space.atbb.post-x",
        "space.atbb.9post",
        "space.-atbb.post",
        "space.atbb-.post",
        ".space.atbb.post",
        "space.atbb.post.",
        "space.atbb.po st",
        "space." + "a" * 64 + ".post",
        "space.atbb.post#main",
        "",
    ],
)
def test_invalid_nsids(nsid: str) -> None:
    assert not NSID.is_valid(nsid)
    with pytest.raises(ValueError, match="not an NSID"):
        NSID.parse(nsid)


# --- TID ---------------------------------------------------------------------------------


def test_every_rev_of_the_capture_is_a_tid() -> None:
    revs = [
        message["commit"]["rev"]  # type: ignore[index]
        for message in capture_messages()
        if message["kind"] == "commit"
    ]
    assert len(revs) == 150
    assert all(TID.is_valid(rev) for rev in revs)


@pytest.mark.parametrize(
    "tid",
    ["3mptbypluud2", "3mptbypluud2aa", "kmptbypluud2a", "3MPTBYPLUUD2A", "3mptbypluud2!", ""],
)
def test_invalid_tids(tid: str) -> None:
    assert not TID.is_valid(tid)
    with pytest.raises(ValueError, match="not a TID"):
        TID.parse(tid)


def test_tid_clock_and_time() -> None:
    tid = TID.from_time(1_783_175_888_085_434, clock_id=7)
    assert tid.unix_us == 1_783_175_888_085_434
    assert tid.to_int() & 1023 == 7
    assert TID.parse(str(tid)) == tid
    with pytest.raises(ValueError, match="clock id"):
        TID.from_time(1, clock_id=1024)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1))
def test_tids_sort_like_their_integers(a: int, b: int) -> None:
    ta, tb = TID.from_int(a), TID.from_int(b)
    assert TID.is_valid(ta) and TID.is_valid(tb)
    assert ta.to_int() == a == tid_to_int(ta)
    assert (ta < tb) == (a < b)
    assert ta == int_to_tid(a)


# --- RecordKey ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rkey", ["self", "3mptbypluud2a", PLC, "a~b:c-d_e.f", "...", "a" * 512, "-", "~"]
)
def test_valid_record_keys(rkey: str) -> None:
    assert RecordKey.parse(rkey) == rkey


@pytest.mark.parametrize(
    "rkey", ["", ".", "..", "a/b", "a b", "a" * 513, "é", "a#b", "a?b", "self\n"]
)
def test_invalid_record_keys(rkey: str) -> None:
    assert not RecordKey.is_valid(rkey)
    with pytest.raises(ValueError, match="not a record key"):
        RecordKey.parse(rkey)


# --- CID ---------------------------------------------------------------------------------


def test_every_cid_of_the_capture_is_valid() -> None:
    cids = capture_strings(r'"(baf[a-z2-7]+)"')
    assert any(cid.startswith("bafkrei") for cid in cids)  # raw blobs too
    assert len(cids) > 100
    assert all(CID.is_valid(cid) for cid in cids)


@pytest.mark.parametrize(
    "cid",
    [
        "",
        "b",
        "bafy",
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",  # CIDv0
        "zdj7WhuEjrB52m1BisYCtmjH1hSKa7yZ3jEZ9JcXaFRD51wVz",  # CIDv1 in base58
        RECORD_CID.upper(),
        RECORD_CID[:-1],
        RECORD_CID + "a",
        "bafyrei" + "8" * 52,
        "b" + "a" * 300,
        "not a cid",
    ],
)
def test_invalid_cids(cid: str) -> None:
    assert not CID.is_valid(cid)
    with pytest.raises(ValueError, match="CID"):
        CID.parse(cid)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.sampled_from([b"\x01\x71", b"\x01\x55"]))
def test_cids_a_repository_writes_are_valid(digest: bytes, prefix: bytes) -> None:
    cid = str(libipld.encode_cid(prefix + b"\x12\x20" + digest))
    assert CID.parse(cid) == cid


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"\Abaf[yk]rei[a-h][a-z2-7]{50}[aeimquy4]\Z"))
def test_the_fast_cid_shape_only_admits_what_libipld_decodes(cid: str) -> None:
    decoded = libipld.decode_cid(cid)
    assert decoded["version"] == 1
    assert CID.is_valid(cid)


def test_a_cid_libipld_decodes_outside_the_fast_shape_is_accepted() -> None:
    # sha2-512 multihash: a valid CIDv1 of another shape goes through libipld.
    digest = hashlib.sha512(b"x").digest()
    cid = str(libipld.encode_cid(b"\x01\x71\x13\x40" + digest))
    assert CID.is_valid(cid)


# --- AtUri -------------------------------------------------------------------------------


def test_every_subject_uri_of_the_capture_is_valid() -> None:
    uris = capture_strings(r'"(at://[^"]+)"')
    assert len(uris) > 50
    for uri in uris:
        parsed = AtUri.parse(uri)
        assert str(parsed) == uri


def test_at_uri_parts() -> None:
    uri = AtUri.parse(f"at://{PLC}/space.atbb.post/3mptbypluud2a")
    assert (uri.authority, uri.collection, uri.rkey) == (PLC, "space.atbb.post", "3mptbypluud2a")
    assert uri.is_record and uri.did == PLC
    assert AtUri.parse(f"at://{PLC}") == AtUri(PLC)
    assert AtUri.parse(f"at://{PLC}/space.atbb.post") == AtUri(PLC, "space.atbb.post")
    handle_uri = AtUri.parse("at://alice.test/space.atbb.post/self")
    assert handle_uri.did is None and handle_uri.authority == "alice.test"
    assert str(AtUri.of(PLC, "space.atbb.forum.forum", "self")) == (
        f"at://{PLC}/space.atbb.forum.forum/self"
    )


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "at://",
        "at:///space.atbb.post/x",
        f"at://{PLC}/",
        f"at://{PLC}/space.atbb.post/",
        f"at://{PLC}/space.atbb.post/a/b",
        f"at://{PLC}/notansid/3mptbypluud2a",
        f"at://{PLC}/space.atbb.post/..",
        f"at://{PLC}/space.atbb.post/a b",
        f"at://{PLC}/space.atbb.post/x?query=1",
        f"at://{PLC}/space.atbb.post/x#frag",
        f"https://{PLC}/space.atbb.post/x",
        f"AT://{PLC}/space.atbb.post/x",
        "at://did:plc:short/space.atbb.post/x",
        "at://-alice.test/space.atbb.post/x",
        "at://" + PLC + "/space." + "a" * 64 + ".post/x",
        f"at://{PLC}/space.atbb.post/x\n",
    ],
)
def test_invalid_at_uris(uri: str) -> None:
    assert not AtUri.is_valid(uri)
    with pytest.raises(ValueError, match="not an at-uri"):
        AtUri.parse(uri)


def test_at_uri_of_checks_its_parts() -> None:
    with pytest.raises(ValueError, match="record key"):
        AtUri.of(PLC, "space.atbb.post", "..")


# --- StrongRef ---------------------------------------------------------------------------


def test_strong_ref_round_trip() -> None:
    value = {"uri": f"at://{PLC}/space.atbb.post/3mptbypluud2a", "cid": RECORD_CID}
    ref = StrongRef.parse(value)
    assert ref.uri.rkey == "3mptbypluud2a" and ref.cid == RECORD_CID
    assert ref.to_json() == value
    assert StrongRef.parse({**value, "$type": "com.atproto.repo.strongRef"}) == ref


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"uri": f"at://{PLC}/space.atbb.post/x"}, "cid missing"),
        ({"cid": RECORD_CID}, "uri missing"),
        ({"uri": f"at://{PLC}", "cid": RECORD_CID}, "does not name a record"),
        ({"uri": f"at://{PLC}/space.atbb.post/x", "cid": "nope"}, "CID"),
        ({"uri": 5, "cid": RECORD_CID}, "not a string"),
        ({"uri": f"at://{PLC}/space.atbb.post/x", "cid": ["x"]}, "not a string"),
        ("at://x", "is an object"),
        (None, "is an object"),
    ],
)
def test_invalid_strong_refs(value: object, message: str) -> None:
    assert not StrongRef.is_valid(value)
    with pytest.raises(ValueError, match=message):
        StrongRef.parse(value)


# --- nothing raises out of is_valid ------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(ANYTHING)
def test_is_valid_never_raises(value: object) -> None:
    for kind in (DID, Handle, NSID, TID, RecordKey, CID, AtUri, StrongRef):
        assert kind.is_valid(value) in (True, False)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="at:/did:plcweb.-_~0123456789abcdefghijklmnopqrstuvwxyz%A", max_size=60))
def test_parse_raises_only_value_error(text: str) -> None:
    for kind in (DID, Handle, NSID, TID, RecordKey, CID, AtUri):
        try:
            parsed = kind.parse(text)
        except ValueError:
            assert not kind.is_valid(text)
        else:
            assert kind.is_valid(text) and str(parsed).lower() == text.lower()
