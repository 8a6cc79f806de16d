"""Searching the posts (the ``search`` projection's index) as one viewer may see them.

Who finds what is the topic page's rule, not a second one: a hit is a post the read
side's ``queries_posts.visible`` lets the viewer see, in a topic it lets the viewer see,
and not deleted by its author (its words are gone from the page). The index holds the
words; ``posts`` decides, at the request's ``now`` (bans expire).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from projections.db import placeholders
from projections.ids import post_id, record_id
from projections.queries_common import Context, Limits, clamp
from projections.queries_posts import visible
from projections.queries_structure import board_uri
from projections.search_schema import FTS_TABLES
from projections.search_text import (
    CONFIGS,
    MARK_END,
    MARK_START,
    STEMMED_CONFIG,
    ParsedQuery,
    QueryProblem,
    fts5_query,
    parse_query,
    segments,
    tsquery_sql,
)
from projections.views import Author, SearchHit, SearchResults

SEARCH: Final = Limits(20, 50)
TOTAL_LIMIT: Final = 1000
"""Hits counted at most: a count of every match of a common word would cost as much as
the search, for a figure nobody pages through."""
CANDIDATES: Final = 2000
"""The newest matches a search ranks first (the index's insertion order: oldest post
first, ``search.seed``). Ranking every match of a word half the posts hold would read
and score half the index for each query; the newest few thousand are what a forum's
reader looks for. When fewer of them than the page needs are visible to the viewer,
the search asks again for four times as many, up to ``MAX_CANDIDATES``; a result cut
this way says its total may be more (``total_capped``)."""
MAX_CANDIDATES: Final = 128_000

SORTS: Final = ("relevance", "date")
TYPES: Final = ("all", "topics")
_EXCERPT_WORDS: Final = 30
# title words weigh more than body words (FTS5 bm25 column weights)
_BM25: Final = "bm25({table}, 4.0, 1.0)"


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A search as asked: ``text`` as typed; ``board`` an id or at-uri, ``author`` a
    handle or DID; ``since``/``until`` dates (``YYYY-MM-DD``, both days included);
    ``sort`` relevance or date (newest first); ``type`` all posts or topics only."""

    text: str
    board: str | None = None
    author: str | None = None
    since: str | None = None
    until: str | None = None
    sort: str = "relevance"
    type: str = "all"
    offset: int | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    query: ParsedQuery
    conditions: tuple[str, ...]
    params: tuple[Any, ...]
    tsqueries: dict[str, str]
    """PostgreSQL: the query in each configuration (``_tsqueries``), asked once a
    search, for its page (each widening) and its excerpts; empty on SQLite."""


def _day(name: str, value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value) if len(value) == 10 else _bad_day(name, value)
    except ValueError:
        return _bad_day(name, value)


def _bad_day(name: str, value: str) -> date:
    shown = value if len(value) <= 20 else value[:17] + "..."
    raise QueryProblem(f"{name} must be a date as YYYY-MM-DD, got {shown!r}.")


def _plan(ctx: Context, request: SearchRequest) -> _Plan | None:
    """The parsed query and the filters' conditions on ``p`` (the post); None when a
    filter names nothing (no such board, author): no post can match."""
    if request.sort not in SORTS:
        raise QueryProblem(f"sort must be one of {', '.join(SORTS)}.")
    if request.type not in TYPES:
        raise QueryProblem(f"type must be one of {', '.join(TYPES)}.")
    since, until = _day("since", request.since), _day("until", request.until)
    query = parse_query(request.text)
    conditions: list[str] = []
    params: list[Any] = []
    if request.type == "topics":
        conditions.append("p.kind = 'topic'")
    if request.board:
        uri = board_uri(ctx, request.board)
        if uri is None:
            return None
        conditions.append("p.board_uri = ?")
        params.append(uri)
    if request.author:
        did = _author_did(ctx, request.author)
        if did is None:
            return None
        conditions.append("p.did = ?")
        params.append(did)
    if since is not None:
        conditions.append("p.created_at >= ?")
        params.append(f"{since.isoformat()}T00:00:00.000000Z")
    if until is not None:
        conditions.append("p.created_at < ?")
        params.append(f"{(until + timedelta(days=1)).isoformat()}T00:00:00.000000Z")
    tsqueries = _tsqueries(ctx, query) if ctx.session.dialect == "postgresql" else {}
    return _Plan(query, tuple(conditions), tuple(params), tsqueries)


