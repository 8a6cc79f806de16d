"""CAR v1 files: ours parse with the SDK, and the SDK's parse is what we read."""

from __future__ import annotations

import libipld
import pytest
from atproto_core.car import CAR

from appview.repos.car import CarError, read_car, write_car
from appview.repos.cbor import Cid, encode
from tests.conftest import CAPTURE


def test_written_car_parses_with_the_sdk() -> None:
    blocks = [encode({"n": i, "tag": "block"}) for i in range(5)]
    cids = [Cid.for_dag_cbor(block) for block in blocks]
    data = write_car([cids[2]], zip(cids, blocks, strict=True))
    car = CAR.from_bytes(data)
    assert str(car.root) == str(cids[2])
    assert {str(cid): block for cid, block in car.blocks.items()} == {
        str(cid): {"n": i, "tag": "block"} for i, cid in enumerate(cids)
    }
    header, raw_blocks = libipld.decode_car(data)
    assert header == {"roots": [cids[2].raw], "version": 1}
    assert list(raw_blocks) == [cid.raw for cid in cids]


def test_read_car_keys_blocks_by_cid_and_keeps_the_first_root() -> None:
    car = read_car((CAPTURE / "repo.car").read_bytes())
    assert car.blocks[car.root]["did"] == "did:plc:53iucmf5ldftgqyf2ac7hmhd"
    assert len(car.blocks) == 29
    assert all(isinstance(cid, Cid) for cid in car.blocks)


def test_large_blocks_use_multibyte_length_varints() -> None:
    block = encode({"text": "x" * 70_000})
    cid = Cid.for_dag_cbor(block)
    car = read_car(write_car([cid], [(cid, block)]))
    assert car.blocks[cid]["text"] == "x" * 70_000


@pytest.mark.parametrize("data", [b"", b"\x05hello", b"\x0a" + encode({"version": 1})])
def test_garbage_is_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(CarError, match="CAR"):
        read_car(data)


def test_a_car_without_roots_is_refused() -> None:
    with pytest.raises(CarError, match=r"(?i)roots"):
        read_car(write_car([], []))
