"""The search projection: the words of every post, in a full-text index.

It indexes what the ``forum`` projection made of the posts, never the raw records: the
``posts`` row of a post (in the same location) holds the text and title of its greatest
live version and whether it is a tombstone, the rules of ``docs/data-model.md`` applied
once, in one place. So ``search`` comes after ``forum`` in ``all_projections``, and a
batch re-reads the ``posts`` rows of the posts its events touched, which the ``forum``
projection has already applied (it is at or past this batch's positions: the runner
applies the projections in order, to the same head). Who may find a post is not stored
here either: the queries join ``posts`` and apply the read side's visibility rules
(``projections.queries_search``).

Its first batch at position 0 (a rebuild's new generation, an appview that has just
gained this projection) indexes every post the ``posts`` table holds in one pass, and
records the ``forum`` projection's position: what the events up to there would have
indexed one batch at a time (the runner then resumes from there).

On PostgreSQL, a rebuild's first batch copies each post's ``search_docs`` row (its
``tsvector`` included) from the generation being replaced when that generation's
``posts`` row is the same (title, text, languages, not deleted), and makes only the
others: the generation being replaced is a schema of the same database, so the server
copies the rows itself, and ``to_tsvector`` runs only for new or changed posts (on every
post it was about a third of this projection's share of a rebuild). Only from a
generation whose documents this code made with this server (its stamp,
``DOCUMENTS_STAMP_NAME``, is :func:`documents_stamp`); ``atbb rebuild --verify`` never
carries. (SQLite's generations are files of their own, and its FTS5 index is built from
the rows anyway: nothing is carried there.) The GIN index, most of the rest, is built
among the steps of the end of a rebuild's load (``search_schema.DOCUMENT_INDEX``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from events import collections as c
from events.model import Logged, RecordEvent
from projections.db import Session
from projections.readmodel import AttachedToReadModels, ReadModels
from projections.search_schema import (
    DOCUMENT_INDEX,
    DOCUMENT_SQL,
    FTS_FILL,
    INDEX_MEMORY,
    INSERT_TRIGGER,
    INSERT_TRIGGER_NAME,
)
from projections.search_text import config_for, indexed_text

FORUM_PROJECTION = "forum"
"""The projection whose ``posts`` rows this one indexes."""

_SEED_PAGE = 5000
_COLUMNS = "uri, config, title, body"

DOCUMENTS_STAMP_NAME = "search.documents"
"""Under this name, ``projection_versions`` records what made a PostgreSQL location's
search documents (:func:`documents_stamp`); a row of that database's own
(``search_schema.DATABASE_OWN_VERSIONS``)."""


def documents_stamp(session: Session) -> int:
    """This code's documents on this server, as a number: the projection's version
    (which a change to the indexed text or the configurations bumps) and the server's
    version (whose text search dictionaries make the ``tsvector``)."""
    server = int(session.scalar("SELECT current_setting('server_version_num')"))
    return SearchProjection.VERSION * 1_000_000 + server


class SearchProjection(AttachedToReadModels):
    """Keeps ``search_docs`` (and its full-text index) equal to the live posts' words."""

    NAME = "search"
    VERSION = 2
    skips_ahead = True
    """The runner reads on from the position it records, which may be past its batch."""

    def __init__(self) -> None:
        self.name = self.NAME
        self.version = self.VERSION
        self._store: ReadModels | None = None
        self._version_recorded = False
        self._carry_from: str | None = None

    def attach(self, store: ReadModels) -> None:
        self._store = store
        self._version_recorded = False

    def carry_documents_from(self, schema: str | None) -> None:
        """Take search documents from the generation at ``schema`` (the one a rebuild
        replaces) where its row is the same (module doc); None computes every document.
        PostgreSQL's alone: on SQLite the location is a file, and nothing is carried."""
        self._carry_from = schema

    def apply(self, batch: Sequence[Logged]) -> None:
        """Index the posts ``batch`` touched past the tracked position (all of them, the
        first time), and the position, in one transaction."""
        if not batch:
            return
        store = self.store
        with store.transaction() as session:
            start = store.position_in(session, self.name)
            last = batch[-1].position
            if last <= start:
                return
            forum = store.position_in(session, FORUM_PROJECTION)
            if forum < last:
                # it would index rows older than its own position says, and never
                # come back to them
                raise RuntimeError(
                    f"the search projection cannot pass the {FORUM_PROJECTION} projection"
                    f" ({last} > {forum}): apply {FORUM_PROJECTION} first")
            if start == 0:
                seed(session, carry_from=self._carry_from,
                     build_index=not store.loading_privately)
                position = forum
                if session.dialect == "postgresql":
                    # only the code that wrote every document says what made them
                    store.set_version(session, DOCUMENTS_STAMP_NAME, documents_stamp(session))
            else:
                reindex(session, touched_posts(b for b in batch if b.position > start))
                position = last
            if not self._version_recorded:
                store.set_version(session, self.name, self.version)
            store.track(session, self.name, position)
        self._version_recorded = True


