"""subscribeRepos frames: the real capture decodes to its kinds, every other shape is a
FrameError with a reason (never an exception of another kind)."""

from __future__ import annotations

import collections

import pytest

from appview.devnet.firehose import encode_frame, error_frame
from appview.ingest.frames import (
    AccountFrame,
    CommitFrame,
    ErrorFrame,
    FrameError,
    IdentityFrame,
    InfoFrame,
    OtherFrame,
    decode_frame,
)
from appview.repos.cbor import Cid, encode
from tests.test_firehose import captured_frames

CID = Cid.for_dag_cbor(encode({}))


def test_the_captured_relay_frames_decode_to_their_kinds() -> None:
    frames = [decode_frame(data) for data in captured_frames()]
    kinds = collections.Counter(type(frame).__name__ for frame in frames)
    assert kinds == {"CommitFrame": 148, "IdentityFrame": 1, "AccountFrame": 1}
    seqs = [frame.seq for frame in frames if not isinstance(frame, InfoFrame | ErrorFrame)
            and not isinstance(frame, OtherFrame)]
    assert seqs == list(range(31527015322, 31527015472))
    actions = collections.Counter(op.action for frame in frames
                                  if isinstance(frame, CommitFrame) for op in frame.ops)
    assert actions == {"create": 144, "update": 2, "delete": 4}
    identity = next(f for f in frames if isinstance(f, IdentityFrame))
    account = next(f for f in frames if isinstance(f, AccountFrame))
    assert identity.did == account.did and account.active


def test_error_info_and_unknown_messages() -> None:
    assert decode_frame(error_frame("FutureCursor", "too far")) == \
        ErrorFrame("FutureCursor", "too far")
    assert decode_frame(encode_frame("#info", {"name": "OutdatedCursor"})) == \
        InfoFrame("OutdatedCursor", None)
    assert decode_frame(encode_frame("#tombstone", {"seq": 7, "did": "did:plc:x"})) == \
        OtherFrame("#tombstone", 7)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "a frame is a header map and a body map"),
    (b"\xff\xff", "not DAG-CBOR"),
    (encode({"op": 1, "t": "#commit"}), "a frame is a header map and a body map"),
    (encode({"op": 2}) + encode({}), "neither 1 nor -1"),
    (encode({"op": 1}) + encode({}), "header t: missing"),
    (encode_frame("#commit", {"seq": 1, "ops": []}), "#commit repo: not a string"),
    (encode_frame("#identity", {"seq": -1, "did": "did:plc:x", "time": "t"}),
     "#identity seq: not a non-negative integer"),
    (encode_frame("#account", {"seq": 1, "did": "did:plc:x", "time": "t", "active": "yes"}),
     "#account active: not a boolean"),
    (encode_frame("#commit", {"seq": 1, "repo": "did:plc:x", "rev": "r", "commit": "nope",
                              "blocks": b"", "ops": [], "time": "t"}),
     "#commit commit: not a CID"),
    (encode_frame("#commit", {"seq": 1, "repo": "did:plc:x", "rev": "r", "commit": CID,
                              "blocks": b"", "ops": [{"action": "move", "path": "a/b"}],
                              "time": "t"}), "unknown action"),
    (b"\x00" * (6 * 1024 * 1024), "over the limit"),
])
def test_malformed_frames_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        decode_frame(data)
