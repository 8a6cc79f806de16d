"""CAR v1 files (what ``com.atproto.sync.getRepo`` serves): written here, read through the
SDK's ``CAR.from_bytes``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from atproto_core.car import CAR

from appview.repos.cbor import CborError, Cid, decode, encode


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


# CIDv1 dag-cbor and raw with a 32-byte sha2-256 digest: 4 header bytes, then the digest
_SHA256_CID_HEADS = frozenset({b"\x01\x71\x12\x20", b"\x01\x55\x12\x20"})


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise CarError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise CarError("varint longer than 64 bits")


def _cid_length(data: bytes, pos: int) -> int:
    """The length of the binary CIDv1 at ``pos``: version, codec, hash code, digest."""
    if data[pos:pos + 4] in _SHA256_CID_HEADS:  # nearly every block: skip the varints
        return 36
    start = pos
    version, pos = _read_varint(data, pos)
    if version != 1:
        raise CarError(f"CID version {version} in a CAR block (only CIDv1 is used)")
    _codec, pos = _read_varint(data, pos)
    _hash_code, pos = _read_varint(data, pos)
    size, pos = _read_varint(data, pos)
    return pos + size - start


def read_car_blocks(data: bytes, *, verify: bool = True) -> tuple[Cid, dict[Cid, bytes]]:
    """The first root and every block as its raw bytes, each checked against its CID
    (sha2-256) unless ``verify`` is False: decoding is left to the caller, so links stay
    links and bytes stay bytes. Raises :class:`CarError` on anything malformed."""
    try:
        header_length, pos = _read_varint(data, 0)
        header = decode(data[pos:pos + header_length])
    except CborError as exc:
        raise CarError(f"CAR header is not DAG-CBOR: {exc}") from exc
    pos += header_length
    roots = header.get("roots") if isinstance(header, dict) else None
    if not isinstance(roots, list) or not roots or not isinstance(roots[0], Cid):
        raise CarError("CAR header has no root")
    blocks: dict[Cid, bytes] = {}
    while pos < len(data):
        length, pos = _read_varint(data, pos)
        end = pos + length
        if end > len(data):
            raise CarError("truncated CAR block")
        cid_end = pos + _cid_length(data, pos)
        cid, block = Cid(data[pos:cid_end]), data[cid_end:end]
        if verify and cid.raw[1] == 0x71 and Cid.for_dag_cbor(block) != cid:
            raise CarError(f"block {cid} does not match its CID")
        blocks[cid] = block
        pos = end
    return roots[0], blocks
