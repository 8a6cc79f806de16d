"""Read models belong to one event log: the check that they are this log's.

Positions only mean something in the log that gave them. Read models built from another
log (a data folder copied between appviews, a log restored from an older copy) would be
served as if they were ours, and projecting would lay one log's events over another's
rows. Each location is stamped with the identity of the log it was built from
(``EventLog.identity``); this module tells whether the live one is this log's.
"""

from __future__ import annotations

from collections.abc import Iterable

from events.log import EventLog
from projections.readmodel import ReadModels


def claim_read_models(log: EventLog, models: ReadModels, names: Iterable[str]) -> str | None:
    """Why ``models`` cannot be used with ``log`` (None: they can). Read models with no
    stamp yet (new ones, or made before locations had stamps) are stamped with this
    log's identity, unless they hold positions past its head, which no location built
    from it can."""
    identity = log.identity()
    stamped = models.log_identity()
    if stamped is not None and stamped != identity:
        return (f"the read models at {models.location} were built from another event log"
                f" (log {stamped}; this log is {identity})")
    head = log.head()
    ahead = {name: position for name in names
             if (position := models.position(name)) > head}
    if ahead:
        name, position = max(ahead.items(), key=lambda item: item[1])
        return (f"the read models at {models.location} are ahead of the event log: the"
                f" {name} projection is at position {position}, the log's head is {head}"
                " (was the log restored from an older copy, or replaced?)")
    if stamped is None:
        models.stamp_log(identity)
    return None
