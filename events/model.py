"""The domain events the log stores.

Every observation the appview makes is one of these, appended before anything else
happens. They are plain frozen dataclasses: the event store (``events.store``) maps them to
``eventsourcing`` stored events and back through ``events.codec``; projections read them
back as :class:`Logged` (the event plus its global log position).

Identity in the store: a record event is stored under its at-uri as originator id and its
commit ``rev`` (a TID, as a 63-bit integer) as version, so the store's primary key refuses
a re-delivered event. Identity and account events are stored under ``identity:<did>`` /
``account:<did>`` with the source's sequence number (or the observation time in
microseconds where the source has none) as version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

Source: TypeAlias = Literal["jetstream", "firehose", "backfill", "local"]
RecordOperation: TypeAlias = Literal["create", "update", "delete"]
AccountStatus: TypeAlias = Literal[
    "active",
    "takendown",
    "suspended",
    "deleted",
    "deactivated",
    "desynchronized",
    "throttled",
]

ATBB_PREFIX = "space.atbb."

# Base32-sortable alphabet of TIDs (and therefore of commit revs).
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_BASE32_DIGITS = "0123456789abcdefghijklmnopqrstuv"
# Characters outside the alphabet map to "!" so int() refuses them.
_TID_TO_BASE32 = {i: "!" for i in range(128)}
_TID_TO_BASE32.update({ord(c): _BASE32_DIGITS[i] for i, c in enumerate(_TID_ALPHABET)})


def tid_to_int(tid: str) -> int:
    """The 64-bit integer a TID (or a commit rev) encodes; raises ValueError if malformed.

    A valid TID's top bit is 0 (first character at most 'b'), so it fits a signed BIGINT.
    """
    if len(tid) != 13:
        raise ValueError(f"a TID has 13 characters, got {len(tid)}: {tid!r}")
    # Map the sortable alphabet onto int()'s base-32 digits: one C-level pass.
    digits = tid.translate(_TID_TO_BASE32)
    if not digits.isascii() or not digits.isalnum() or digits != digits.lower():
        raise ValueError(f"invalid TID characters in {tid!r}")
    value = int(digits, 32)
    if value >> 63:
        raise ValueError(f"TID {tid!r} has its top bit set")
    return value


def int_to_tid(value: int) -> str:
    """The 13-character TID of a non-negative 63-bit integer."""
    if value < 0 or value >> 63:
        raise ValueError(f"TID value out of range: {value}")
    chars = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def at_uri(did: str, collection: str, rkey: str) -> str:
    return f"at://{did}/{collection}/{rkey}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The lexicon validator's answer for one record: valid, or invalid with a reason
    a human can read."""

    valid: bool
    reason: str | None = None

    @staticmethod
    def ok() -> Verdict:
        return _OK

    @staticmethod
    def invalid(reason: str) -> Verdict:
        return Verdict(False, reason)


_OK = Verdict(True, None)


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """A record created, updated or deleted in some repo.

    ``record`` is the record as JSON (None on delete), ``cid`` its CID (None on delete).
    ``valid``/``reason`` is the verdict taken at ingest (lexicon, forum ownership); an
    invalid record is still stored, and projections skip it. ``source_cursor`` is the
    source's position (Jetstream ``time_us``) or None. ``observed_at`` is when we saw it,
    in unix microseconds.
    """

    operation: RecordOperation
    did: str
    collection: str
    rkey: str
    rev: str
    cid: str | None
    record: dict[str, Any] | None
    valid: bool
    reason: str | None
    source: Source
    source_cursor: int | None
    observed_at: int

    @property
    def uri(self) -> str:
        return at_uri(self.did, self.collection, self.rkey)

    @property
    def version(self) -> int:
        return tid_to_int(self.rev)


@dataclass(frozen=True, slots=True)
class IdentityChanged:
    """A DID's handle changed (or was re-asserted). ``handle`` may be None: Jetstream
    sends identity events without one when the handle did not resolve."""

    did: str
    handle: str | None
    seq: int
    time: str | None
    source: Source
    source_cursor: int | None
    observed_at: int


@dataclass(frozen=True, slots=True)
class AccountStatusChanged:
    """A hosting status change of an account: active again, taken down, deactivated..."""

    did: str
    active: bool
    status: AccountStatus | None
    seq: int
    time: str | None
    source: Source
    source_cursor: int | None
    observed_at: int


@dataclass(frozen=True, slots=True)
class CommitRejected:
    """One ``space.atbb.*`` operation of a firehose commit that failed verification (its
    signature, a record block that is not its CID, an operation its tree does not hold):
    kept so the log says what was refused and why, never applied.

    It is not a revision of the record: the commit's ``rev`` is only what the unverified
    commit claims, so it is stored under ``rejected:<at-uri>`` at the firehose ``seq``
    and takes no part in the per-record order of revisions (a forged commit claiming a
    far-future rev must not make the genuine ones stale)."""

    did: str
    collection: str
    rkey: str
    operation: RecordOperation
    cid: str | None
    rev: str
    seq: int
    reason: str
    source: Source
    source_cursor: int | None
    observed_at: int

    @property
    def uri(self) -> str:
        return at_uri(self.did, self.collection, self.rkey)


LogEvent: TypeAlias = RecordEvent | IdentityChanged | AccountStatusChanged | CommitRejected


@dataclass(frozen=True, slots=True)
class Logged:
    """An event as read back from the log, with its global position (notification id).
    Positions increase with append order; there may be gaps."""

    position: int
    event: LogEvent


def originator_of(event: LogEvent) -> tuple[str, int]:
    """The (originator id, version) pair that identifies an event in the store."""
    if isinstance(event, RecordEvent):
        return event.uri, event.version
    if isinstance(event, IdentityChanged):
        return f"identity:{event.did}", event.seq
    if isinstance(event, CommitRejected):
        return f"rejected:{event.uri}", event.seq
    return f"account:{event.did}", event.seq


def is_atbb_collection(collection: str) -> bool:
    return collection.startswith(ATBB_PREFIX)
