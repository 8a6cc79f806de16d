"""The Merkle Search Tree of an AT Protocol repository: build one from (key, CID) pairs,
and walk one back from its blocks.

A key's height is the number of leading zero bit-pairs of sha256(key) (fanout 4). A node
at layer L holds the keys of height L in order; the keys between two of them (all lower)
hang below in a node of layer L-1, even when that node has no keys of its own, so every
layer is present and the root CID depends only on the set of pairs. Node:
``{l: CID|null, e: [{p: shared prefix length, k: key suffix bytes, v: CID, t: CID|null}]}``.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from appview.repos.cbor import CborError, Cid, encode

# Below this depth no honest tree goes (a key would need a 256-bit run of zeros).
_MAX_LAYER = 128


class MstError(ValueError):
    """A tree that cannot be built or walked; the message says why."""


def key_height(key: str) -> int:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    height = 0
    for byte in digest:
        if byte == 0:
            height += 4
            continue
        for shift in (6, 4, 2, 0):
            if (byte >> shift) & 0b11:
                return height
            height += 1
    return height


@dataclass
class Mst:
    """A built tree: its root and its node blocks, root first."""

    root: Cid
    blocks: dict[Cid, bytes] = field(default_factory=dict)


def build(pairs: Iterable[tuple[str, Cid]]) -> Mst:
    """The tree of these (key, value CID) pairs; keys must be unique."""
    leaves = sorted((key, value, key_height(key)) for key, value in pairs)
    for before, after in itertools.pairwise(leaves):
        if before[0] == after[0]:
            raise MstError(f"duplicate key {before[0]!r}")
    blocks: dict[Cid, bytes] = {}
    layer = max((height for _, _, height in leaves), default=0)
    root = _build_node(leaves, layer, blocks)
    ordered = {root: blocks.pop(root)}
    ordered.update(blocks)
    return Mst(root, ordered)


def _build_node(leaves: list[tuple[str, Cid, int]], layer: int, blocks: dict[Cid, bytes]) -> Cid:
    def subtree(start: int, stop: int) -> Cid | None:
        if start == stop:
            return None
        return _build_node(leaves[start:stop], layer - 1, blocks)

    entries: list[dict[str, Any]] = []
    left: Cid | None = None
    previous_key = b""
    gap_start = 0
    last_entry: dict[str, Any] | None = None
    for index, (key, value, height) in enumerate(leaves):
        if height != layer:
            continue
        below = subtree(gap_start, index)
        if last_entry is None:
            left = below
        else:
            last_entry["t"] = below
        key_bytes = key.encode("utf-8")
        prefix = _common_prefix(previous_key, key_bytes)
        last_entry = {"p": prefix, "k": key_bytes[prefix:], "v": value, "t": None}
        entries.append(last_entry)
        previous_key = key_bytes
        gap_start = index + 1
    below = subtree(gap_start, len(leaves))
    if last_entry is None:
        left = below
    else:
        last_entry["t"] = below
    block = encode({"l": left, "e": entries})
    cid = Cid.for_dag_cbor(block)
    blocks[cid] = block
    return cid


def _common_prefix(a: bytes, b: bytes) -> int:
    length = min(len(a), len(b))
    for index in range(length):
        if a[index] != b[index]:
            return index
    return length


def walk(
    root: object, load: Callable[[Cid], Mapping[str, Any] | None]
) -> Iterator[tuple[str, Cid]]:
    """Every (key, value CID) of the tree under ``root``, in key order.

    ``load`` returns a decoded node block or None when missing; links may be :class:`Cid`
    or raw CID bytes (what the SDK's ``CAR.from_bytes`` gives). Raises :class:`MstError`
    on a missing block, a malformed node or keys out of order."""
    last: list[str] = []
    yield from _walk(_cid(root, "root"), load, last, 0)


def _walk(
    node_cid: Cid, load: Callable[[Cid], Mapping[str, Any] | None], last: list[str], depth: int
) -> Iterator[tuple[str, Cid]]:
    if depth > _MAX_LAYER:
        raise MstError("tree deeper than any real MST")
    node = load(node_cid)
    if node is None:
        raise MstError(f"block {node_cid} is missing")
    entries = node.get("e")
    if not isinstance(entries, list):
        raise MstError(f"node {node_cid} has no entry list")
    if node.get("l") is not None:
        yield from _walk(_cid(node["l"], "l"), load, last, depth + 1)
    previous = b""
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise MstError(f"node {node_cid} has an entry that is not a map")
        prefix, suffix = entry.get("p"), entry.get("k")
        if not isinstance(prefix, int) or not isinstance(suffix, bytes) or prefix > len(previous):
            raise MstError(f"node {node_cid} has a malformed key entry")
        key_bytes = previous[:prefix] + suffix
        try:
            key = key_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MstError(f"node {node_cid} has a key that is not UTF-8") from exc
        if last and key <= last[0]:
            raise MstError(f"key {key!r} is out of order after {last[0]!r}")
        last[:] = [key]
        yield key, _cid(entry.get("v"), "v")
        if entry.get("t") is not None:
            yield from _walk(_cid(entry["t"], "t"), load, last, depth + 1)
        previous = key_bytes


def _cid(value: object, what: str) -> Cid:
    try:
        return Cid.coerce(value)
    except CborError as exc:
        raise MstError(f"{what} is not a CID: {exc}") from exc
