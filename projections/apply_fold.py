"""Folding a batch of log events in memory before anything is written.

Per record (at-uri) only two events matter: the one with the greatest rev (it decides
``rev``, ``deleted`` and ``indexed_at``) and the non-delete one with the greatest rev (it
supplies the fields). Both are maxima, so folding commutes: any order of the same events,
any split into batches, gives the same rows. Identity and account events keep the one
with the greatest seq per DID. Events that do not count are collected with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from events.collections import (
    BOARD,
    CATEGORY,
    FORUM,
    MEMBERSHIP,
    MOD_ACTION,
    POST,
    REACTION,
    ROLE,
    ROLE_ASSIGNMENT,
    THEME,
    THEME_POLICY,
)
from events.lexicon import LexiconValidator, is_superseded
from events.model import (
    AccountStatusChanged,
    CommitRejected,
    IdentityChanged,
    Logged,
    RecordEvent,
)
from events.records import reference

FORUM_OWNED = frozenset(
    {FORUM, CATEGORY, BOARD, ROLE, ROLE_ASSIGNMENT, THEME, THEME_POLICY, MOD_ACTION}
)
MEMBER_OWNED = frozenset({MEMBERSHIP, POST, REACTION})
SINGLETONS = frozenset({FORUM, THEME_POLICY})


@dataclass(slots=True)
class EventFold:
    """The two events of one record that decide its row."""

    top: RecordEvent
    live: RecordEvent | None


class Version(NamedTuple):
    """What a row needs of one event of a record: its fields already extracted (None
    for a delete). Plain values, so a prepared batch crosses a process boundary cheaply
    (``projections.prepare``)."""

    uri: str
    did: str
    rkey: str
    rev: str
    operation: str
    cid: str | None
    observed_at: int
    fields: dict[str, Any] | None


class RecordFold(NamedTuple):
    """The two versions of one record that decide its row."""

    top: Version
    live: Version | None


@dataclass(slots=True)
class Rejection:
    position: int
    uri: str
    did: str
    collection: str
    reason: str


@dataclass
class EventBatchFold:
    """A batch folded, still as events (``projections.prepare`` extracts their fields)."""

    records: dict[str, dict[str, EventFold]] = field(default_factory=dict)
    identities: dict[str, IdentityChanged] = field(default_factory=dict)
    accounts: dict[str, AccountStatusChanged] = field(default_factory=dict)
    # every live theme version: (uri, cid) -> the event with the smallest rev carrying it
    theme_versions: dict[tuple[str, str], RecordEvent] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    first_position: int = 0
    last_position: int = 0
    count: int = 0


@dataclass
class FoldedBatch:
    """A batch as the projection applies it: per collection, per record, the versions
    that decide its row.

    It is pickled (``projections.prepare_process``) with its versions as plain tuples:
    a named tuple pickles through a Python-level ``__getnewargs__`` call each, and a
    batch of 10,000 events holds about 20,000 of them (measured: 142 ms to pickle a
    batch that way, 98 ms this way, median of five; pickling was a fifth of the
    preparing process's time, and that process is the slower of the two on SQLite)."""

    records: dict[str, dict[str, RecordFold]] = field(default_factory=dict)
    identities: dict[str, IdentityChanged] = field(default_factory=dict)
    accounts: dict[str, AccountStatusChanged] = field(default_factory=dict)
    # every live theme version: (uri, cid) -> (the smallest rev carrying it, its fields)
    theme_versions: dict[tuple[str, str], tuple[str, dict[str, Any]]] = field(
        default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    first_position: int = 0
    last_position: int = 0
    count: int = 0
    # records of the batch known to have no row yet (``projections.prepare.FreshRecords``):
    # merging them reads nothing
    fresh: frozenset[str] = frozenset()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # a version that is both top and live goes as one tuple object: pickled once,
        # rebuilt once
        plain = {collection: {uri: (top := tuple(fold.top), top if fold.live is fold.top
                                    else None if fold.live is None else tuple(fold.live))
                              for uri, fold in folds.items()}
                 for collection, folds in self.records.items()}
        return (_unpickle_folded_batch,
                (plain, self.identities, self.accounts, self.theme_versions, self.rejected,
                 self.first_position, self.last_position, self.count, self.fresh))


def _unpickle_folded_batch(plain: dict[str, dict[str, tuple[Any, ...]]],
                           *rest: Any) -> FoldedBatch:
    make = tuple.__new__  # in C: Version._make would run Python code per version
    records: dict[str, dict[str, RecordFold]] = {}
    for collection, folds in plain.items():
        rebuilt: dict[str, RecordFold] = {}
        for uri, (top, live) in folds.items():
            version = make(Version, top)
            rebuilt[uri] = make(RecordFold, (
                version, version if live is top else None if live is None
                else make(Version, live)))
        records[collection] = rebuilt
    return FoldedBatch(records, *rest)


class VerdictReview:
    """Takes again the verdicts an earlier validator gave that the current one may not
    (``events.lexicon.SUPERSEDED_REASONS``; ADR 0012): a record the log holds as invalid
    for its shape counts once the validator reads that shape. The validator is loaded at
    the first such verdict, and a review pickles as its forum DID alone (it goes to the
    processes preparing a load's batches)."""

    def __init__(self, forum_did: str) -> None:
        self.forum_did = forum_did
        self._validator: LexiconValidator | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (VerdictReview, (self.forum_did,))

    def reason(self, event: RecordEvent) -> str | None:
        """Why ``event`` is invalid today, or None when it is valid."""
        if event.valid:
            return None
        if not is_superseded(event.reason):
            return event.reason or "marked invalid at ingest"
        if self._validator is None:
            self._validator = LexiconValidator.load()
        verdict = self._validator.reconsider(event, forum_did=self.forum_did)
        return None if verdict.valid else verdict.reason or "marked invalid at ingest"


def structural_problem(event: RecordEvent) -> str | None:
    """Why a live record cannot take part in the read models even though ingest let it
    through (defence in depth), or None."""
    record = event.record
    if not isinstance(record, dict):
        return "the record is not a JSON object"
    if event.collection == POST:
        reply = record.get("reply")
        if reply is None:
            if not _at_uri(reference(record, "board")[0]):
                return "a topic (a post without reply) needs a board strongRef"
            if not isinstance(record.get("title"), str) or not record["title"]:
                return "a topic (a post without reply) needs a title"
        elif not (
            isinstance(reply, dict)
            and _ref_uri(reply.get("root"))
            and _ref_uri(reply.get("parent"))
        ):
            return "a reply needs reply.root and reply.parent strongRefs"
    return None


def _at_uri(uri: str | None) -> str | None:
    return uri if uri is not None and uri.startswith("at://") else None


def _ref_uri(value: Any) -> str | None:
    if isinstance(value, dict):
        uri = value.get("uri")
        if isinstance(uri, str):
            return _at_uri(uri)
    return None


def rejection_reason(
    event: RecordEvent, forum_did: str, review: VerdictReview | None = None
) -> str | None:
    """Why a record event does not count, or None when it does. ``review`` takes
    superseded verdicts again (one for ``forum_did`` when not given)."""
    if not event.valid:
        problem = (review or VerdictReview(forum_did)).reason(event)
        if problem is not None:
            return problem
    collection = event.collection
    if collection in FORUM_OWNED:
        if event.did != forum_did:
            return f"{collection} is forum-owned and only counts from {forum_did}"
        if collection in SINGLETONS and event.rkey != "self":
            return f"{collection} has the record key 'self', not {event.rkey!r}"
    elif collection not in MEMBER_OWNED:
        return f"unknown collection {collection}"
    if event.operation != "delete":
        return structural_problem(event)
    return None


def fold(
    batch: Sequence[Logged], forum_did: str, review: VerdictReview | None = None
) -> EventBatchFold:
    folded = EventBatchFold(count=len(batch))
    review = review or VerdictReview(forum_did)
    if batch:
        folded.first_position = min(logged.position for logged in batch)
    for logged in batch:
        folded.last_position = max(folded.last_position, logged.position)
        event = logged.event
        if isinstance(event, RecordEvent):
            reason = rejection_reason(event, forum_did, review)
            if reason is not None:
                folded.rejected.append(
                    Rejection(logged.position, event.uri, event.did, event.collection, reason)
                )
                continue
            _fold_record(folded, event)
        elif isinstance(event, CommitRejected):
            folded.rejected.append(Rejection(logged.position, event.uri, event.did,
                                             event.collection, event.reason))
        elif isinstance(event, IdentityChanged):
            known = folded.identities.get(event.did)
            if known is None or event.seq > known.seq:
                folded.identities[event.did] = event
        else:
            seen = folded.accounts.get(event.did)
            if seen is None or event.seq > seen.seq:
                folded.accounts[event.did] = event
    return folded


def _fold_record(folded: EventBatchFold, event: RecordEvent) -> None:
    by_uri = folded.records.setdefault(event.collection, {})
    uri = event.uri
    live = event if event.operation != "delete" else None
    current = by_uri.get(uri)
    if current is None:
        by_uri[uri] = EventFold(event, live)
    else:
        # On an equal rev the first event applied wins: the log never holds two events
        # of one record at one rev.
        if event.rev > current.top.rev:
            current.top = event
        if live is not None and (current.live is None or live.rev > current.live.rev):
            current.live = live
    if live is not None and event.collection == THEME and event.cid:
        key = (uri, event.cid)
        known = folded.theme_versions.get(key)
        if known is None or event.rev < known.rev:
            folded.theme_versions[key] = event