def touched_posts(batch: Iterable[Logged]) -> set[str]:
    """The at-uris of the posts whose records the events of ``batch`` are versions of."""
    return {logged.event.uri for logged in batch
            if isinstance(logged.event, RecordEvent) and logged.event.collection == c.POST}


def _document(row: Sequence[Any]) -> tuple[str, str, str, str] | None:
    """A ``search_docs`` row from a posts row (uri, deleted, title, text, langs); None
    for a post without words to find (a tombstone, an empty one)."""
    uri, deleted, title, text, langs = row
    if deleted or (not title and not text):
        return None
    return (str(uri), config_for(langs), indexed_text(title), indexed_text(text))


def _write(session: Session, documents: list[tuple[str, str, str, str]], *,
           table: str = "search_docs") -> None:
    """Write ``documents`` (uri, config, title, body) into ``table`` (on PostgreSQL with
    their ``document``) and their configurations into ``search_languages``."""
    if not documents:
        return
    if session.dialect == "postgresql":
        document = DOCUMENT_SQL.format(config="v.column2", title="v.column3",
                                       body="v.column4")
        session.execute_values(
            f"INSERT INTO {table} ({_COLUMNS}, document) SELECT v.column1, v.column2,"
            f" v.column3, v.column4, {document} FROM (VALUES {{values}}) v"
            " ON CONFLICT (uri) DO UPDATE SET config = excluded.config,"
            " title = excluded.title, body = excluded.body, document = excluded.document",
            documents)
    else:
        session.execute_values(
            f"INSERT INTO {table} ({_COLUMNS}) VALUES {{values}}"
            " ON CONFLICT (uri) DO UPDATE SET config = excluded.config,"
            " title = excluded.title, body = excluded.body",
            documents)
    session.execute_values(
        "INSERT INTO search_languages (config) VALUES {values} ON CONFLICT (config) DO NOTHING",
        sorted({(d[1],) for d in documents}))


def reindex(session: Session, uris: Iterable[str]) -> None:
    """Make the ``search_docs`` rows of ``uris`` what their ``posts`` rows say now."""
    wanted = sorted(set(uris))
    if not wanted:
        return
    rows = session.query_in(
        "SELECT uri, deleted, title, text, langs FROM posts WHERE uri {in}", wanted)
    before = {str(r[0]) for r in session.query_in(
        "SELECT DISTINCT config FROM search_docs WHERE uri {in}", wanted)}
    documents = [d for d in map(_document, rows) if d is not None]
    kept = {d[0] for d in documents}
    gone = [uri for uri in wanted if uri not in kept]
    for start in range(0, len(gone), 500):
        part = gone[start:start + 500]
        session.execute(
            f"DELETE FROM search_docs WHERE uri IN ({', '.join('?' * len(part))})", part)
    _write(session, documents)
    # a configuration no document uses any more leaves the list, as a rebuild would
    for config in sorted(before - {d[1] for d in documents}):
        session.execute(
            "DELETE FROM search_languages WHERE config = ?"
            " AND NOT EXISTS (SELECT 1 FROM search_docs WHERE config = ?)", (config, config))


def _quoted(schema: str) -> str:
    return '"' + schema.replace('"', '""') + '"'


def _carried_schema(session: Session, schema: str | None) -> str | None:
    """``schema`` when its search documents can be carried (module doc), else None."""
    if schema is None or session.dialect != "postgresql":
        return None
    # looked up first: a missing table would abort this transaction
    if session.scalar("SELECT to_regclass(?)", (f"{_quoted(schema)}.search_docs",)) is None \
            or session.scalar("SELECT to_regclass(?)",
                              (f"{_quoted(schema)}.projection_versions",)) is None:
        return None
    stamp = session.scalar(
        f"SELECT version FROM {_quoted(schema)}.projection_versions WHERE name = ?",
        (DOCUMENTS_STAMP_NAME,))
    return schema if stamp is not None and int(stamp) == documents_stamp(session) else None