def _author_did(ctx: Context, author: str) -> str | None:
    value = author.strip()
    if value.startswith("did:"):
        return value
    handle = value.removeprefix("@").lower()
    found = ctx.session.scalar(
        f"SELECT did FROM members WHERE handle = ? ORDER BY {ctx.text_order('did')} LIMIT 1",
        (handle,))
    return None if found is None else str(found)


def _visibility(ctx: Context, plan: _Plan) -> tuple[str, list[Any]]:
    """Joins and conditions on the post ``p`` of the document ``d`` and its topic ``t``."""
    post_cond, post_params = visible(ctx, "p")
    topic_cond, topic_params = visible(ctx, "t")
    where = " AND ".join([post_cond, "p.deleted = 0", topic_cond, *plan.conditions])
    joins = ("JOIN posts p ON p.uri = d.uri"
             " JOIN posts t ON t.uri = COALESCE(p.thread_uri, p.uri)")
    return f"{joins} WHERE {where}", [*post_params, *topic_params, *plan.params]


def search(ctx: Context, request: SearchRequest, *, candidates: int = CANDIDATES,
           max_candidates: int = MAX_CANDIDATES) -> SearchResults:
    """The viewer's hits for ``request``, one page of them, ranked among the newest
    ``candidates`` matches (more, up to ``max_candidates``, when too few of those are
    visible); QueryProblem when the query or a filter cannot be searched."""
    start, size = clamp(request.offset, request.limit, SEARCH)
    text = parse_query(request.text).text()
    plan = _plan(ctx, request)
    if plan is None:
        return SearchResults(text, request.sort, (), 0, False, start, size)
    page = _postgres_page if ctx.session.dialect == "postgresql" else _sqlite_page
    while True:
        matches, count, cut = page(ctx, plan, request.sort, start, size, candidates)
        # enough for this page and its count, or nothing more to ask for
        if not cut or count > min(TOTAL_LIMIT, start + size) or candidates >= max_candidates:
            break
        candidates = min(candidates * 4, max_candidates)
    hits = _hits(ctx, plan, matches)
    return SearchResults(text, request.sort, tuple(hits), min(count, TOTAL_LIMIT),
                         count > TOTAL_LIMIT or cut, start, size)


def _order(sort: str, ctx: Context, rank: str) -> str:
    by_date = f"p.created_at DESC, {ctx.text_order('p.uri')}"
    return by_date if sort == "date" else f"{rank}, {by_date}"


def _sqlite_page(ctx: Context, plan: _Plan, sort: str, start: int, size: int,
                 candidates: int) -> tuple[list[str], int, bool]:
    """A page of the hits among the newest ``candidates`` matches of each FTS table, the
    count of those hits (any figure past ``TOTAL_LIMIT`` means more), and whether the
    matches were cut (a table had ``candidates`` of them: there may be more)."""
    match = fts5_query(plan.query)
    # each table's newest matches by rowid, scored (bm25) only for those: FTS5 walks a
    # word's rows in rowid order and stops at the limit
    union = " UNION ALL ".join(
        f"SELECT * FROM (SELECT rowid, {_BM25.format(table=table)} AS rank, {number} AS fts"
        f" FROM {table} WHERE {table} MATCH ? ORDER BY rowid DESC LIMIT ?)"
        for number, (table, _test) in enumerate(FTS_TABLES))
    rest, params = _visibility(ctx, plan)
    # the matches first, once (MATERIALIZED), then each one's rows by key (CROSS JOIN
    # keeps SQLite's planner from running the match once per post it scans)
    head = f"WITH m AS MATERIALIZED ({union}) "
    base = (f"FROM m CROSS JOIN search_docs d ON d.rowid = m.rowid"
            f" {rest.replace('JOIN posts', 'CROSS JOIN posts')}")
    every = [match, candidates, match, candidates, *params]
    most = "(SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM m GROUP BY fts) y)"
    return _page_and_count(
        ctx, f"{head}SELECT d.uri, COUNT(*) OVER (), {most} {base}"
        f" ORDER BY {_order(sort, ctx, 'm.rank')} LIMIT ? OFFSET ?", [*every, size, start],
        f"{head}SELECT (SELECT COUNT(*) FROM (SELECT 1 {base} LIMIT ?) x), {most}",
        [*every, TOTAL_LIMIT + 1], candidates)


