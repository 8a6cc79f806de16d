"""CAR v1 files (what ``com.atproto.sync.getRepo`` serves): written here, read through the
SDK's ``CAR.from_bytes``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from atproto_core.car import CAR

from appview.repos.cbor import CborError, Cid, encode


class CarError(ValueError):
    """Bytes that are not a CAR v1 file with a root; the message says why."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def write_car(roots: list[Cid], blocks: Iterable[tuple[Cid, bytes]]) -> bytes:
    """A CAR v1: the header ``{roots, version: 1}``, then each block as
    varint(len) · CID bytes · block bytes."""
    header = encode({"roots": list(roots), "version": 1})
    out = bytearray(_varint(len(header)) + header)
    for cid, block in blocks:
        out += _varint(len(cid.raw) + len(block))
        out += cid.raw
        out += block
    return bytes(out)


@dataclass(frozen=True)
class CarFile:
    """A parsed CAR: its first root and its blocks decoded (links as raw CID bytes, as the
    SDK's decoder gives them)."""

    root: Cid
    blocks: Mapping[Cid, Any]


def read_car(data: bytes) -> CarFile:
    try:
        car = CAR.from_bytes(data)
    except (ValueError, TypeError, RecursionError) as exc:
        raise CarError(f"not a CAR v1 file: {exc}") from exc
    except Exception as exc:  # the SDK's InvalidCARFile derives from its own base class
        raise CarError(f"not a CAR v1 file with a root: {exc}") from exc
    try:
        return CarFile(
            root=Cid.parse(str(car.root)),
            blocks={Cid.parse(str(cid)): block for cid, block in car.blocks.items()},
        )
    except CborError as exc:
        raise CarError(f"CAR has an invalid CID: {exc}") from exc
