"""A Merkle Search Tree changed one key at a time, over as few blocks as the change needs.

``mst.build`` makes a whole tree from every pair; a firehose commit carries only the
nodes its operations touched (a "partial tree"), and a PDS changes its tree one write at
a time. :class:`Tree` loads nodes from their blocks when an operation reaches them and
keeps the CIDs of the subtrees it never opened, so ``get``, ``insert`` and ``remove``
work on a partial tree as long as the blocks on their paths are present, and the root CID
is recomputed from the changed nodes only. The result is the canonical tree of the new
set of pairs, the same root ``mst.build`` gives (a property test holds the two equal).

Layout, as in ``mst``: a node of layer L holds, in key order, leaves (keys of height L)
and between them at most one subtree of layer L-1; the root's layer is the highest key
height; an empty subtree is no subtree. Names follow the reference implementations
(insert splits the subtree a new key falls in; remove merges the two subtrees that
flanked the removed key; the root loses its top layers while it is only a pointer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from appview.repos.cbor import CborError, Cid, decode_links_raw, write_head
from appview.repos.mst import MstError, key_height

# A subtree deeper than this is no honest tree (a key would need a 256-bit run of zeros).
_MAX_LAYER = 128


@dataclass(slots=True)
class Leaf:
    key: str
    value: Cid


@dataclass(slots=True)
class Child:
    """A subtree: its CID until something opens it, then its node."""

    cid: Cid | None
    node: Node | None = None


@dataclass(slots=True)
class Node:
    layer: int
    entries: list[Leaf | Child] = field(default_factory=list)
    # the CID of the block this node was read from, while it is unchanged
    cid: Cid | None = None


def _leaf_index(node: Node, key: str) -> int:
    """The index of the first leaf whose key is >= ``key`` (or the end)."""
    for index, entry in enumerate(node.entries):
        if isinstance(entry, Leaf) and entry.key >= key:
            return index
    return len(node.entries)


class Tree:
    """An editable tree over ``load(cid) -> block bytes | None``. ``root`` None is the
    empty tree. Every block read is noted in :attr:`read` (what a proof of the same
    operations must carry); a block ``load`` lacks raises :class:`MstError`."""

    def __init__(self, root: Cid | None, load: Callable[[Cid], bytes | None]) -> None:
        self._load = load
        self.read: set[Cid] = set()
        self._root: Node | Child
        if root is None:
            self._root = Node(0)
        else:
            self._root = Child(root)

    # --- reading nodes ----------------------------------------------------------------

    def _open(self, child: Child, layer: int) -> Node:
        if child.node is None:
            assert child.cid is not None
            child.node = self._read_node(child.cid, layer)
        return child.node

    def _read_node(self, cid: Cid, layer: int | None) -> Node:
        block = self._load(cid)
        if block is None:
            raise MstError(f"the MST node {cid} is not among the blocks")
        self.read.add(cid)
        try:
            raw = decode_links_raw(block)
        except CborError as exc:
            raise MstError(f"the MST node {cid} is not DAG-CBOR: {exc}") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("e"), list):
            raise MstError(f"the MST node {cid} has no entry list")
        entries: list[Leaf | Child] = []
        if raw.get("l") is not None:
            entries.append(Child(_cid(raw["l"], cid)))
        previous = b""
        heights: set[int] = set()
        for item in raw["e"]:
            if not isinstance(item, dict):
                raise MstError(f"the MST node {cid} has an entry that is not a map")
            prefix, suffix = item.get("p"), item.get("k")
            if not isinstance(prefix, int) or not isinstance(suffix, bytes) \
                    or not 0 <= prefix <= len(previous):
                raise MstError(f"the MST node {cid} has a malformed key entry")
            key_bytes = previous[:prefix] + suffix
            try:
                key = key_bytes.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MstError(f"the MST node {cid} has a key that is not UTF-8") from exc
            if key_bytes <= previous and previous:
                raise MstError(f"the MST node {cid} has keys out of order")
            heights.add(key_height(key))
            entries.append(Leaf(key, _cid(item.get("v"), cid)))
            if item.get("t") is not None:
                entries.append(Child(_cid(item["t"], cid)))
            previous = key_bytes
        if len(heights) > 1:
            raise MstError(f"the MST node {cid} mixes keys of heights {sorted(heights)}")
        if heights:
            (height,) = heights
            if layer is not None and height != layer:
                raise MstError(f"the MST node {cid} holds keys of height {height}"
                               f" at layer {layer}")
            layer = height
        node = Node(-1 if layer is None else layer, entries, cid)
        if layer is None:
            # a root with no keys of its own: one layer above its first subtree
            below = next((e for e in entries if isinstance(e, Child)), None)
            node.layer = 0 if below is None else self._layer_below(below) + 1
        return node

    def _layer_below(self, child: Child) -> int:
        assert child.cid is not None
        node = self._read_node(child.cid, None)
        child.node = node
        if node.layer > _MAX_LAYER:
            raise MstError("tree deeper than any real MST")
        return node.layer

    def _root_node(self) -> Node:
        if isinstance(self._root, Child):
            assert self._root.cid is not None
            self._root = self._read_node(self._root.cid, None)
        return self._root

    # --- operations -------------------------------------------------------------------

    def get(self, key: str) -> Cid | None:
        """The value of ``key``, None when the tree does not hold it."""
        node = self._root_node()
        height = key_height(key)
        while True:
            if height > node.layer:
                return None
            index = _leaf_index(node, key)
            if height == node.layer:
                entry = node.entries[index] if index < len(node.entries) else None
                return entry.value if isinstance(entry, Leaf) and entry.key == key else None
            before = node.entries[index - 1] if index > 0 else None
            if not isinstance(before, Child):
                return None
            node = self._open(before, node.layer - 1)

    def insert(self, key: str, value: Cid) -> Cid | None:
        """Set ``key`` to ``value``; returns the value it had (None: a new key)."""
        root = self._root_node()
        height = key_height(key)
        while height > root.layer:
            # an empty root takes the key's layer; a full one gets a layer above it
            root = Node(root.layer + 1, [Child(None, root)]) if root.entries else Node(height)
        self._root = root
        return self._insert(root, key, value, height)

    def _insert(self, node: Node, key: str, value: Cid, height: int) -> Cid | None:
        index = _leaf_index(node, key)
        before = node.entries[index - 1] if index > 0 else None
        if height == node.layer:
            entry = node.entries[index] if index < len(node.entries) else None
            if isinstance(entry, Leaf) and entry.key == key:
                replaced = entry.value
                if replaced != value:
                    entry.value = value
                    node.cid = None
                return replaced
            node.cid = None
            if isinstance(before, Child):
                left, right = self._split(self._open(before, node.layer - 1), key)
                node.entries[index - 1:index] = [
                    *([Child(None, left)] if left is not None else []),
                    Leaf(key, value),
                    *([Child(None, right)] if right is not None else []),
                ]
            else:
                node.entries.insert(index, Leaf(key, value))
            return None
        if isinstance(before, Child):
            below = self._open(before, node.layer - 1)
            previous = self._insert(below, key, value, height)
            if previous != value:
                before.cid = None
                node.cid = None
            return previous
        fresh = Node(node.layer - 1)
        self._insert(fresh, key, value, height)
        node.entries.insert(index, Child(None, fresh))
        node.cid = None
        return None

    def _split(self, node: Node, key: str) -> tuple[Node | None, Node | None]:
        """The parts of ``node`` below and above ``key`` (which it does not hold)."""
        index = _leaf_index(node, key)
        before = node.entries[index - 1] if index > 0 else None
        if isinstance(before, Child):
            low, high = self._split(self._open(before, node.layer - 1), key)
            left = node.entries[:index - 1] + ([Child(None, low)] if low is not None else [])
            right = ([Child(None, high)] if high is not None else []) + node.entries[index:]
        else:
            left, right = node.entries[:index], node.entries[index:]
        return (Node(node.layer, left) if left else None,
                Node(node.layer, right) if right else None)

    def remove(self, key: str) -> Cid | None:
        """Remove ``key``; returns the value it had (None: the tree did not hold it)."""
        root = self._root_node()
        previous = self._remove(root, key, key_height(key))
        if previous is None:
            return None
        # the root loses its top layers while it is only a pointer
        while len(root.entries) == 1 and isinstance(root.entries[0], Child):
            only = root.entries[0]
            if only.node is None:
                assert only.cid is not None
                if self._load(only.cid) is None:
                    # a subtree the operation never opened: an old root, which a proof
                    # need not carry (and which is no bare pointer)
                    self._root = Child(only.cid)
                    return previous
            root = self._open(only, root.layer - 1)
        if not root.entries:
            root = Node(0)
        self._root = root
        return previous

    def _remove(self, node: Node, key: str, height: int) -> Cid | None:
        if height > node.layer:
            return None
        index = _leaf_index(node, key)
        if height < node.layer:
            before = node.entries[index - 1] if index > 0 else None
            if not isinstance(before, Child):
                return None
            below = self._open(before, node.layer - 1)
            previous = self._remove(below, key, height)
            if previous is None:
                return None
            node.cid = None
            if below.entries:
                before.cid = None
            else:
                del node.entries[index - 1]
            return previous
        entry = node.entries[index] if index < len(node.entries) else None
        if not isinstance(entry, Leaf) or entry.key != key:
            return None
        node.cid = None
        left = node.entries[index - 1] if index > 0 else None
        right = node.entries[index + 1] if index + 1 < len(node.entries) else None
        if isinstance(left, Child) and isinstance(right, Child):
            merged = self._merge(self._open(left, node.layer - 1),
                                 self._open(right, node.layer - 1))
            node.entries[index - 1:index + 2] = [Child(None, merged)]
        else:
            del node.entries[index]
        return entry.value

    def _merge(self, left: Node, right: Node) -> Node:
        entries = left.entries + right.entries
        seam = len(left.entries)
        if seam and seam < len(entries):
            low, high = entries[seam - 1], entries[seam]
            if isinstance(low, Child) and isinstance(high, Child):
                merged = self._merge(self._open(low, left.layer - 1),
                                     self._open(high, left.layer - 1))
                entries[seam - 1:seam + 1] = [Child(None, merged)]
        return Node(left.layer, entries)

    # --- the root and the blocks ------------------------------------------------------

    def root(self, blocks: dict[Cid, bytes] | None = None) -> Cid:
        """The root CID; with ``blocks``, every node block made since loading is added
        to it (what the tree's new state adds to a repository)."""
        if isinstance(self._root, Child):
            assert self._root.cid is not None
            return self._root.cid
        return self._node_cid(self._root, blocks)

    def _node_cid(self, node: Node, blocks: dict[Cid, bytes] | None) -> Cid:
        if node.cid is not None:
            return node.cid
        left: Cid | None = None
        items: list[list[Any]] = []  # [prefix, suffix, value, subtree]
        previous = b""
        for entry in node.entries:
            if isinstance(entry, Child):
                cid = self._child_cid(entry, blocks)
                if items:
                    items[-1][3] = cid
                else:
                    left = cid
                continue
            key_bytes = entry.key.encode("utf-8")
            prefix = _common_prefix(previous, key_bytes)
            items.append([prefix, key_bytes[prefix:], entry.value, None])
            previous = key_bytes
        block = encode_node(left, items)
        node.cid = Cid.for_dag_cbor(block)
        if blocks is not None:
            blocks[node.cid] = block
        return node.cid

    def _child_cid(self, child: Child, blocks: dict[Cid, bytes] | None) -> Cid:
        if child.node is None:
            assert child.cid is not None
            return child.cid
        child.cid = self._node_cid(child.node, blocks)
        return child.cid

    def loaded_blocks(self) -> Iterator[tuple[Cid, Node]]:
        """Every node held in memory with its CID (``root`` first computes them)."""
        stack: list[Node | Child] = [self._root]
        while stack:
            item = stack.pop()
            node = item if isinstance(item, Node) else item.node
            if node is None:
                continue
            assert node.cid is not None, "call root() first"
            yield node.cid, node
            stack.extend(e for e in node.entries if isinstance(e, Child))


def encode_node(left: Cid | None, items: list[list[Any]]) -> bytes:
    """The DAG-CBOR of a node ``{l, e: [{p, k, v, t}]}`` (``items``: [p, k, v, t]),
    written directly: this shape is all a tree has, and the general encoder was most of
    the time a commit check took. Equal to ``cbor.encode`` of the same map (keys in
    DAG-CBOR order: e before l, k p t v)."""
    out = bytearray(b"\xa2\x61e")
    write_head(4, len(items), out)
    for prefix, suffix, value, subtree in items:
        out += b"\xa4\x61k"
        write_head(2, len(suffix), out)
        out += suffix
        out += b"\x61p"
        write_head(0, prefix, out)
        out += b"\x61t"
        _link(subtree, out)
        out += b"\x61v"
        _link(value, out)
    out += b"\x61l"
    _link(left, out)
    return bytes(out)


def _link(cid: Cid | None, out: bytearray) -> None:
    if cid is None:
        out.append(0xF6)
        return
    out += b"\xd8\x2a"
    write_head(2, len(cid.raw) + 1, out)
    out.append(0)
    out += cid.raw


def _cid(value: object, node: Cid) -> Cid:
    try:
        return Cid.coerce(value)
    except CborError as exc:
        raise MstError(f"the MST node {node} has a link that is not a CID: {exc}") from exc


def _common_prefix(a: bytes, b: bytes) -> int:
    length = min(len(a), len(b))
    for index in range(length):
        if a[index] != b[index]:
            return index
    return length
