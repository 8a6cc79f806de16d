"""The log as JSON lines, for moving it between appviews (`atbb events export|import`).

The first line is a header (what the file is, which forum, which range of positions);
each further line is one stored event with its position in the exporting log, its type
(the stable store topic) and every field of the event exactly as stored, so an import
reproduces the events, their verdicts, sources, cursors and observed times.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from events.codec import CodecError, decode, encode_state, topic_of
from events.model import LogEvent, Logged

FORMAT = "atbb-event-log"
VERSION = 1


class ExportError(ValueError):
    """A line of an export file that cannot be read back; the message says why."""


@dataclass(frozen=True)
class ExportHeader:
    forum_did: str
    since: int
    until: int | None
    head: int

    def to_line(self) -> str:
        return json.dumps({"format": FORMAT, "version": VERSION, "forum_did": self.forum_did,
                           "since": self.since, "until": self.until, "head": self.head})


def to_line(logged: Logged) -> str:
    state = encode_state(logged.event).decode("utf-8")
    return f'{{"position":{logged.position},"type":{json.dumps(topic_of(logged.event))},' \
           f'"event":{state}}}'


def parse_header(line: str) -> ExportHeader | None:
    """The header if ``line`` is one; None for an event line."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ExportError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    if data.get("version") != VERSION:
        raise ExportError(f"export format version {data.get('version')!r} is not {VERSION}")
    return ExportHeader(str(data.get("forum_did") or ""), int(data.get("since") or 0),
                        None if data.get("until") is None else int(data["until"]),
                        int(data.get("head") or 0))


def parse_line(line: str) -> Logged:
    """One exported event: its position in the exporting log and the event."""
    fast = _parse_as_written(line)
    if fast is not None:
        return fast
    try:
        data: Any = json.loads(line)
    except ValueError as exc:
        raise ExportError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ExportError("not a JSON object")
    position, topic, fields = data.get("position"), data.get("type"), data.get("event")
    if not isinstance(position, int) or position < 1:
        raise ExportError(f"position must be a positive integer, got {position!r}")
    if not isinstance(topic, str) or not isinstance(fields, dict):
        raise ExportError("an event line needs 'type' (string) and 'event' (object)")
    try:
        event: LogEvent = decode(topic, json.dumps(fields).encode("utf-8"))
    except CodecError as exc:
        raise ExportError(str(exc)) from None
    return Logged(position, event)


_OPENING = '{"position":'
_TYPE = ',"type":"'
_EVENT = '","event":'


def _parse_as_written(line: str) -> Logged | None:
    """A line exactly as :func:`to_line` writes it, read without parsing it twice: the
    position and type sliced out, the event's state decoded once, as the store decodes
    it. None for any other spelling (spaces, another key order, an escaped type, extra
    keys, an error): :func:`parse_line` then reads it as JSON and words the error."""
    text = line.rstrip()
    if not text.startswith(_OPENING) or not text.endswith("}"):
        return None
    type_at = text.find(_TYPE, len(_OPENING))
    if type_at < 0:
        return None
    digits = text[len(_OPENING):type_at]
    if not digits.isascii() or not digits.isdigit() or digits[0] == "0":
        return None
    event_at = text.find(_EVENT, type_at + len(_TYPE))
    if event_at < 0:
        return None
    topic = text[type_at + len(_TYPE):event_at]
    if '"' in topic or "\\" in topic:
        return None
    try:
        event = decode(topic, text[event_at + len(_EVENT):-1].encode("utf-8"))
    except (CodecError, UnicodeEncodeError):
        return None
    return Logged(int(digits), event)
