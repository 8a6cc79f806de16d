"""Commit verification on the real relay capture: every commit's signature verifies with
the key of its captured DID document, every operation is in its tree, every commit undoes
to its prevData; and each kind of tampering is refused with its reason."""

from __future__ import annotations

import dataclasses
import json

import pytest
import zstandard

from appview.devnet.keys import SigningKey
from appview.ingest.frames import CommitFrame, decode_frame
from appview.repos.car import write_car
from appview.repos.cbor import Cid, decode, encode
from appview.repos.commit import (
    CommitInvalid,
    RepoOp,
    check_operations,
    read_commit,
    read_slice,
)
from appview.repos.signing import VerifyingKey, signing_key_of
from tests.conftest import CAPTURE
from tests.test_firehose import captured_frames


def captured_commits() -> list[CommitFrame]:
    return [frame for frame in map(decode_frame, captured_frames())
            if isinstance(frame, CommitFrame)]


def did_documents() -> dict[str, dict[str, object]]:
    raw = zstandard.ZstdDecompressor().decompress(
        (CAPTURE / "did_docs.json.zst").read_bytes(), max_output_size=1 << 24)
    documents: dict[str, dict[str, object]] = json.loads(raw)
    return documents


def test_every_captured_commit_verifies_and_undoes_to_its_prev_data() -> None:
    documents = did_documents()
    commits = captured_commits()
    assert len(commits) == 148  # manifest.json: commit_frames
    undone = 0
    for frame in commits:
        root, blocks = read_slice(frame.blocks)
        assert root == frame.commit
        commit = read_commit(blocks, frame.commit)
        assert (commit.did, commit.rev) == (frame.repo, frame.rev)
        key = signing_key_of(documents[frame.repo])
        assert key is not None and commit.signed_by(key)
        assert frame.prev_data is not None
        undone += check_operations(commit, frame.ops, blocks, frame.prev_data)
    assert undone == 148


def first_with(action: str) -> CommitFrame:
    return next(f for f in captured_commits() if any(op.action == action for op in f.ops))


@pytest.mark.parametrize("action", ["create", "update", "delete"])
def test_an_operation_its_tree_does_not_hold_is_refused(action: str) -> None:
    frame = first_with(action)
    _, blocks = read_slice(frame.blocks)
    commit = read_commit(blocks, frame.commit)
    op = next(op for op in frame.ops if op.action == action)
    other = Cid.for_dag_cbor(encode({"not": "it"}))
    if action == "delete":  # a delete of a key the tree still holds
        present = next(key for key in tree_keys(frame) if key != op.path)
        changed = [RepoOp("delete", present, None, o.prev) if o is op else o
                   for o in frame.ops]
        with pytest.raises(CommitInvalid, match="still holds the deleted"):
            check_operations(commit, changed, blocks, frame.prev_data)
        return
    swapped = [dataclasses.replace(o, cid=other) if o is op else o for o in frame.ops]
    with pytest.raises(CommitInvalid, match=f"not the {action}'s"):
        check_operations(commit, swapped, blocks, frame.prev_data)


def tree_keys(frame: CommitFrame) -> list[str]:
    """Keys of the leaves the CAR slice's tree nodes carry."""
    _, blocks = read_slice(frame.blocks)
    keys = []
    for block in blocks.values():
        node = decode(block)
        if isinstance(node, dict) and isinstance(node.get("e"), list):
            previous = b""
            for entry in node["e"]:
                key = previous[:entry["p"]] + entry["k"]
                keys.append(key.decode())
                previous = key
    return keys


def test_an_operation_left_out_is_found_by_undoing_to_prev_data() -> None:
    frame = next(f for f in captured_commits() if len(f.ops) == 1 and f.ops[0].action == "create")
    _, blocks = read_slice(frame.blocks)
    commit = read_commit(blocks, frame.commit)
    with pytest.raises(CommitInvalid, match="changed more than they say"):
        check_operations(commit, [], blocks, frame.prev_data)
    # without prevData (an older host) only the forward check is possible
    assert check_operations(commit, [], blocks, None) is False


def test_a_block_that_is_not_its_cid_and_a_foreign_signature_are_refused() -> None:
    frame = captured_commits()[0]
    root, blocks = read_slice(frame.blocks)
    record = next(cid for cid in blocks if cid != root and cid == frame.ops[0].cid)
    tampered = {cid: (block[:-1] + b"\x00" if cid == record else block)
                for cid, block in blocks.items()}
    with pytest.raises(CommitInvalid, match="does not match its CID"):
        read_slice(write_car([root], tampered.items()))
    commit = read_commit(blocks, frame.commit)
    stranger = VerifyingKey.from_did_key(SigningKey.from_seed(b"stranger").did_key)
    assert not commit.signed_by(stranger)


def test_a_high_s_twin_of_a_valid_signature_is_refused() -> None:
    key = SigningKey.from_seed(b"signer")
    data = b"commit bytes"
    signature = key.sign(data)
    verifying = VerifyingKey.from_did_key(key.did_key)
    assert verifying.verify(data, signature)
    order = 0xFFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFE_BAAEDCE6_AF48A03B_BFD25E8C_D0364141
    s = int.from_bytes(signature[32:], "big")
    twin = signature[:32] + (order - s).to_bytes(32, "big")
    assert not verifying.verify(data, twin)
    assert not verifying.verify(data, signature[:63])


def test_a_did_document_without_a_usable_key_says_why() -> None:
    assert signing_key_of({"verificationMethod": []}) is None
    with pytest.raises(ValueError, match="unknown type"):
        signing_key_of({"verificationMethod": [
            {"id": "#atproto", "type": "Ed25519", "publicKeyMultibase": "z6Mk"}]})
    with pytest.raises(ValueError, match="not a usable did:key"):
        signing_key_of({"verificationMethod": [
            {"id": "#atproto", "type": "Multikey", "publicKeyMultibase": "zNotAKey"}]})
