"""A deterministic forum scenario: the accounts, and the ordered writes they make.

``build_scenario(seed, size)`` gives a Forum account and members (with the DIDs the devnet
PDS hosts will give them) and the story of ``appview.devnet.story``: operations (actor,
create/put/delete, collection, rkey, record, cid). The same seed gives the same scenario
byte for byte. Operations are generated lazily (``Scenario.operations()`` regenerates
them on each call) so a benchmark can stream hundreds of thousands without holding them.

``scenario_to_jetstream_lines`` turns a scenario into Jetstream v1 lines without any PDS:
revs from a per-repo TID clock, real CIDs, optional duplicates and re-deliveries.
"""

from __future__ import annotations

import hashlib
import random
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, TypeAlias

from appview.devnet.jetstream_format import account_line, commit_line, go_json, identity_line
from appview.devnet.keys import SigningKey
from appview.devnet.plc import genesis_did
from appview.devnet.scenario_model import (
    SIZES,
    Operation,
    ScenarioAccount,
    ScenarioSize,
    slug,
    tid,
)
from appview.devnet.sink import CommitOp
from appview.devnet.story import tell
from events.records import Shape

__all__ = [
    "EPOCH_US",
    "SIZES",
    "Operation",
    "Scenario",
    "ScenarioAccount",
    "ScenarioSize",
    "SizeName",
    "build_scenario",
    "scenario_to_jetstream_lines",
]

EPOCH_US = 1_772_442_000_000_000  # 2026-03-02T09:00:00Z: a fixed past, for determinism

SizeName: TypeAlias = Literal["small", "large"]


@dataclass(frozen=True)
class Scenario:
    seed: int
    size: ScenarioSize
    forum: ScenarioAccount
    members: tuple[ScenarioAccount, ...]
    forum_name: str
    start_us: int = EPOCH_US
    real_dids: bool = True
    shape: Shape = "original"

    @property
    def accounts(self) -> tuple[ScenarioAccount, ...]:
        return (self.forum, *self.members)

    def account(self, alias: str) -> ScenarioAccount:
        for account in self.accounts:
            if account.alias == alias:
                return account
        raise KeyError(f"no account {alias!r} in the scenario")

    def operations(self) -> Iterator[Operation]:
        """Every write in order, generated afresh (deterministically) on each call."""
        return tell(
            self.seed, self.size, self.forum, self.members, self.forum_name, self.start_us,
            self.shape,
        )

    def operation_list(self) -> list[Operation]:
        return list(self.operations())


# --- accounts -----------------------------------------------------------------------

_FORUM_NAMES = (
    "The Workshop", "Bench Notes", "Solder & Sawdust", "The Fixers' Guild", "Garden Shed Club"
)
_FIRST = (
    "ada", "grace", "linus", "margaret", "alan", "hedy", "dennis", "barbara", "ken", "radia",
    "edsger", "frances", "niklaus", "sophie", "tim", "katherine", "donald", "annie", "claude",
    "mary", "guido", "lynn", "bjarne", "jean", "yukihiro", "carol", "rasmus", "evelyn",
)
_LAST = (
    "lovelace", "hopper", "torvalds", "hamilton", "turing", "lamarr", "ritchie", "liskov",
    "thompson", "perlman", "dijkstra", "allen", "wirth", "wilson", "berners", "johnson",
    "knuth", "easley", "shannon", "keller", "rossum", "conway", "stroustrup", "sammet",
)