def _page_and_count(ctx: Context, page_sql: str, page_params: list[Any], count_sql: str,
                    count_params: list[Any], candidates: int) -> tuple[list[str], int, bool]:
    """The page's uris with the count of every hit and whether the matches were cut, in
    one query: the ranking reads every visible candidate anyway, so a window counts
    them for free (a second query joined them all to their posts again). A page past
    the last hit has no row to carry the count: then the count's own query answers."""
    rows = ctx.session.query(page_sql, page_params)
    if rows:
        return [str(r[0]) for r in rows], int(rows[0][1]), int(rows[0][2] or 0) >= candidates
    counted = ctx.session.query_one(count_sql, count_params)
    count, most = (int(counted[0]), int(counted[1] or 0)) if counted else (0, 0)
    return [], count, most >= candidates


def _tsqueries(ctx: Context, query: ParsedQuery) -> dict[str, str]:
    """The query as a ``tsquery`` (text) in each configuration some post is indexed
    in; those where it holds no word (only stop words) are left out."""
    configs = sorted(str(r[0]) for r in ctx.session.query("SELECT config FROM search_languages")
                     if r[0] in CONFIGS)
    if not configs:
        return {}
    found: dict[str, str] = {}
    parts, params = [], []
    for config in configs:
        sql, words = tsquery_sql(query, "CAST(? AS regconfig)")
        parts.append(f"CAST({sql} AS text)")
        # each phrase's configuration parameter precedes its words
        for word in words:
            params += [config, word]
    row = ctx.session.query_one("SELECT " + ", ".join(parts), params)
    for config, value in zip(configs, row or (), strict=False):
        if value:
            found[config] = str(value)
    return found


def _postgres_page(ctx: Context, plan: _Plan, sort: str, start: int, size: int,
                   candidates: int) -> tuple[list[str], int, bool]:
    """As ``_sqlite_page``: the newest matches by ``seq``, the planner walking its index
    backwards for a common word, or taking a rare word's few matches from the GIN."""
    queries = plan.tsqueries
    if not queries:
        return [], 0, False
    matches, match_params = [], []
    ranks, rank_params = [], []
    for config, tsquery in queries.items():
        matches.append("(config = ? AND document @@ CAST(? AS tsquery))")
        match_params += [config, tsquery]
        ranks.append("WHEN ? THEN CAST(? AS tsquery)")
        rank_params += [config, tsquery]
    rest, params = _visibility(ctx, plan)
    head = ("WITH m AS MATERIALIZED (SELECT uri, config, document FROM search_docs WHERE "
            + " OR ".join(matches) + " ORDER BY seq DESC LIMIT ?) ")
    base = f"FROM m d {rest}"
    # ts_rank_cd grows with relevance: negated, so that ascending order is best first
    rank = f"-ts_rank_cd(d.document, CASE d.config {' '.join(ranks)} END, 1)"
    order = _order(sort, ctx, rank)
    every = [*match_params, candidates, *params]
    found = "(SELECT COUNT(*) FROM m)"
    return _page_and_count(
        ctx, f"{head}SELECT d.uri, COUNT(*) OVER (), {found} {base}"
        f" ORDER BY {order} LIMIT ? OFFSET ?",
        [*every, *(rank_params if sort != "date" else []), size, start],
        f"{head}SELECT (SELECT COUNT(*) FROM (SELECT 1 {base} LIMIT ?) x), {found}",
        [*every, TOTAL_LIMIT + 1], candidates)


