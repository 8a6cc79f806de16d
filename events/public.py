"""What of the log any reader could see: the public view of an event, for logs handed
out beyond the operators (`GET /api/admin/events?public=1`, EVENTS_API_PUBLIC).

Records, identities and account statuses are public already (every repo and the relay
publish them); what the appview adds to them is not. The public view keeps each
record event (valid or not, as a reader of the repo sees it) and drops:

- the validator's reason of an invalid record (it names the appview's own checks, the
  forum's ownership rules, parts of a record it refused): replaced by ``WITHHELD``,
  except a reason an earlier validator gave that projections take again
  (``events.lexicon.SUPERSEDED_REASONS``, ADR 0012): a replay of the public log must
  reach the same verdicts, and those reasons name only the lexicon's fields;
- the source's cursor (where this appview's ingest stands on its relay);
- every ``CommitRejected`` (the appview's verification of commits, with what the
  unverified commit claimed).

The source (jetstream, firehose, backfill, local) and the observed time stay: a replay
up to a time needs them, and they say no more than when the event reached the appview.
"""

from __future__ import annotations

from dataclasses import replace

from events.lexicon import is_superseded
from events.model import CommitRejected, LogEvent, Logged, RecordEvent

WITHHELD = "invalid (reason withheld in the public log)"


def public_event(event: LogEvent) -> LogEvent | None:
    """``event`` as any reader could see it, or None when nothing of it is public."""
    if isinstance(event, CommitRejected):
        return None
    if isinstance(event, RecordEvent):
        reason = (None if event.valid else event.reason if is_superseded(event.reason)
                  else WITHHELD)
        if event.source_cursor is None and event.reason == reason:
            return event
        return replace(event, reason=reason, source_cursor=None)
    if event.source_cursor is None:
        return event
    return replace(event, source_cursor=None)


def public_logged(logged: Logged) -> Logged | None:
    event = public_event(logged.event)
    if event is None:
        return None
    return logged if event is logged.event else Logged(logged.position, event)
