"""The editable MST: every edit gives the tree ``mst.build`` makes of the new pairs, on a
whole tree and on the partial trees real firehose commits carry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appview.repos import mst
from appview.repos.cbor import Cid, encode
from appview.repos.mst_edit import Tree, encode_node

PREFIX = "com.example.record/"


def value(key: str, version: int = 0) -> Cid:
    return Cid.for_dag_cbor(encode(f"{key}#{version}"))


def whole(pairs: dict[str, Cid]) -> tuple[Cid, dict[Cid, bytes]]:
    built = mst.build(pairs.items())
    return built.root, dict(built.blocks)


keys = st.lists(st.from_regex(r"[a-z]{1,4}\.[a-z]{1,4}/[a-z2-7]{1,13}", fullmatch=True),
                max_size=80, unique=True)


@settings(max_examples=80, deadline=None)
@given(keys, keys, st.randoms(use_true_random=False))
def test_edits_give_the_tree_built_from_the_resulting_pairs(start, more, rnd) -> None:
    pairs = {key: value(key) for key in start}
    root, blocks = whole(pairs)
    tree = Tree(root, blocks.get)
    expected = dict(pairs)
    edits = [(key, "insert") for key in more] + [(key, "remove") for key in start[::2]] \
        + [(key, "update") for key in start[1::3]]
    rnd.shuffle(edits)
    for key, kind in edits:
        if kind == "remove":
            assert tree.remove(key) == expected.pop(key, None)
        else:
            new = value(key, 1 if kind == "update" else 2)
            assert tree.insert(key, new) == expected.get(key)
            expected[key] = new
        assert tree.get(key) == expected.get(key)
    made: dict[Cid, bytes] = {}
    assert tree.root(made) == mst.build(expected.items()).root
    for cid, block in made.items():
        assert Cid.for_dag_cbor(block) == cid


@settings(max_examples=60, deadline=None)
@given(keys, st.integers(0, 10_000))
def test_an_edit_is_undone_on_the_partial_tree_of_its_proof(start, pick) -> None:
    """What a firehose commit carries: the new tree's changed nodes plus the ones read to
    check it; undoing the edit on those alone gives the old root."""
    if not start:
        return
    pairs = {key: value(key) for key in start}
    old_root, blocks = whole(pairs)
    key = start[pick % len(start)]
    forward = Tree(old_root, blocks.get)
    forward.remove(key)
    new_blocks: dict[Cid, bytes] = {}
    new_root = forward.root(new_blocks)
    store = {**blocks, **new_blocks}
    prover = Tree(new_root, store.get)
    assert prover.get(key) is None
    assert prover.insert(key, pairs[key]) is None
    assert prover.root() == old_root
    proof = {cid: store[cid] for cid in prover.read}
    checker = Tree(new_root, proof.get)
    assert checker.get(key) is None
    checker.insert(key, pairs[key])
    assert checker.root() == old_root


def test_the_empty_tree_and_back() -> None:
    empty = mst.build([]).root
    nothing: dict[Cid, bytes] = {}
    tree = Tree(None, nothing.get)
    assert tree.root() == empty
    assert tree.insert(PREFIX + "3jqfcqzm3fx2j", value("a")) is None
    assert tree.root() == mst.build([(PREFIX + "3jqfcqzm3fx2j", value("a"))]).root
    assert tree.remove(PREFIX + "3jqfcqzm3fx2j") == value("a")
    assert tree.remove(PREFIX + "3jqfcqzm3fx2j") is None
    assert tree.root() == empty


def test_a_node_the_blocks_lack_is_named() -> None:
    pairs = {PREFIX + k: value(k) for k in ("3jqfcqzm3fo2j", "3jqfcqzm3fs2j", "3jqfcqzm3fx2j")}
    root, blocks = whole(pairs)
    only_root = {root: blocks[root]}
    with pytest.raises(mst.MstError, match="not among the blocks"):
        Tree(root, lambda cid: only_root.get(cid)).get(PREFIX + "3jqfcqzm3fo2j")


def test_a_node_with_keys_of_the_wrong_height_is_refused() -> None:
    # two keys of different heights in one node: no canonical tree has that
    node = {"l": None, "e": [
        {"p": 0, "k": (PREFIX + "3jqfcqzm3fo2j").encode(), "v": value("a"), "t": None},
        {"p": 0, "k": (PREFIX + "3jqfcqzm3fx2j").encode(), "v": value("b"), "t": None},
    ]}
    block = encode(node)
    root = Cid.for_dag_cbor(block)
    with pytest.raises(mst.MstError, match="mixes keys of heights"):
        Tree(root, {root: block}.get).get(PREFIX + "3jqfcqzm3fo2j")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.binary(max_size=300),
                          st.binary(min_size=32, max_size=32), st.booleans()), max_size=40),
       st.booleans())
def test_the_node_encoder_writes_what_the_general_encoder_writes(items, with_left) -> None:
    def cid(digest: bytes) -> Cid:
        return Cid(b"\x01\x71\x12\x20" + digest)

    left = cid(b"\x07" * 32) if with_left else None
    rows = [[p, k, cid(v), cid(v[::-1]) if t else None] for p, k, v, t in items]
    expected = encode({"l": left, "e": [{"p": p, "k": k, "v": v, "t": t}
                                        for p, k, v, t in rows]})
    assert encode_node(left, rows) == expected
