"""The export line format: every field round-trips; bad lines say why."""

from __future__ import annotations

import json

import pytest

from events.export import ExportError, ExportHeader, parse_header, parse_line, to_line
from events.model import AccountStatusChanged, IdentityChanged, LogEvent, Logged, RecordEvent

EVENTS: list[LogEvent] = [
    RecordEvent("create", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "space.atbb.post", "3kabc2222222a",
                "3kabc2222222a", "bafyrei",
                {"text": "h\u00e9llo \U0001f600 lone \ud800", "n": [1, {"x": None}]},
                True, None, "jetstream", 1_790_000_000_000_000, 1_790_000_000_000_123),
    RecordEvent("delete", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "space.atbb.post", "3kabc2222222a",
                "3kabc2222222b", None, None, False, "forged", "backfill", None, 7),
    IdentityChanged("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", None, 9, "2026-01-01T00:00:00Z",
                    "local", None, 8),
    AccountStatusChanged("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", False, "takendown", 10, None,
                         "jetstream", 42, 9),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_field_round_trips(event: object) -> None:
    logged = Logged(17, event)  # type: ignore[arg-type]
    assert parse_line(to_line(logged)) == logged


def test_the_header_is_recognised_and_event_lines_are_not_headers() -> None:
    header = ExportHeader("did:plc:f", 3, None, 99)
    assert parse_header(header.to_line()) == header
    assert parse_header(to_line(Logged(1, EVENTS[0]))) is None


@pytest.mark.parametrize("line, why", [
    ("{", "not JSON"),
    ("[1]", "not a JSON object"),
    ('{"position": 0, "type": "atbb.RecordCreated", "event": {}}', "positive"),
    ('{"position": 1, "type": "atbb.Nope", "event": {}}', "unknown event topic"),
    ('{"position": 1, "type": "atbb.RecordCreated", "event": {"did": "x"}}', "lacks"),
    ('{"position": 1, "type": "atbb.RecordCreated"}', "needs"),
])
def test_bad_lines_say_why(line: str, why: str) -> None:
    with pytest.raises(ExportError, match=why):
        parse_line(line)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_a_line_as_written_reads_as_the_same_line_spelt_otherwise(event: LogEvent) -> None:
    line = to_line(Logged(17, event))
    spelt = json.dumps(json.loads(line), indent=1)  # spaces and newlines: read as JSON
    reordered = json.dumps({"event": json.loads(line)["event"], "type": json.loads(line)[
        "type"], "position": 17})
    assert parse_line(line) == parse_line(spelt) == parse_line(reordered)
    assert parse_line(line + "\n") == parse_line(line)


@pytest.mark.parametrize("line, why", [
    ('{"position":01,"type":"atbb.IdentityChanged","event":{}}', "not JSON"),
    ('{"position":1,"type":"atbb.Nope","event":{}}', "unknown event topic"),
    ('{"position":1,"type":"atbb.IdentityChanged","event":{},"x":1}', "lacks"),
    ('{"position":1,"type":"atbb.IdentityChanged","event":[]}', "needs"),
])
def test_lines_that_look_as_written_but_are_not_say_why(line: str, why: str) -> None:
    with pytest.raises(ExportError, match=why):
        parse_line(line)
