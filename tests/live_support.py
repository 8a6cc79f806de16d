"""Writing replies and topics into a seeded forum after the page tests' scenario, and an
SSE reader that cuts its connection where it is told (tests of live streams)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient

from appview.bootstrap import Services
from appview.devnet.scenario import Scenario
from tests.web_forum import Writer


@dataclass
class ForumWriter:
    """Appends posts and moderation to a seeded forum's log, as Jetstream lines."""

    services: Services
    story: Scenario
    writer: Writer
    line_number: int = 10_000_000

    @classmethod
    def after(cls, services: Services, story: Scenario) -> ForumWriter:
        end = max(op.at_us for op in story.operations())
        # far past the scenario (and past earlier writers of the same test)
        return cls(services, story, Writer(end + 3_600_000_000))

    def _refs(self, collection: str) -> dict[str, str]:
        for op in self.story.operations():
            if op.collection == collection and op.record is not None:
                return {"cid": op.cid or "", "uri": op.uri}
        raise AssertionError(collection)

    def append(self, did: str, collection: str, record: dict[str, Any]) -> tuple[str, str]:
        line, uri, cid = self.writer.write(did, collection, None, record)
        appender = self.services.appender(batch_size=None)
        self.line_number += 1
        appender.feed(line, self.line_number)
        appender.flush()
        return uri, cid

    def topic(self, did: str, title: str, text: str = "Body.") -> tuple[str, str]:
        return self.append(did, "space.atbb.post", {
            "$type": "space.atbb.post", "createdAt": self.writer.now(), "title": title,
            "text": text, "forum": self._refs("space.atbb.forum.forum"),
            "board": self._refs("space.atbb.forum.board")})

    def reply(self, did: str, root: tuple[str, str], text: str,
              parent: tuple[str, str] | None = None) -> tuple[str, str]:
        root_ref = {"uri": root[0], "cid": root[1]}
        parent_ref = root_ref if parent is None else {"uri": parent[0], "cid": parent[1]}
        return self.append(did, "space.atbb.post", {
            "$type": "space.atbb.post", "createdAt": self.writer.now(), "text": text,
            "forum": self._refs("space.atbb.forum.forum"),
            "reply": {"root": root_ref, "parent": parent_ref}})

    def moderate(self, action: str, subject: dict[str, Any]) -> None:
        self.append(self.story.forum.did, "space.atbb.modAction", {
            "$type": "space.atbb.modAction", "action": f"space.atbb.modAction.{action}",
            "createdAt": self.writer.now(), "createdBy": self.story.forum.did,
            "reason": "For tests.", "subject": subject})

    def board_uri(self) -> str:
        return self._refs("space.atbb.forum.board")["uri"]


@dataclass
class SseReader:
    """Reads a stream as a browser's EventSource would: an event counts once its blank
    line arrived, and its id (a bare ``id:`` too) becomes the id sent on reconnecting."""

    last_id: str | None = None
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    _buffer: bytes = b""

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            kind, data_lines, event_id = "message", [], None
            for line in block.decode().split("\n"):
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "id":
                    event_id = value
                elif name == "event":
                    kind = value
                elif name == "data":
                    data_lines.append(value)
            if event_id is not None:
                self.last_id = event_id
            if data_lines:
                self.events.append((self.last_id or "", kind, json.loads("\n".join(data_lines))))

    def drop_partial(self) -> None:
        """The connection ended: what arrived of an event without its blank line is lost."""
        self._buffer = b""

    async def read(self, client: TestClient[Any, Any], path: str, *, until: int,
                   cut_after: int | None = None) -> bool:
        """Read ``path`` until the last id reaches ``until`` (True) or ``cut_after``
        bytes arrived (the connection is dropped there: False)."""
        headers = {} if self.last_id is None else {"Last-Event-ID": self.last_id}
        response = await client.get(path, headers=headers)
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        received = 0
        try:
            while True:
                chunk = await response.content.readany()
                if not chunk:
                    return False
                if cut_after is not None and received + len(chunk) >= cut_after:
                    self.feed(chunk[:cut_after - received])
                    self.drop_partial()
                    return False
                received += len(chunk)
                self.feed(chunk)
                if self.last_id is not None and int(self.last_id) >= until:
                    return True
        finally:
            response.close()