def seed(session: Session, *, carry_from: str | None = None,
         build_index: bool = True) -> None:
    """Index every post of ``posts`` into an empty ``search_docs`` (and, on SQLite, its
    empty FTS5 tables), oldest first (the rows' insertion order is what a search takes as
    their age: ``queries_search.CANDIDATES``), a page at a time. On PostgreSQL the GIN
    index is built once, after the rows (not ``build_index``: left to the end of the
    private bulk load this batch is part of, ``search_schema.DOCUMENT_INDEX``), and
    documents are carried from the schema ``carry_from`` where the posts are the same
    (module doc)."""
    postgres = session.dialect == "postgresql"
    carried = _carried_schema(session, carry_from)
    if postgres:
        session.execute("DROP INDEX IF EXISTS search_docs_document")
    else:
        # the FTS5 tables are filled once after the rows (search_schema.INSERT_TRIGGER)
        session.execute(f"DROP TRIGGER IF EXISTS {INSERT_TRIGGER_NAME}")
    if carried is not None:
        _seed_carrying(session, carried)
    else:
        # the order first (uris only), then the rows a page at a time by key: sorting
        # whole rows would sort every body
        # (PostgreSQL's text columns compare byte-wise too: schema.table_statement)
        _write_posts(session, [str(r[0]) for r in session.query(
            "SELECT uri FROM posts ORDER BY created_at, uri")])
    if postgres:
        if build_index:
            session.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_MEMORY}'")
            session.execute(DOCUMENT_INDEX)
    else:
        for statement in FTS_FILL:
            session.execute(statement)
        session.execute(INSERT_TRIGGER)


def _write_posts(session: Session, uris: list[str], table: str = "search_docs") -> None:
    """The documents of the posts ``uris``, in that order, into ``table``."""
    for start in range(0, len(uris), _SEED_PAGE):
        page = uris[start:start + _SEED_PAGE]
        rows = {str(r[0]): r for r in session.query_in(
            "SELECT uri, deleted, title, text, langs FROM posts WHERE uri {in}", page)}
        _write(session, [d for d in (_document(rows[uri]) for uri in page if uri in rows)
                         if d is not None], table=table)


def _seed_carrying(session: Session, schema: str) -> None:
    """PostgreSQL: the first batch with the generation in ``schema`` to carry from. A post
    whose row there is the same (title, text, languages; not deleted) has there the
    document this code would make of it, or none (no words): that row is copied by the
    server, its body never leaving it. The others are made here into a temporary table.
    Each row's ``seq`` (its age) is numbered from a sort of the posts' keys alone, so no
    row with its body and ``tsvector`` is sorted, and the rows are copied in any order."""
    old = _quoted(schema)
    unchanged = ("op.uri = p.uri AND op.deleted = 0 AND op.title IS NOT DISTINCT FROM p.title"
                 " AND op.text IS NOT DISTINCT FROM p.text"
                 " AND op.langs IS NOT DISTINCT FROM p.langs")
    # the one pass comparing the two generations' texts
    session.execute(
        f"CREATE TEMPORARY TABLE search_carried ON COMMIT DROP AS SELECT p.uri, p.created_at"
        f" FROM posts p JOIN {old}.posts op ON {unchanged} WHERE p.deleted = 0")
    session.execute("ALTER TABLE search_carried ADD PRIMARY KEY (uri)")
    session.execute("ANALYZE search_carried")  # a temporary table has no statistics
    session.execute(
        # byte-wise, as every read-model text column (schema.table_statement)
        'CREATE TEMPORARY TABLE search_fresh (uri TEXT COLLATE "C" PRIMARY KEY,'
        ' config TEXT COLLATE "C" NOT NULL, title TEXT COLLATE "C" NOT NULL,'
        ' body TEXT COLLATE "C" NOT NULL, document tsvector) ON COMMIT DROP')
    fresh = [str(r[0]) for r in session.query(
        "SELECT p.uri FROM posts p WHERE p.deleted = 0 AND NOT EXISTS"
        " (SELECT 1 FROM search_carried c WHERE c.uri = p.uri)"
        " ORDER BY p.created_at, p.uri")]
    _write_posts(session, fresh, table="search_fresh")
    session.execute(
        f"CREATE TEMPORARY TABLE search_order ON COMMIT DROP AS SELECT k.uri,"
        f" row_number() OVER (ORDER BY k.created_at, k.uri) AS seq FROM ("
        f"SELECT c.uri, c.created_at FROM search_carried c"
        f" JOIN {old}.search_docs o ON o.uri = c.uri"
        " UNION ALL SELECT f.uri, p.created_at FROM search_fresh f JOIN posts p ON p.uri = f.uri"
        ") k")
    session.execute("ALTER TABLE search_order ADD PRIMARY KEY (uri)")
    session.execute("ANALYZE search_order")
    for rows in (f"search_carried c JOIN {old}.search_docs d ON d.uri = c.uri",
                 "search_fresh d"):
        session.execute(
            f"INSERT INTO search_docs ({_COLUMNS}, document, seq) OVERRIDING SYSTEM VALUE"
            f" SELECT d.uri, d.config, d.title, d.body, d.document, s.seq FROM {rows}"
            " JOIN search_order s ON s.uri = d.uri")
    # the rows written later are numbered after these
    session.execute("SELECT setval(pg_get_serial_sequence('search_docs', 'seq'), MAX(seq))"
                    " FROM search_docs")
    session.execute("INSERT INTO search_languages (config) SELECT DISTINCT config"
                    " FROM search_docs ON CONFLICT (config) DO NOTHING")