def _hashed_did(seed: int, alias: str) -> str:
    digest = hashlib.sha256(f"atbb-scenario/{seed}/{alias}".encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "did:plc:" + "".join(alphabet[byte % 32] for byte in digest[:24])


def _account(
    seed: int, alias: str, handle: str, pds: str, *, real_did: bool
) -> ScenarioAccount:
    key_seed = f"atbb-scenario/{seed}/{alias}".encode()
    did = (
        genesis_did(SigningKey.from_seed(key_seed), handle, pds)
        if real_did
        else _hashed_did(seed, alias)
    )
    return ScenarioAccount(alias, handle, did, f"pw-{alias}-{seed}", key_seed, pds)


def build_scenario(
    seed: int,
    size: SizeName | ScenarioSize = "small",
    *,
    pds_names: tuple[str, ...] = ("pds1",),
    real_dids: bool = True,
    shape: Shape = "original",
) -> Scenario:
    """The scenario of ``seed`` at ``size`` ("small", "large" or explicit counts), with
    members spread round-robin over ``pds_names`` (the Forum account on the first).

    ``real_dids=False`` derives DIDs from a hash instead of a signed PLC genesis operation
    (milliseconds per account): for Jetstream-only streams that never meet a PDS.

    ``shape`` is how its records are written: ``"original"`` as the original atBB writes
    them (wrapped references with ``$type``, token names without dashes), ``"bare"`` with
    bare strongRefs and ``--`` token names (``events.records``); the same seed gives the
    same story either way, only the records' shapes and so their CIDs differ."""
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
        counts = SIZES[size]
    else:
        counts = size
    counts.check()
    if not pds_names:
        raise ValueError("a scenario needs at least one PDS host name")
    rng = random.Random(seed)
    forum_name = rng.choice(_FORUM_NAMES)
    forum = _account(seed, "forum", f"{slug(forum_name)}.test", pds_names[0], real_did=real_dids)
    members = []
    taken: set[str] = set()
    for index in range(counts.members):
        base = f"{rng.choice(_FIRST)}-{rng.choice(_LAST)}"
        handle, suffix = f"{base}.test", 2
        while handle in taken:
            handle, suffix = f"{base}{suffix}.test", suffix + 1
        taken.add(handle)
        pds = pds_names[(index + 1) % len(pds_names)]
        members.append(_account(seed, f"member-{index:04d}", handle, pds, real_did=real_dids))
    return Scenario(seed, counts, forum, tuple(members), forum_name, real_dids=real_dids,
                    shape=shape)




# --- Jetstream lines without a PDS ----------------------------------------------------

_OPERATIONS: Mapping[str, Literal["create", "update", "delete"]] = MappingProxyType(
    {"create": "create", "put": "update", "delete": "delete"}
)


def clock_id(pds: str) -> int:
    """The TID clock id a devnet PDS host of this name uses for revs (as ``PdsHost``)."""
    return zlib.crc32(pds.encode()) % 1024


def scenario_to_jetstream_lines(
    scenario: Scenario,
    *,
    start_time_us: int,
    spacing_us: int | None = None,
    duplicate_rate: float = 0.0,
    redelivery_rate: float = 0.0,
    redelivery_window: int = 50,
    delivery_seed: int | None = None,
) -> Iterator[str]:
    """The scenario as a Jetstream v1 stream: an identity and an account event per account,
    then one commit event per operation, ``time_us`` from ``start_time_us`` on (the
    scenario's own spacing, or ``spacing_us`` apart), revs from a per-repo TID clock.

    Delivery faults, drawn from ``delivery_seed`` (default: the scenario's seed): after a
    line, with ``duplicate_rate`` the same line again; with ``redelivery_rate`` the last
    ``redelivery_window`` lines again, as a consumer sees after reconnecting with a rewind.
    """
    if not 0 <= duplicate_rate <= 1 or not 0 <= redelivery_rate <= 1:
        raise ValueError("duplicate_rate and redelivery_rate must be between 0 and 1")
    if redelivery_window < 1 or (spacing_us is not None and spacing_us < 1):
        raise ValueError("redelivery_window and spacing_us must be at least 1")
    rng = random.Random(scenario.seed if delivery_seed is None else delivery_seed)
    recent: deque[str] = deque(maxlen=redelivery_window)

    def deliver(line: str) -> Iterator[str]:
        recent.append(line)
        if rng.random() < duplicate_rate:
            yield line
        if rng.random() < redelivery_rate:
            yield from list(recent)

    faulty = duplicate_rate > 0 or redelivery_rate > 0
    time_us = start_time_us
    seq = 0
    for account in scenario.accounts:
        for line in (
            identity_line(account.did, time_us, account.handle, seq + 1),
            account_line(account.did, time_us + 1, True, None, seq + 2),
        ):
            yield line
            if faulty:
                yield from deliver(line)
        seq += 2
        time_us += 2
    clocks = {account.did: clock_id(account.pds) for account in scenario.accounts}
    last_rev: dict[str, int] = {}
    offset = time_us - scenario.start_us
    for op in scenario.operations():
        if spacing_us is not None:
            time_us += spacing_us
        else:
            time_us = max(time_us + 1, op.at_us + offset)
        did = op.did
        rev_us = max(time_us, last_rev.get(did, 0) + 1)
        last_rev[did] = rev_us
        rev = tid(rev_us << 10 | clocks[did])
        if op.record is None:
            delete = CommitOp("delete", op.collection, op.rkey, None, None)
            line = commit_line(did, time_us, rev, delete)
        else:
            # The hot path: story DIDs, NSIDs, rkeys and CIDs need no JSON escaping, and
            # story records are built in Jetstream's key order (tests hold both).
            line = (
                f'{{"did":"{did}","time_us":{time_us},"kind":"commit","commit":{{'
                f'"rev":"{rev}","operation":"{_OPERATIONS[op.op]}",'
                f'"collection":"{op.collection}","rkey":"{op.rkey}",'
                f'"record":{go_json(op.record)},"cid":"{op.cid}"}}}}'
            )
        yield line
        if faulty:
            yield from deliver(line)
