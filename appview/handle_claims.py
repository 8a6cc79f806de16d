"""The identity event that makes the log hold a handle the appview verified itself:
a full_sync's check of each repo, and a member's sign-in (``appview.writes.member_handle``).

An identity event is ordered by its ``seq``, which the network gives. One the appview
makes has none of its own, so it takes the place that lets the network's word win:
``0`` when the log holds no identity of that DID (any seq the firehose reports later
goes ahead of it), one past the newest the log holds when that one names another handle
(it replaces that one, and the next the network says replaces it in turn), and none at
all when the log already holds this very handle."""

from __future__ import annotations

from events.log import EventLog
from events.model import IdentityChanged, Source


def identity_to_log(event_log: EventLog, did: str, handle: str | None, *, source: Source,
                    now: int) -> IdentityChanged | None:
    """The event that makes ``did``'s handle ``handle`` in the log (None: show the DID),
    or None when the log already says so. Blocking: reads the DID's identity history."""
    history = event_log.history(f"identity:{did}")
    latest = next((logged.event for logged in reversed(history)
                   if isinstance(logged.event, IdentityChanged)), None)
    if latest is None:
        if handle is None:
            return None
        return IdentityChanged(did, handle, 0, None, source, None, now)
    if latest.handle == handle:
        return None
    return IdentityChanged(did, handle, latest.seq + 1, None, source, None, now)
