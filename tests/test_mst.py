"""The Merkle Search Tree: a real repo's tree, the atproto interop vectors, and round trips."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appview.repos import mst
from appview.repos.car import read_car
from appview.repos.cbor import Cid, decode, encode
from tests.conftest import CAPTURE

VALUE = Cid.parse("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454")
PREFIX = "com.example.record/"

# Root CIDs published with the atproto MST interop tests (the same maps in Go, TS, Rust).
INTEROP = [
    ([], "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"),
    (["3jqfcqzm3fo2j"], "bafyreibj4lsc3aqnrvphp5xmrnfoorvru4wynt6lwidqbm2623a6tatzdu"),
    (["3jqfcqzm3fx2j"], "bafyreih7wfei65pxzhauoibu3ls7jgmkju4bspy4t2ha2qdjnzqvoy33ai"),
    (
        ["3jqfcqzm3fp2j", "3jqfcqzm3fr2j", "3jqfcqzm3fs2j", "3jqfcqzm3ft2j", "3jqfcqzm4fc2j"],
        "bafyreicmahysq4n6wfuxo522m6dpiy7z7qzym3dzs756t5n7nfdgccwq7m",
    ),
    (
        [
            "3jqfcqzm3fn2j",
            "3jqfcqzm3fo2j",
            "3jqfcqzm3fp2j",
            "3jqfcqzm3fs2j",
            "3jqfcqzm3ft2j",
            "3jqfcqzm3fu2j",
        ],
        "bafyreifnqrwbk6ffmyaz5qtujqrzf5qmxf7cbxvgzktl4e3gabuxbtatv4",
    ),
    (
        [
            "3jqfcqzm3fo2j",
            "3jqfcqzm3fp2j",
            "3jqfcqzm3fr2j",
            "3jqfcqzm3fs2j",
            "3jqfcqzm3ft2j",
            "3jqfcqzm3fx2j",
            "3jqfcqzm3fz2j",
            "3jqfcqzm4fc2j",
            "3jqfcqzm4fd2j",
            "3jqfcqzm4ff2j",
            "3jqfcqzm4fg2j",
            "3jqfcqzm4fh2j",
        ],
        "bafyreid2x5eqs4w4qxvc5jiwda4cien3gw2q6cshofxwnvv7iucrmfohpm",
    ),
    (
        ["3jqfcqzm3ft2j", "3jqfcqzm3fz2j"],
        "bafyreidfcktqnfmykz2ps3dbul35pepleq7kvv526g47xahuz3rqtptmky",
    ),
    (
        ["3jqfcqzm3ft2j", "3jqfcqzm3fz2j", "3jqfcqzm3fx2j"],
        "bafyreiavxaxdz7o7rbvr3zg2liox2yww46t7g6hkehx4i4h3lwudly7dhy",
    ),
    (
        ["3jqfcqzm3ft2j", "3jqfcqzm3fz2j", "3jqfcqzm3fx2j", "3jqfcqzm4fd2j"],
        "bafyreig4jv3vuajbsybhyvb7gggvpwh2zszwfyttjrj6qwvcsp24h6popu",
    ),
]


def expected_listing() -> list[tuple[str, str]]:
    lines = (CAPTURE / "car_expected_records.tsv").read_text(encoding="utf-8").splitlines()
    return [(key, cid) for key, cid in (line.split("\t") for line in lines)]


def expected_data_cid() -> str:
    for line in (CAPTURE / "car_expected_commit.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("Data CID:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("car_expected_commit.txt has no Data CID line")


def test_walking_the_captured_repo_lists_exactly_its_records() -> None:
    car = read_car((CAPTURE / "repo.car").read_bytes())
    commit = car.blocks[car.root]
    assert str(Cid.coerce(commit["data"])) == expected_data_cid()
    listing = [(key, str(cid)) for key, cid in mst.walk(commit["data"], car.blocks.get)]
    assert len(listing) == 23
    assert listing == expected_listing()


def test_rebuilding_the_captured_tree_gives_its_data_cid_and_node_blocks() -> None:
    pairs = [(key, Cid.parse(cid)) for key, cid in expected_listing()]
    tree = mst.build(reversed(pairs))
    assert str(tree.root) == expected_data_cid()
    assert next(iter(tree.blocks)) == tree.root
    car = read_car((CAPTURE / "repo.car").read_bytes())
    for cid, block in tree.blocks.items():
        assert Cid.for_dag_cbor(block) == cid
        assert cid in car.blocks


@pytest.mark.parametrize(("rkeys", "root"), INTEROP, ids=[r for _, r in INTEROP])
def test_interop_vectors(rkeys: list[str], root: str) -> None:
    assert str(mst.build([(PREFIX + rkey, VALUE) for rkey in rkeys]).root) == root


def test_key_heights_match_the_interop_comments() -> None:
    heights = {"3jqfcqzm3fo2j": 0, "3jqfcqzm3fs2j": 1, "3jqfcqzm3fx2j": 2, "3jqfcqzm4fd2j": 1}
    for rkey, height in heights.items():
        assert mst.key_height(PREFIX + rkey) == height


def test_nodes_use_prefix_compression() -> None:
    tree = mst.build([(PREFIX + "3jqfcqzm3fo2j", VALUE), (PREFIX + "3jqfcqzm3fp2j", VALUE)])
    node = decode(tree.blocks[tree.root])
    assert node["l"] is None
    assert [(e["p"], e["k"]) for e in node["e"]] == [
        (0, b"com.example.record/3jqfcqzm3fo2j"),
        (29, b"p2j"),
    ]


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(mst.MstError, match="duplicate"):
        mst.build([("a/b", VALUE), ("a/b", VALUE)])


def test_walk_reports_a_missing_block() -> None:
    tree = mst.build([(PREFIX + "3jqfcqzm3fx2j", VALUE), (PREFIX + "3jqfcqzm3ft2j", VALUE)])
    blocks = {tree.root: decode(tree.blocks[tree.root])}
    with pytest.raises(mst.MstError, match="missing"):
        list(mst.walk(tree.root, blocks.get))


@pytest.mark.parametrize(
    ("node", "reason"),
    [
        ({"l": None}, "no entry list"),
        ({"l": None, "e": ["x"]}, "not a map"),
        ({"l": None, "e": [{"p": 3, "k": b"a", "v": VALUE, "t": None}]}, "malformed key"),
        ({"l": None, "e": [{"p": 0, "k": b"\xff", "v": VALUE, "t": None}]}, "not UTF-8"),
        ({"l": None, "e": [{"p": 0, "k": b"a", "v": "nope", "t": None}]}, "v is not a CID"),
        (
            {
                "l": None,
                "e": [
                    {"p": 0, "k": b"b", "v": VALUE, "t": None},
                    {"p": 0, "k": b"a", "v": VALUE, "t": None},
                ],
            },
            "out of order",
        ),
    ],
)
def test_walk_refuses_malformed_nodes_with_a_reason(node: dict[str, Any], reason: str) -> None:
    root = Cid.for_dag_cbor(encode(node))
    with pytest.raises(mst.MstError, match=reason):
        list(mst.walk(root, {root: node}.get))


keys = st.lists(
    st.from_regex(r"[a-z]{1,5}\.[a-z]{1,5}/[a-z2-7]{1,13}", fullmatch=True),
    max_size=60,
    unique=True,
)


@settings(max_examples=60, deadline=None)
@given(keys, st.randoms(use_true_random=False))
def test_build_is_order_independent_and_walks_back_to_its_pairs(keys, rnd) -> None:
    pairs = [(key, Cid.for_dag_cbor(encode(key))) for key in keys]
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    tree = mst.build(pairs)
    assert mst.build(shuffled).root == tree.root
    decoded = {cid: decode(block) for cid, block in tree.blocks.items()}
    assert list(mst.walk(tree.root, decoded.get)) == sorted(pairs)
