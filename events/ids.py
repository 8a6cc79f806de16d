"""AT Protocol identifiers as validated value types.

Each type has ``parse(text)``, which returns the value or raises ``ValueError`` saying
what is wrong, and ``is_valid(value)``, which never raises (it accepts any object, so
callers can hand it whatever a JSON document held). The string types are ``str``
subclasses: a parsed value goes wherever a string goes, with no conversion.

Syntax follows the atproto specifications (https://atproto.com/specs/): DIDs are
restricted to the two blessed methods, ``did:plc`` and ``did:web``; CIDs to CIDv1 in the
base32 multibase, as repositories write them. The patterns are compiled once, as class
constants.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, TypeGuard

import libipld

from events.model import int_to_tid, tid_to_int

# Building blocks shared by the patterns below (and by the at-uri pattern that combines
# them), kept as plain strings so each one is written once. Labels are matched loosely
# (``[a-zA-Z0-9-]+``) and their hyphen and length rules checked by ``_labels_ok``: the
# strict per-label regex backtracks on every label and costs twice as much.
_LABEL: Final = r"[a-zA-Z0-9-]+"
_DID_PLC: Final = r"did:plc:[a-z2-7]{24}"
# The atproto did:web profile: a bare hostname, no path; a port only on localhost.
_DID_WEB: Final = rf"did:web:(?:localhost%3[Aa][0-9]{{1,5}}|{_LABEL}(?:\.{_LABEL})*)"
_HANDLE: Final = rf"(?:{_LABEL}\.)+[a-zA-Z][a-zA-Z0-9-]*"
_NSID: Final = rf"[a-zA-Z][a-zA-Z0-9-]*(?:\.{_LABEL})+\.[a-zA-Z][a-zA-Z0-9]*"
_RKEY: Final = r"(?!\.{1,2}\Z)[A-Za-z0-9._:~-]{1,512}"
_TID: Final = r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}"
# The CIDs repositories write (CIDv1, dag-cbor or raw, sha2-256) have one fixed shape; one
# that fits it is well-formed by construction (the last character's two padding bits are
# zero), so it needs no decoding. Anything else goes through libipld.
_COMMON_CID: Final = re.compile(r"baf[yk]rei[a-h][a-z2-7]{50}[aeimquy4]")

MAX_DID_LENGTH: Final = 2048
MAX_HANDLE_LENGTH: Final = 253
MAX_NSID_LENGTH: Final = 317
MAX_AT_URI_LENGTH: Final = 8192
MAX_CID_LENGTH: Final = 256


def _labels_ok(text: str) -> bool:
    """DNS-style labels: none starts or ends with a hyphen, none is over 63 characters."""
    if text.startswith("-") or text.endswith("-") or "-." in text or ".-" in text:
        return False
    return len(text) <= 63 or all(len(label) <= 63 for label in text.split("."))


def _host_ok(did: str) -> bool:
    """The hostname rules of a did:web (a did:plc has nothing more to check)."""
    if not did.startswith("did:web:") or "%3" in did:
        return True
    host = did[len("did:web:") :]
    return len(host) <= MAX_HANDLE_LENGTH and _labels_ok(host)


def _shown(value: object) -> str:
    """A short rendering of a rejected value for an error message."""
    text = repr(value) if isinstance(value, str) else f"a {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


class DID(str):
    """A ``did:plc`` (24 base32 characters) or ``did:web`` (a hostname) identifier."""

    PATTERN: ClassVar[re.Pattern[str]] = re.compile(rf"(?:{_DID_PLC}|{_DID_WEB})")

    @classmethod
    def is_valid(cls, value: object) -> TypeGuard[str]:
        return (
            isinstance(value, str)
            and len(value) <= MAX_DID_LENGTH
            and cls.PATTERN.fullmatch(value) is not None
            and _host_ok(value)
        )

    @classmethod
    def parse(cls, text: str) -> DID:
        if cls.is_valid(text):
            return cls(text)
        if isinstance(text, str) and text.startswith("did:plc:"):
            raise ValueError(
                f"not a did:plc (24 characters of a-z2-7 after 'did:plc:'): {_shown(text)}"
            )
        if isinstance(text, str) and text.startswith("did:web:"):
            raise ValueError(f"not a did:web (a hostname after 'did:web:'): {_shown(text)}")
        raise ValueError(f"not a did:plc or did:web DID: {_shown(text)}")

    @property
    def method(self) -> str:
        return self.split(":", 2)[1]


class Handle(str):
    """A handle (a DNS name of two labels or more). ``parse`` lowercases it: handles are
    case-insensitive and compared in lowercase."""

    PATTERN: ClassVar[re.Pattern[str]] = re.compile(_HANDLE)

    @classmethod
    def is_valid(cls, value: object) -> TypeGuard[str]:
        return (
            isinstance(value, str)
            and len(value) <= MAX_HANDLE_LENGTH
            and cls.PATTERN.fullmatch(value) is not None
            and _labels_ok(value)
        )

    @classmethod
    def parse(cls, text: str) -> Handle:
        if not cls.is_valid(text):
            raise ValueError(
                "not a handle (DNS labels of a-z0-9 and inner hyphens, at least two, "
                f"the last starting with a letter, at most 253 characters): {_shown(text)}"
            )
        return cls(text.lower())


class NSID(str):
    """A namespaced identifier such as ``space.atbb.post``: a reversed domain authority
    and a name (letters and digits, not starting with a digit)."""

    PATTERN: ClassVar[re.Pattern[str]] = re.compile(_NSID)

    @classmethod
    def is_valid(cls, value: object) -> TypeGuard[str]:
        return (
            isinstance(value, str)
            and len(value) <= MAX_NSID_LENGTH
            and cls.PATTERN.fullmatch(value) is not None
            and _labels_ok(value)
        )

    @classmethod
    def parse(cls, text: str) -> NSID:
        if not cls.is_valid(text):
            raise ValueError(
                "not an NSID (at least three dot-separated segments, the last one letters "
                f"and digits starting with a letter): {_shown(text)}"
            )
        return cls(text)

    @property
    def authority(self) -> str:
        return self.rsplit(".", 1)[0]

    @property
    def name(self) -> str:
        return self.rsplit(".", 1)[1]


class TID(str):
    """A timestamp identifier: 13 characters of ``234567a-z``, sortable, encoding
    ``(unix microseconds << 10) | clock id``. Commit revs use the same syntax."""

    PATTERN: ClassVar[re.Pattern[str]] = re.compile(_TID)

    @classmethod
    def is_valid(cls, value: object) -> TypeGuard[str]:
        return isinstance(value, str) and cls.PATTERN.fullmatch(value) is not None

    @classmethod
    def parse(cls, text: str) -> TID:
        if not cls.is_valid(text):
            raise ValueError(
                "not a TID (13 characters of 234567abcdefghijklmnopqrstuvwxyz, the first "
                f"at most 'j'): {_shown(text)}"
            )
        return cls(text)

    @classmethod
    def from_int(cls, value: int) -> TID:
        return cls(int_to_tid(value))

    @classmethod
    def from_time(cls, unix_us: int, clock_id: int = 0) -> TID:
        if not 0 <= clock_id < 1024:
            raise ValueError(f"a TID clock id is 0..1023, got {clock_id}")
        return cls.from_int((unix_us << 10) | clock_id)

    def to_int(self) -> int:
        return tid_to_int(self)

    @property
    def unix_us(self) -> int:
        return self.to_int() >> 10


class RecordKey(str):
    """A record key: 1 to 512 characters of ``A-Za-z0-9._:~-``, neither ``.`` nor ``..``."""

    PATTERN: ClassVar[re.Pattern[str]] = re.compile(_RKEY)

    @classmethod
    def is_valid(cls, value: object) -> TypeGuard[str]:
        return isinstance(value, str) and cls.PATTERN.fullmatch(value) is not None

    @classmethod
    def parse(cls, text: str) -> RecordKey:
        if not cls.is_valid(text):
            raise ValueError(
                "not a record key (1 to 512 characters of A-Za-z0-9._:~-, not '.' or "
                f"'..'): {_shown(text)}"
            )
        return cls(text)


class CID(str):
    """A content identifier as a string: CIDv1 in base32 (multibase prefix ``b``), which
    ``libipld`` must also decode (so the multihash is well-formed)."""

    PATTERN: ClassVar[re.Pattern[str]] = re.compile(r"b[a-z2-7]{8,}")

    @classmethod
    def is_valid(cls, value: object) -> TypeGuard[str]:
        return cls._problem(value) is None

    @classmethod
    def parse(cls, text: str) -> CID:
        problem = cls._problem(text)
        if problem is not None:
            raise ValueError(problem)
        return cls(text)

    @classmethod
    def _problem(cls, value: object) -> str | None:
        if not isinstance(value, str):
            return f"not a CID: {_shown(value)}"
        if _COMMON_CID.fullmatch(value) is not None:
            return None
        if len(value) > MAX_CID_LENGTH or cls.PATTERN.fullmatch(value) is None:
            return f"not a CIDv1 in base32 ('b' then a-z2-7): {_shown(value)}"
        try:
            decoded = libipld.decode_cid(value)
        except Exception as exc:  # libipld reports every malformation as some exception
            return f"not a decodable CID ({exc}): {_shown(value)}"
        if not isinstance(decoded, dict) or decoded.get("version") != 1:
            return f"not a CIDv1: {_shown(value)}"
        return None


@dataclass(frozen=True, slots=True)
class AtUri:
    """``at://authority[/collection[/rkey]]``: the authority a DID or a handle, the
    collection an NSID, the rkey a record key. No query or fragment."""

    authority: str
    collection: str | None = None
    rkey: str | None = None

    PATTERN: ClassVar[re.Pattern[str]] = re.compile(
        rf"at://(?P<authority>{_DID_PLC}|{_DID_WEB}|{_HANDLE})"
        rf"(?:/(?P<collection>{_NSID})(?:/(?P<rkey>{_RKEY}))?)?"
    )

    @classmethod
    def is_valid(cls, value: object) -> TypeGuard[str]:
        return cls._match(value) is not None

    @classmethod
    def parse(cls, text: str) -> AtUri:
        match = cls._match(text)
        if match is None:
            raise ValueError(
                "not an at-uri (at://<did or handle>[/<collection NSID>[/<record key>]]): "
                f"{_shown(text)}"
            )
        return cls(match["authority"], match["collection"], match["rkey"])

    @classmethod
    def _match(cls, value: object) -> re.Match[str] | None:
        if not isinstance(value, str) or len(value) > MAX_AT_URI_LENGTH:
            return None
        match = cls.PATTERN.fullmatch(value)
        if match is None:
            return None
        authority, collection = match["authority"], match["collection"]
        if authority.startswith("did:"):
            if not _host_ok(authority):
                return None
        elif len(authority) > MAX_HANDLE_LENGTH or not _labels_ok(authority):
            return None
        if collection is not None and (
            len(collection) > MAX_NSID_LENGTH or not _labels_ok(collection)
        ):
            return None
        return match

    @classmethod
    def of(cls, did: str, collection: str, rkey: str) -> AtUri:
        """The at-uri of a record, checking each part."""
        return cls(DID.parse(did), NSID.parse(collection), RecordKey.parse(rkey))

    @property
    def is_record(self) -> bool:
        """Whether the uri names one record (it has a collection and an rkey)."""
        return self.rkey is not None

    @property
    def did(self) -> str | None:
        """The authority when it is a DID (None for a handle)."""
        return self.authority if self.authority.startswith("did:") else None

    def __str__(self) -> str:
        text = f"at://{self.authority}"
        if self.collection is not None:
            text += f"/{self.collection}"
            if self.rkey is not None:
                text += f"/{self.rkey}"
        return text


@dataclass(frozen=True, slots=True)
class StrongRef:
    """``com.atproto.repo.strongRef``: a record's at-uri and the CID of the version meant.

    ``parse`` takes the JSON object (``{"uri": ..., "cid": ...}``); other keys, such as a
    ``$type``, are allowed and ignored, as the lexicon's open objects allow.
    """

    uri: AtUri
    cid: CID

    @classmethod
    def is_valid(cls, value: object) -> bool:
        try:
            cls.parse(value)
        except ValueError:
            return False
        return True

    @classmethod
    def parse(cls, value: object) -> StrongRef:
        if not isinstance(value, Mapping):
            raise ValueError(f"a strongRef is an object {{uri, cid}}, got {_shown(value)}")
        uri, cid = value.get("uri"), value.get("cid")
        if uri is None or cid is None:
            missing = " and ".join(k for k, v in (("uri", uri), ("cid", cid)) if v is None)
            raise ValueError(f"a strongRef needs uri and cid; {missing} missing")
        if not isinstance(uri, str):
            raise ValueError(f"strongRef.uri: {_shown(uri)} is not a string")
        parsed = AtUri.parse(uri)
        if not parsed.is_record:
            raise ValueError(f"strongRef.uri: {uri!r} does not name a record")
        if not isinstance(cid, str):
            raise ValueError(f"strongRef.cid: {_shown(cid)} is not a string")
        return cls(parsed, CID.parse(cid))

    def to_json(self) -> dict[str, str]:
        return {"uri": str(self.uri), "cid": str(self.cid)}
