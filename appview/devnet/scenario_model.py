"""The vocabulary of a devnet forum scenario: the collections it writes, the default
roles, sizes, accounts and operations, and fast helpers for record CIDs, datetimes, TIDs
and slugs (each checked against the reference implementation by a test)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import libipld

from events.model import at_uri

MOD_ACTION_PREFIX = "space.atbb.modAction."


Write: TypeAlias = Literal["create", "put", "delete"]


@dataclass(frozen=True, slots=True)
class ScenarioSize:
    """How big the forum is. Rates are per post: ``reaction_rate`` reactions follow each
    post on average; an edit, an author delete (of a reply) or a random moderation action
    follows with the other rates. ``days`` is the span of the timeline."""

    members: int = 10
    categories: int = 3
    boards: int = 6
    topics: int = 40
    replies_per_topic: float = 5.0
    edit_rate: float = 0.05
    delete_rate: float = 0.03
    mod_action_rate: float = 0.02
    reaction_rate: float = 0.6
    days: float = 21.0

    def check(self) -> None:
        """Raises ValueError saying what is out of range."""
        if self.members < 1:
            raise ValueError(f"a scenario needs at least 1 member, got {self.members}")
        if self.categories < 1 or self.boards < self.categories:
            raise ValueError(
                f"need at least 1 category and a board per category, got "
                f"{self.categories} categories and {self.boards} boards"
            )
        if self.topics < 1 or self.replies_per_topic < 0:
            raise ValueError("need at least 1 topic and a non-negative replies_per_topic")
        for name in ("edit_rate", "delete_rate", "mod_action_rate"):
            rate = getattr(self, name)
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")
        if self.reaction_rate < 0 or self.days <= 0:
            raise ValueError("reaction_rate must be >= 0 and days > 0")

    @property
    def posts(self) -> int:
        return self.topics + round(self.topics * self.replies_per_topic)


SIZES: Mapping[str, ScenarioSize] = MappingProxyType(
    {
        "small": ScenarioSize(),
        "large": ScenarioSize(
            members=200, categories=5, boards=15, topics=500, replies_per_topic=9.0, days=90.0
        ),
    }
)


@dataclass(frozen=True, slots=True)
class ScenarioAccount:
    """An account of the scenario. ``did`` is what ``PdsHost(pds).create_account(handle,
    password, seed=key_seed)`` gives (when the scenario was built with real DIDs)."""

    alias: str
    handle: str
    did: str
    password: str
    key_seed: bytes
    pds: str


@dataclass(frozen=True, slots=True)
class Operation:
    """One write: ``actor`` (an account alias) does ``op`` on its own repo. ``record`` is
    the record as JSON and ``cid`` its CID (both None on delete); ``at_us`` is the
    scenario time of the write (the record's createdAt or updatedAt)."""

    actor: str
    did: str
    op: Write
    collection: str
    rkey: str
    record: dict[str, Any] | None
    cid: str | None
    at_us: int

    @property
    def uri(self) -> str:
        return at_uri(self.did, self.collection, self.rkey)


def record_cid(record: dict[str, Any]) -> str:
    """The record's CID (CIDv1 dag-cbor sha2-256). Scenario records are plain JSON (no
    ``$link``/``$bytes``, no floats), where libipld's encoder writes the same bytes as
    ``appview.repos.cbor`` (a test holds them equal) at a seventh of the cost."""
    block = libipld.encode_dag_cbor(record)
    cid: str = libipld.encode_cid(b"\x01\x71\x12\x20" + hashlib.sha256(block).digest())
    return cid


def iso(at_us: int) -> str:
    """RFC 3339 UTC with milliseconds, as atproto records write datetimes."""
    t = time.gmtime(at_us // 1_000_000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{at_us // 1000 % 1000:03d}Z"
    )


_TID_DIGITS = "234567abcdefghijklmnopqrstuvwxyz"
_TID_PAIRS = tuple(a + b for a in _TID_DIGITS for b in _TID_DIGITS)


def tid(value: int) -> str:
    """``events.model.int_to_tid`` at a fifth of the cost: one digit, then six pairs of
    digits looked up ten bits at a time."""
    pairs = _TID_PAIRS
    return (
        _TID_DIGITS[value >> 60 & 31]
        + pairs[value >> 50 & 1023]
        + pairs[value >> 40 & 1023]
        + pairs[value >> 30 & 1023]
        + pairs[value >> 20 & 1023]
        + pairs[value >> 10 & 1023]
        + pairs[value & 1023]
    )


def slug(name: str) -> str:
    """A lowercase ``a-z0-9-`` slug of a name."""
    out = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in name.lower())
    return "-".join(part for part in out.split("-") if part)
