"""Preparing a batch for the forum projection: fold it (``apply_fold``) and extract each
deciding version's fields (``apply_records``). Pure: it reads nothing but the batch, so
it can run in another process while the projection applies the batch before
(``projections.prepare_process``)."""

from __future__ import annotations

from collections.abc import Sequence

from events.model import Logged
from projections.apply_fold import FoldedBatch, RecordFold, fold
from projections.apply_records import TABLES, theme_fields


def prepare(batch: Sequence[Logged], forum_did: str) -> FoldedBatch:
    folded = fold(batch, forum_did)
    records: dict[str, dict[str, RecordFold]] = {}
    for collection, folds in folded.records.items():
        spec = TABLES[collection]
        prepared: dict[str, RecordFold] = {}
        for uri, deciding in folds.items():
            top, live = deciding.top, deciding.live
            live_version = None if live is None else spec.version(live)
            # a top that is not the live event is a delete: its version has no fields
            top_version = live_version if live is top else spec.version(top)
            assert top_version is not None
            prepared[uri] = RecordFold(top_version, live_version)
        records[collection] = prepared
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