def _highlights(ctx: Context, plan: _Plan, uris: list[str]) -> dict[str, tuple[str, str]]:
    """Each page hit's title (all of it) and an excerpt of its body, with the database's
    marks around the words found."""
    if not uris:
        return {}
    found: dict[str, tuple[str, str]] = {}
    if ctx.session.dialect == "postgresql":
        options = f'StartSel="{MARK_START}", StopSel="{MARK_END}"'
        body_options = (f"{options}, MaxWords={_EXCERPT_WORDS}, MinWords=12,"
                        ' MaxFragments=2, FragmentDelimiter=" … "')
        for config, tsquery in plan.tsqueries.items():
            rows = ctx.session.query(
                "SELECT uri, ts_headline(CAST(config AS regconfig), title, CAST(? AS tsquery),"
                f" ?), ts_headline(CAST(config AS regconfig), body, CAST(? AS tsquery), ?)"
                f" FROM search_docs WHERE config = ? AND uri IN ({placeholders(len(uris))})",
                [tsquery, f"HighlightAll=true, {options}", tsquery, body_options, config,
                 *uris])
            found.update({str(u): (str(t or ""), str(b or "")) for u, t, b in rows})
        return found
    match = fts5_query(plan.query)
    # the page's rows by rowid first: FTS5 then seeks each one in the match, where a
    # join on uri walked every match of the words (most of a search's time)
    docs = ctx.session.query(
        f"SELECT rowid, uri, config FROM search_docs WHERE uri IN ({placeholders(len(uris))})",
        uris)
    for table, test in FTS_TABLES:
        rowids = {int(rowid): str(uri) for rowid, uri, config in docs
                  if (config == STEMMED_CONFIG) == (test == "=")}
        if not rowids:
            continue
        rows = ctx.session.query(
            f"SELECT rowid, highlight({table}, 0, ?, ?),"
            f" snippet({table}, 1, ?, ?, '…', {_EXCERPT_WORDS})"
            f" FROM {table} WHERE {table} MATCH ? AND rowid IN ({placeholders(len(rowids))})",
            [MARK_START, MARK_END, MARK_START, MARK_END, match, *rowids])
        found.update({rowids[int(r)]: (str(t or ""), str(b or "")) for r, t, b in rows})
    return found


def _hits(ctx: Context, plan: _Plan, uris: list[str]) -> list[SearchHit]:
    if not uris:
        return []
    rows = ctx.session.query_dicts(
        "SELECT p.uri, p.id, p.did, p.kind, p.board_uri, p.thread_uri, p.created_at,"
        " p.hidden, p.suspended, t.title AS topic_title, t.deleted AS topic_deleted"
        " FROM posts p JOIN posts t ON t.uri = COALESCE(p.thread_uri, p.uri)"
        f" WHERE p.uri IN ({placeholders(len(uris))})", uris)
    by_uri = {r["uri"]: r for r in rows}
    handles = ctx.handles([r["did"] for r in rows])
    marked = _highlights(ctx, plan, uris)
    hits = []
    for uri in uris:
        row = by_uri.get(uri)
        if row is None:
            continue
        title, excerpt = marked.get(uri, ("", ""))
        topic_uri = row["thread_uri"] or uri
        hits.append(SearchHit(
            id=row["id"],
            uri=uri,
            kind=row["kind"] or "reply",
            author=Author(row["did"], handles.get(row["did"])),
            board_id=record_id(row["board_uri"]) if row["board_uri"] else None,
            topic_id=post_id(topic_uri),
            topic_uri=topic_uri,
            topic_title=None if row["topic_deleted"] == 1 else row["topic_title"],
            title=segments(title) if row["kind"] == "topic" else (),
            excerpt=segments(excerpt),
            created_at=row["created_at"],
            hidden_by_moderator=row["hidden"] == 1,
            author_banned=ctx.is_banned(row["did"]),
            author_suspended=row["suspended"] == 1,
        ))
    return hits


def bare_search(ctx: Context, text: str, limit: int = SEARCH.default) -> list[str]:
    """The full-text match alone, best first: no visibility, no filters, no excerpts
    (the baseline ``bench/search.py`` measures the search against)."""
    query = parse_query(text)
    if ctx.session.dialect == "postgresql":
        queries = _tsqueries(ctx, query)
        if not queries:
            return []
        config, tsquery = next(iter(queries.items()))
        rows = ctx.session.query(
            "SELECT uri FROM search_docs WHERE config = ? AND document @@ CAST(? AS tsquery)"
            " ORDER BY ts_rank_cd(document, CAST(? AS tsquery), 1) DESC LIMIT ?",
            [config, tsquery, tsquery, limit])
    else:
        table = FTS_TABLES[1][0]
        rows = ctx.session.query(
            f"SELECT d.uri FROM {table} JOIN search_docs d ON d.rowid = {table}.rowid"
            f" WHERE {table} MATCH ? ORDER BY {_BM25.format(table=table)} LIMIT ?",
            [fts5_query(query), limit])
    return [str(r[0]) for r in rows]


def board_choices(ctx: Context) -> list[tuple[str, str]]:
    """(id, name) of every listed board, in the index's order: the search form's list."""
    rows = ctx.session.query(
        "SELECT b.id, b.name FROM boards b LEFT JOIN categories c ON c.uri = b.category_uri"
        " WHERE b.listed = 1 ORDER BY c.sort_order, c.name, b.sort_order, b.name,"
        f" {ctx.text_order('b.uri')}")
    return [(str(i), str(n)) for i, n in rows]
