"""`events.public`: the public view of each kind of event."""

from __future__ import annotations

from dataclasses import replace

from events.model import AccountStatusChanged, Logged, RecordEvent
from events.public import WITHHELD, public_event, public_logged
from tests.test_api_admin_events import private_events

SUPERSEDED = "post.forum.uri: required field is missing"


def test_each_kind_of_event_shows_only_what_a_reader_could_see() -> None:
    invalid, rejected, identity = private_events()
    assert public_event(rejected) is None
    shown = public_event(invalid)
    assert isinstance(shown, RecordEvent)
    assert shown.reason == WITHHELD and shown.source_cursor is None
    assert shown.record == invalid.record and shown.observed_at == invalid.observed_at
    assert public_event(identity) == identity.__class__(
        identity.did, identity.handle, identity.seq, identity.time, identity.source, None,
        identity.observed_at)
    account = AccountStatusChanged(identity.did, False, "takendown", 9, None, "local",
                                   None, 5)
    assert public_event(account) is account


def test_a_superseded_reason_is_kept_for_replays_to_take_again() -> None:
    invalid, _, _ = private_events()
    old = replace(invalid, reason=SUPERSEDED)
    shown = public_event(old)
    assert isinstance(shown, RecordEvent) and shown.reason == SUPERSEDED


def test_a_logged_event_keeps_its_position() -> None:
    invalid, rejected, _ = private_events()
    assert public_logged(Logged(4, rejected)) is None
    shown = public_logged(Logged(4, invalid))
    assert shown is not None and shown.position == 4
