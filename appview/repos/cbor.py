"""The AT Protocol data model: JSON form <-> DAG-CBOR, and record CIDs.

The encoder and decoder are our own because ``libipld.encode_dag_cbor`` writes any byte
string that happens to parse as a CID as a CID link (tag 42), and its decoder returns links
as plain bytes: a ``{"$bytes": ...}`` value could silently change type and CID. Here links
are :class:`Cid` objects and bytes are ``bytes``, always.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

import libipld

_CID_V1_DAG_CBOR_SHA256 = b"\x01\x71\x12\x20"
_CID_V1_RAW_SHA256 = b"\x01\x55\x12\x20"
_SHA256_HEADS = frozenset({_CID_V1_DAG_CBOR_SHA256, _CID_V1_RAW_SHA256})
_TAG_CID = 42
# the head of a tag 42 item (major type 6, one-byte argument 42)
_TAG_CID_HEAD = b"\xd8\x2a"
_MAX_DEPTH = 256


class CborError(ValueError):
    """A value that is not in the AT Protocol data model, or bytes that are not DAG-CBOR."""


@dataclass(frozen=True, slots=True)
class Cid:
    """A CID held as its binary form (what DAG-CBOR tag 42 carries, minus the 0x00)."""

    raw: bytes

    @classmethod
    def parse(cls, text: str) -> Cid:
        """A CID from its string form; raises :class:`CborError` with the reason."""
        try:
            parts = libipld.decode_cid(text)
        except (ValueError, TypeError) as exc:
            raise CborError(f"not a CID: {text!r} ({exc})") from exc
        digest: bytes = parts["hash"]["digest"]
        multihash = _varint(parts["hash"]["code"]) + _varint(parts["hash"]["size"]) + digest
        if parts["version"] == 0:
            return cls(multihash)
        return cls(_varint(1) + _varint(parts["codec"]) + multihash)

    @classmethod
    def coerce(cls, value: object) -> Cid:
        """A CID from a :class:`Cid`, its binary form (as libipld decodes links) or its
        string form."""
        if isinstance(value, Cid):
            return value
        if isinstance(value, bytes):
            if len(value) == 36 and value[:4] in _SHA256_HEADS:
                # nearly every link: CIDv1 dag-cbor or raw, sha2-256, well formed by shape
                return cls(value)
            try:
                libipld.encode_cid(value)
            except (ValueError, TypeError) as exc:
                raise CborError(f"not a binary CID: {value[:8].hex()}… ({exc})") from exc
            return cls(value)
        if isinstance(value, str):
            return cls.parse(value)
        raise CborError(f"expected a CID, got {type(value).__name__}")

    @classmethod
    def for_dag_cbor(cls, block: bytes) -> Cid:
        return cls(_CID_V1_DAG_CBOR_SHA256 + hashlib.sha256(block).digest())

    @classmethod
    def for_raw(cls, data: bytes) -> Cid:
        return cls(_CID_V1_RAW_SHA256 + hashlib.sha256(data).digest())

    def __str__(self) -> str:
        return libipld.encode_cid(self.raw)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# --- JSON form <-> data model -------------------------------------------------------


def json_to_ipld(value: Any, _depth: int = 0) -> Any:
    """The data-model value of a JSON value: ``{"$link"}`` → :class:`Cid`, ``{"$bytes"}`` →
    bytes. Floats are refused: the AT Protocol data model has none."""
    if _depth > _MAX_DEPTH:
        raise CborError(f"nested deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        _check_int(value)
        return value
    if isinstance(value, float):
        raise CborError(f"floats are not in the AT Protocol data model: {value!r}")
    if isinstance(value, list):
        return [json_to_ipld(item, _depth + 1) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and "$link" in value:
            link = value["$link"]
            if not isinstance(link, str):
                raise CborError("$link must be a CID string")
            return Cid.parse(link)
        if len(value) == 1 and "$bytes" in value:
            return _b64decode(value["$bytes"])
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CborError(f"map keys must be strings, got {type(key).__name__}")
            out[key] = json_to_ipld(item, _depth + 1)
        return out
    raise CborError(f"{type(value).__name__} is not a JSON value")


def ipld_to_json(value: Any, _depth: int = 0) -> Any:
    """The JSON form of a data-model value (the inverse of :func:`json_to_ipld`)."""
    if _depth > _MAX_DEPTH:
        raise CborError(f"nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, Cid):
        return {"$link": str(value)}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii").rstrip("=")}
    # scalars are returned in place rather than through a call each: records are mostly
    # strings, and this walk runs over every record a full_sync reads
    depth = _depth + 1
    if isinstance(value, list):
        return [item if type(item) in _JSON_SCALARS else ipld_to_json(item, depth)
                for item in value]
    if isinstance(value, dict):
        return {key: item if type(item) in _JSON_SCALARS else ipld_to_json(item, depth)
                for key, item in value.items()}
    return value


_JSON_SCALARS = frozenset({str, int, bool, float, type(None)})


def _b64decode(text: object) -> bytes:
    if not isinstance(text, str):
        raise CborError("$bytes must be a base64 string")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError as exc:
        raise CborError(f"$bytes is not base64: {exc}") from exc


def _check_int(value: int) -> None:
    if not -(2**63) <= value < 2**63:
        raise CborError(f"integer out of the 64-bit range: {value}")


# --- DAG-CBOR encoding --------------------------------------------------------------


def encode(value: Any) -> bytes:
    """Canonical DAG-CBOR of a data-model value (maps sorted length-first, minimal ints)."""
    out = bytearray()
    _encode(value, out, 0)
    return bytes(out)


def write_head(major: int, length: int, out: bytearray) -> None:
    """A DAG-CBOR item head (major type, minimal-length argument) onto ``out``."""
    if length < 24:
        out.append(major << 5 | length)
    elif length < 0x100:
        out += bytes((major << 5 | 24, length))
    elif length < 0x10000:
        out.append(major << 5 | 25)
        out += length.to_bytes(2, "big")
    elif length < 0x100000000:
        out.append(major << 5 | 26)
        out += length.to_bytes(4, "big")
    else:
        out.append(major << 5 | 27)
        out += length.to_bytes(8, "big")


def _encode(value: Any, out: bytearray, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise CborError(f"nested deeper than {_MAX_DEPTH} levels")
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        _check_int(value)
        if value >= 0:
            write_head(0, value, out)
        else:
            write_head(1, -1 - value, out)
    elif isinstance(value, str):
        data = value.encode("utf-8")
        write_head(3, len(data), out)
        out += data
    elif isinstance(value, bytes):
        write_head(2, len(value), out)
        out += value
    elif isinstance(value, Cid):
        write_head(6, _TAG_CID, out)
        write_head(2, len(value.raw) + 1, out)
        out.append(0)
        out += value.raw
    elif isinstance(value, list):
        write_head(4, len(value), out)
        for item in value:
            _encode(item, out, depth + 1)
    elif isinstance(value, dict):
        keys = []
        for key in value:
            if not isinstance(key, str):
                raise CborError(f"map keys must be strings, got {type(key).__name__}")
            keys.append((len(key.encode("utf-8")), key.encode("utf-8"), key))
        keys.sort()
        write_head(5, len(keys), out)
        for _, encoded, key in keys:
            write_head(3, len(encoded), out)
            out += encoded
            _encode(value[key], out, depth + 1)
    else:
        raise CborError(f"{type(value).__name__} is not in the AT Protocol data model")


# --- DAG-CBOR decoding --------------------------------------------------------------


def decode(data: bytes) -> Any:
    """The data-model value of one DAG-CBOR item; raises :class:`CborError` on anything
    malformed, including trailing bytes."""
    try:
        value, end = _decode(data, 0, 0)
    except (IndexError, struct.error) as exc:
        raise CborError("truncated DAG-CBOR") from exc
    if end != len(data):
        raise CborError(f"{len(data) - end} trailing bytes after the DAG-CBOR item")
    return value


def decode_sequence(data: bytes) -> list[Any]:
    """Every DAG-CBOR item of ``data``, back to back (a firehose frame is two)."""
    items: list[Any] = []
    pos = 0
    try:
        while pos < len(data):
            item, pos = _decode(data, pos, 0)
            items.append(item)
    except (IndexError, struct.error) as exc:
        raise CborError("truncated DAG-CBOR") from exc
    return items


def _length(data: bytes, pos: int, info: int) -> tuple[int, int]:
    if info < 24:
        return info, pos
    if info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise CborError("truncated DAG-CBOR")
        return int.from_bytes(data[pos : pos + size], "big"), pos + size
    raise CborError("indefinite lengths are not DAG-CBOR")


def _decode(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if depth > _MAX_DEPTH:
        raise CborError(f"nested deeper than {_MAX_DEPTH} levels")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if major == 7:
        return _decode_simple(data, pos, info)
    length, pos = _length(data, pos, info)
    if major == 0:
        return length, pos
    if major == 1:
        return -1 - length, pos
    if major in (2, 3):
        chunk = data[pos : pos + length]
        if len(chunk) != length:
            raise CborError("truncated DAG-CBOR")
        if major == 2:
            return bytes(chunk), pos + length
        try:
            return chunk.decode("utf-8"), pos + length
        except UnicodeDecodeError as exc:
            raise CborError(f"text string is not UTF-8: {exc}") from exc
    if major == 4:
        items = []
        for _ in range(length):
            item, pos = _decode(data, pos, depth + 1)
            items.append(item)
        return items, pos
    if major == 5:
        mapping: dict[str, Any] = {}
        for _ in range(length):
            key, pos = _decode(data, pos, depth + 1)
            if not isinstance(key, str):
                raise CborError("map keys must be text strings")
            if key in mapping:
                raise CborError(f"duplicate map key {key!r}")
            mapping[key], pos = _decode(data, pos, depth + 1)
        return mapping, pos
    # major 6: tags; DAG-CBOR allows only 42, a CID link
    if length != _TAG_CID:
        raise CborError(f"tag {length} is not allowed in DAG-CBOR")
    raw, pos = _decode(data, pos, depth + 1)
    if not isinstance(raw, bytes) or not raw.startswith(b"\x00"):
        raise CborError("a CID link must be bytes starting with 0x00")
    return Cid.coerce(raw[1:]), pos


def _decode_simple(data: bytes, pos: int, info: int) -> tuple[Any, int]:
    if info == 20:
        return False, pos
    if info == 21:
        return True, pos
    if info == 22:
        return None, pos
    if info == 27:
        (number,) = struct.unpack(">d", data[pos : pos + 8])
        return number, pos + 8
    raise CborError(f"simple value {info} is not allowed in DAG-CBOR")


# --- records ------------------------------------------------------------------------


def encode_json(value: Any) -> bytes:
    """DAG-CBOR of a JSON-form value."""
    return encode(json_to_ipld(value))


def decode_json(data: bytes) -> Any:
    """The JSON form of a DAG-CBOR block.

    A block in which the two bytes of tag 42 never occur holds no CID link, so
    ``libipld``'s decoder (Rust, about ten times faster) reads it exactly: every byte
    string it returns is a byte string. Whatever it refuses (it is stricter about map key
    order) goes through :func:`decode`, which gives the same value or the reason."""
    if _TAG_CID_HEAD not in data:
        try:
            value = libipld.decode_dag_cbor(data)
        except ValueError:
            pass
        else:
            return ipld_to_json(value)
    return ipld_to_json(decode(data))


def decode_links_raw(data: bytes) -> Any:
    """A DAG-CBOR block with links as raw CID bytes (as ``libipld`` gives them), for
    readers that know which fields are links (MST nodes); falls back to :func:`decode`
    (links as :class:`Cid`) for whatever ``libipld`` refuses."""
    try:
        return libipld.decode_dag_cbor(data)
    except ValueError:
        return decode(data)


def record_cid(record_json: Any) -> str:
    """The CID of a record: CIDv1, dag-cbor, sha2-256 of its DAG-CBOR encoding."""
    return str(Cid.for_dag_cbor(encode_json(record_json)))
