"""The search projection's tables (``projections.search``).

``search_docs`` and ``search_languages`` are ordinary read-model tables (in
``schema.TABLES``: compared by ``atbb verify``, counted by ``atbb status``); the full-text
index over ``search_docs`` is each database's own:

- SQLite: two FTS5 tables with ``search_docs`` as their external content, kept by
  triggers: ``search_stemmed`` (the ``porter`` tokenizer) for the posts whose
  configuration is ``english``, ``search_plain`` (``unicode61``, diacritics removed) for
  every other. A query asks both.
- both: an index on ``config``, so that a configuration no document uses any more
  leaves ``search_languages`` at once.
- PostgreSQL: a ``tsvector`` column, ``document`` (the title weighted A, the body B, in
  the post's configuration), written with the row, under a GIN index; and ``seq``, the
  order rows were first written in (an identity column under a B-tree index), which
  SQLite's ``rowid`` is already.

A search ranks only the newest matches (``queries_search.CANDIDATES``): the rows'
insertion order stands for their age, the first batch (``search.seed``) writing every
post oldest first, and later batches adding new posts after them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from projections.search_text import STEMMED_CONFIG

SEARCH_DOCS: Final = """
CREATE TABLE IF NOT EXISTS search_docs (
    uri TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT ''
)"""
"""One row per post that has words to find (not a tombstone): its at-uri (the ``posts``
row it stands for, which decides who may find it), its text search ``config`` (from the
post's ``langs``: ``search_text.config_for``), and its ``title`` and ``body`` as
indexed (``search_text.indexed_text``). On PostgreSQL also ``document``, their
``tsvector``."""

SEARCH_LANGUAGES: Final = """
CREATE TABLE IF NOT EXISTS search_languages (
    config TEXT PRIMARY KEY
)"""
"""Every text search configuration some row of ``search_docs`` is indexed in: a query is
written once per configuration listed here."""

TABLES: Final[dict[str, str]] = {
    "search_docs": SEARCH_DOCS,
    "search_languages": SEARCH_LANGUAGES,
}

_FTS = ("CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5(title, body,"
        " content='search_docs', content_rowid='rowid', tokenize='{tokenize}')")


def _sqlite_trigger(event: str, body: str) -> str:
    return (f"CREATE TRIGGER IF NOT EXISTS search_docs_{event.lower()} AFTER {event}"
            f" ON search_docs BEGIN {body} END")


FTS_TABLES: Final = (("search_stemmed", "="), ("search_plain", "<>"))
"""SQLite: each FTS5 table, and how a row's ``config`` compares with STEMMED_CONFIG for
the row to be in it."""


def _fts_rows(row: str, *, delete: bool) -> str:
    """The statements that add (or, with ``delete``, take out) ``row`` (new or old) to
    the FTS5 table of its configuration."""
    statements = []
    for name, test in FTS_TABLES:
        if delete:
            columns, values = f"{name}, rowid, title, body", "'delete', "
        else:
            columns, values = "rowid, title, body", ""
        statements.append(
            f"INSERT INTO {name} ({columns}) SELECT {values}{row}.rowid, {row}.title,"
            f" {row}.body WHERE {row}.config {test} '{STEMMED_CONFIG}';")
    return " ".join(statements)


CONFIG_INDEX: Final = "CREATE INDEX IF NOT EXISTS search_docs_config ON search_docs (config)"
"""Whether any document still uses a configuration (``search_languages``)."""

INSERT_TRIGGER: Final = _sqlite_trigger("INSERT", _fts_rows("new", delete=False))
"""SQLite: what adds a new row of ``search_docs`` to its FTS5 table. A first batch
(``search.seed``) drops it, writes every row, fills both FTS5 tables with one statement
each (``FTS_FILL``) and creates it again: a trigger run per row cost four times as much
(100,000 rows: 7.5 s against 2.0 s)."""

INSERT_TRIGGER_NAME: Final = "search_docs_insert"

FTS_FILL: Final[tuple[str, ...]] = tuple(
    f"INSERT INTO {name} (rowid, title, body) SELECT rowid, title, body FROM search_docs"
    f" WHERE config {test} '{STEMMED_CONFIG}'"
    for name, test in FTS_TABLES)
"""SQLite: every row of ``search_docs`` into the FTS5 table of its configuration."""

SQLITE_STATEMENTS: Final[tuple[str, ...]] = (
    CONFIG_INDEX,
    _FTS.format(name="search_stemmed", tokenize="porter unicode61 remove_diacritics 2"),
    _FTS.format(name="search_plain", tokenize="unicode61 remove_diacritics 2"),
    INSERT_TRIGGER,
    _sqlite_trigger("DELETE", _fts_rows("old", delete=True)),
    _sqlite_trigger("UPDATE", _fts_rows("old", delete=True) + " "
                    + _fts_rows("new", delete=False)),
)

INDEX_MEMORY: Final = "256MB"
"""PostgreSQL's ``maintenance_work_mem`` while the GIN index is built (1 GB built the same
200,000 documents no faster: 14.2 s against 14.3 s)."""

DOCUMENT_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS search_docs_document ON search_docs USING gin (document)")
"""PostgreSQL: the GIN index of the documents. A first batch builds it once after the
rows (``search.seed``); in a private bulk load (a rebuild's generation) the load drops it
at its start and builds it among the steps of its end (``projections.load_end``), on a
session of its own beside the other steps."""

POSTGRES_STATEMENTS: Final[tuple[str, ...]] = (
    CONFIG_INDEX,
    "ALTER TABLE search_docs ADD COLUMN IF NOT EXISTS document tsvector",
    DOCUMENT_INDEX,
    "ALTER TABLE search_docs ADD COLUMN IF NOT EXISTS seq bigint GENERATED ALWAYS AS IDENTITY",
    "CREATE INDEX IF NOT EXISTS search_docs_seq ON search_docs (seq)",
)

DATABASE_OWN_COLUMNS: Final[dict[str, frozenset[str]]] = {
    "search_docs": frozenset({"document", "seq"})}
"""Columns one database adds to a table as its own index of the row (PostgreSQL's
``tsvector`` and insertion order), derived from the portable columns or from how the
rows were written: left out wherever rows are compared (``atbb diff`` of a position
projected in memory against a generation, ``atbb rebuild --verify``): ``portable``."""


DATABASE_OWN_VERSIONS: Final[frozenset[str]] = frozenset({"search.documents"})
"""Rows of ``projection_versions`` one database alone writes (PostgreSQL's stamp of what
made its ``tsvector`` documents, ``search.DOCUMENTS_STAMP_NAME``): left out where rows
are compared, as the database's own columns are."""


def portable(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` of ``table`` without the database's own columns (DATABASE_OWN_COLUMNS)."""
    own = DATABASE_OWN_COLUMNS.get(table, frozenset())
    return {k: v for k, v in row.items() if k not in own}


def portable_rows(table: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows of ``table`` as either database holds them: without the database's own
    columns, nor its own rows (DATABASE_OWN_VERSIONS)."""
    return [portable(table, row) for row in rows
            if not (table == "projection_versions" and row.get("name") in DATABASE_OWN_VERSIONS)]

DOCUMENT_SQL: Final = (
    "setweight(to_tsvector(CAST({config} AS regconfig), {title}), 'A')"
    " || setweight(to_tsvector(CAST({config} AS regconfig), {body}), 'B')"
)
"""PostgreSQL: the ``document`` of a row from its config, title and body (SQL)."""


def statements(dialect: str) -> tuple[str, ...]:
    """The full-text index's DDL in ``dialect``, after the tables."""
    return POSTGRES_STATEMENTS if dialect == "postgresql" else SQLITE_STATEMENTS
