"""What each signed-in member has read: the appview's own data, beside the event log
(``appview.side_db``), so it survives every rebuild of the read models.

- notifications: the time (of the posts) the member has read through
  (``notification_reads``);
- topics: per topic, the time of the newest post the member has seen (``topic_reads``);
- boards and the whole forum: "read up to" times (``board_reads``; the forum is the
  board ``''``), which mark every topic whose last activity is not after them read.

Times are the posts' own ``createdAt`` (normalised, as the read models store them), so a
mark means "every post up to this one", whatever order posts arrived in the log.
``version(did)`` grows with every change a member makes, for the pages' ETags."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from appview.settings import Settings
from appview.side_db import Execute, SideDatabase

FORUM_KEY = ""  # the board_reads key of "the whole forum"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS notification_reads ("
    " did TEXT PRIMARY KEY, read_through TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS topic_reads ("
    " did TEXT NOT NULL, topic_uri TEXT NOT NULL, read_at TEXT NOT NULL,"
    " PRIMARY KEY (did, topic_uri))",
    "CREATE TABLE IF NOT EXISTS board_reads ("
    " did TEXT NOT NULL, board_uri TEXT NOT NULL, read_at TEXT NOT NULL,"
    " PRIMARY KEY (did, board_uri))",
    "CREATE TABLE IF NOT EXISTS reader_versions ("
    " did TEXT PRIMARY KEY, version BIGINT NOT NULL)",
)


@dataclass(frozen=True)
class ReadMarks:
    """One member's marks for some topics and boards: enough to say which are unread."""

    forum: str | None
    boards: dict[str, str]
    topics: dict[str, str]

    def read_at(self, topic_uri: str, board_uri: str | None) -> str | None:
        """The time up to which the topic counts as read (None: never read)."""
        marks = [m for m in (self.forum, self.boards.get(board_uri or ""),
                             self.topics.get(topic_uri)) if m is not None]
        return max(marks) if marks else None

    def unread(self, topic_uri: str, board_uri: str | None, last_activity: str | None) -> bool:
        mark = self.read_at(topic_uri, board_uri)
        return mark is None or (last_activity or "") > mark


class ReaderState:
    def __init__(self, settings: Settings, *, side: SideDatabase | None = None) -> None:
        self._settings = settings
        self._side = side or SideDatabase(settings)
        with self._connection() as execute:
            for statement in _SCHEMA:
                execute(statement, ())

    def _connection(self) -> AbstractContextManager[Execute]:
        return self._side.transaction()

    @staticmethod
    def _bump(execute: Execute, did: str) -> None:
        execute("INSERT INTO reader_versions (did, version) VALUES (?, 1)"
                " ON CONFLICT (did) DO UPDATE SET version = reader_versions.version + 1",
                (did,))

    def version(self, did: str) -> int:
        with self._connection() as execute:
            rows = execute("SELECT version FROM reader_versions WHERE did = ?", (did,))
        return int(rows[0][0]) if rows else 0

    # -- notifications ------------------------------------------------------------------

    def notifications_read_through(self, did: str) -> str:
        with self._connection() as execute:
            rows = execute("SELECT read_through FROM notification_reads WHERE did = ?",
                           (did,))
        return str(rows[0][0]) if rows else ""

    def read_notifications_through(self, did: str, read_at: str) -> None:
        """Mark read every notification of a post created up to ``read_at`` (never
        backwards)."""
        with self._connection() as execute:
            execute("INSERT INTO notification_reads (did, read_through) VALUES (?, ?)"
                    " ON CONFLICT (did) DO UPDATE SET read_through = excluded.read_through"
                    " WHERE excluded.read_through > notification_reads.read_through",
                    (did, read_at))
            self._bump(execute, did)

    # -- topics, boards, the forum ------------------------------------------------------

    def marks(self, did: str, topic_uris: Iterable[str] = (),
              board_uris: Iterable[str] = ()) -> ReadMarks:
        """The member's marks of these topics and boards, and of the whole forum."""
        topics: dict[str, str] = {}
        boards: dict[str, str] = {}
        wanted_topics = sorted(set(topic_uris))
        wanted_boards = sorted({*board_uris, FORUM_KEY})
        with self._connection() as execute:
            for chunk in _chunks(wanted_topics):
                topics.update((str(u), str(t)) for u, t in execute(
                    "SELECT topic_uri, read_at FROM topic_reads WHERE did = ? AND"
                    f" topic_uri IN ({', '.join('?' * len(chunk))})", (did, *chunk)))
            for chunk in _chunks(wanted_boards):
                boards.update((str(u), str(t)) for u, t in execute(
                    "SELECT board_uri, read_at FROM board_reads WHERE did = ? AND"
                    f" board_uri IN ({', '.join('?' * len(chunk))})", (did, *chunk)))
        return ReadMarks(boards.pop(FORUM_KEY, None), boards, topics)

    def read_topic(self, did: str, topic_uri: str, read_at: str) -> None:
        """The member has seen the topic's posts up to ``read_at`` (never backwards)."""
        self._mark(did, "topic_reads", "topic_uri", topic_uri, read_at)

    def read_board(self, did: str, board_uri: str, read_at: str) -> None:
        """Every topic of the board last active up to ``read_at`` is read."""
        self._mark(did, "board_reads", "board_uri", board_uri, read_at)

    def read_forum(self, did: str, read_at: str) -> None:
        self._mark(did, "board_reads", "board_uri", FORUM_KEY, read_at)

    def _mark(self, did: str, table: str, column: str, key: str, read_at: str) -> None:
        with self._connection() as execute:
            rows = execute(f"SELECT read_at FROM {table} WHERE did = ? AND {column} = ?",
                           (did, key))
            if rows and str(rows[0][0]) >= read_at:
                return
            execute(f"INSERT INTO {table} (did, {column}, read_at) VALUES (?, ?, ?)"
                    f" ON CONFLICT (did, {column}) DO UPDATE SET read_at = excluded.read_at"
                    f" WHERE excluded.read_at > {table}.read_at", (did, key, read_at))
            self._bump(execute, did)


def _chunks(values: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
