"""Preparing a batch for the forum projection: fold it (``apply_fold``) and extract each
deciding version's fields (``apply_records``). It reads nothing but the batch, so it can
run in another process while the projection applies the batch before
(``projections.prepare_process``); a load's :class:`FreshRecords` remembers which
records the earlier batches held, where they are applied."""

from __future__ import annotations

from collections.abc import Sequence

from events import collections as c
from events.model import Logged
from projections.apply_fold import FoldedBatch, RecordFold, VerdictReview, fold
from projections.apply_records import TABLES, theme_fields
from projections.carried_html import CarriedHtml
from projections.post_html import post_html


def prepare(
    batch: Sequence[Logged], forum_did: str, review: VerdictReview | None = None,
    carried: CarriedHtml | None = None,
) -> FoldedBatch:
    """The batch folded, with each deciding version's fields; posts' HTML taken from
    ``carried`` where it has the same text, rendered otherwise."""
    folded = fold(batch, forum_did, review)
    records: dict[str, dict[str, RecordFold]] = {}
    for collection, folds in folded.records.items():
        spec = TABLES[collection]
        prepared: dict[str, RecordFold] = {}
        for uri, deciding in folds.items():
            top, live = deciding.top, deciding.live
            live_version = None if live is None else spec.version(live, uri)
            # a top that is not the live event is a delete: its version has no fields
            top_version = live_version if live is top else spec.version(top, uri)
            assert top_version is not None
            prepared[uri] = RecordFold(top_version, live_version)
        records[collection] = prepared
    _fill_html(records.get(c.POST, {}), carried)
    return FoldedBatch(
        records=records,
        identities=folded.identities,
        accounts=folded.accounts,
        theme_versions={key: (event.rev, theme_fields(event.record))
                        for key, event in folded.theme_versions.items()},
        rejected=folded.rejected,
        first_position=folded.first_position,
        last_position=folded.last_position,
        count=folded.count,
    )


def _fill_html(posts: dict[str, RecordFold], carried: CarriedHtml | None) -> None:
    # only the live version's fields reach a row (a top that is not live is a delete)
    texts = {uri: fields for uri, deciding in posts.items()
             if deciding.live is not None and (fields := deciding.live.fields) is not None
             and fields["text"] is not None}
    known = {} if carried is None else carried.html_of(
        (uri, fields["text"]) for uri, fields in texts.items())
    for uri, fields in texts.items():
        html = known.get(uri)
        fields["html"] = post_html(fields["text"]) if html is None else html


class FreshRecords:
    """Names each batch's ``fresh`` records over the batches of one load that started
    at its location's very beginning (no record rows yet), taken in log order: the
    records no earlier batch had, whose rows the applying side then need not look for.
    At 1M events most records are new and the lookups were about a twentieth of the
    applying process's time (docs/performance.md). Records are remembered by their
    uri's hash (64 bits, about 70 MB at 1M records): two uris sharing one only make the
    second look for a row, as when nothing is known. It runs where the batches are
    applied: the batches are prepared by several processes, each seeing only some."""

    def __init__(self) -> None:
        self._seen: set[int] = set()

    def mark(self, folded: FoldedBatch) -> FoldedBatch:
        """``folded`` with its ``fresh`` records named (the next batch in log order)."""
        seen = self._seen
        fresh = []
        for folds in folded.records.values():
            for uri in folds:
                key = hash(uri)
                if key not in seen:
                    seen.add(key)
                    fresh.append(uri)
        folded.fresh = frozenset(fresh)
        return folded
