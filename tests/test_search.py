"""The search projection and its queries, on SQLite and PostgreSQL: what is found, in
which order, with which marks; moderation exactly as on the pages; bad queries answered
with a message; a first batch that indexes everything equals one batch at a time."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appview.bootstrap import Services
from events.model import Logged, RecordEvent
from projections.queries import Queries
from projections.queries_search import SearchRequest, search
from projections.readmodel import ReadModelStore, open_read_models
from projections.rebuild import compare
from projections.search import DOCUMENTS_STAMP_NAME, SearchProjection
from projections.search_text import QueryProblem
from projections.views import SearchResults, Viewer
from tests.conftest import Backend
from tests.rebuild_support import seeded, with_child_replays
from tests.test_queries import (
    ALICE,
    BOB,
    MOD,
    NOW,
    POST,
    World,
    at,
    first_batch_elsewhere,
    ref,
    world_at,
)

ANON = Viewer.anonymous()


class SearchWorld(World):
    """The queries' test forum, projected by the forum and the search projections."""

    def __init__(self, store: ReadModelStore) -> None:
        self.search = SearchProjection()
        super().__init__(store, self.search)

    def post(self, did: str, text: str, *, board: RecordEvent | None = None,
             title: str | None = None, root: RecordEvent | None = None, minute: int = 1,
             langs: list[str] | None = None) -> RecordEvent:
        record: dict[str, Any] = {"$type": POST, "text": text, "createdAt": at(minute)}
        if root is not None:
            record["reply"] = {"root": ref(root), "parent": ref(root)}
        else:
            assert board is not None
            record["board"] = ref(board)
            record["title"] = title or "A topic"
        if langs is not None:
            record["langs"] = langs
        return self.add(self.members[did].create(POST, record))

    def edit(self, event: RecordEvent, text: str) -> RecordEvent:
        assert event.record is not None
        record = {**event.record, "text": text, "updatedAt": at(50)}
        return self.add(self.members[event.did].update(POST, event.rkey, record))


@pytest.fixture
def world(backend) -> Iterator[SearchWorld]:
    with world_at(backend, SearchWorld) as made:
        yield made


def found(q: Queries, text: str, viewer: Viewer = ANON, **filters: Any) -> SearchResults:
    return q.search(SearchRequest(text, **filters), viewer=viewer, now=NOW)


def ids(results: SearchResults) -> list[str]:
    return [hit.uri for hit in results.hits]


def board_world(world: SearchWorld) -> tuple[RecordEvent, RecordEvent]:
    category = world.category("General")
    return world.board(category, "Cats"), world.board(category, "Dogs")


def test_finds_topics_and_replies_with_marked_excerpts(world):
    cats, _dogs = board_world(world)
    topic = world.post(ALICE, "My tabby sleeps all day.", board=cats, title="Sleepy tabby")
    reply = world.post(BOB, "A tabby of mine <b>too</b> & more", root=topic, minute=2)
    world.post(BOB, "Nothing to see", root=topic, minute=3)
    q = world.apply()
    results = found(q, "tabby")
    assert sorted(ids(results)) == sorted([topic.uri, reply.uri])
    assert results.total == 2 and not results.total_capped
    by_uri = {hit.uri: hit for hit in results.hits}
    assert ("tabby", True) in by_uri[topic.uri].title
    assert by_uri[topic.uri].topic_title == "Sleepy tabby"
    excerpt = by_uri[reply.uri].excerpt
    assert ("tabby", True) in excerpt
    # the excerpt is text (runs of characters, escaped where shown): PostgreSQL's
    # excerpts leave out what its parser reads as tags, SQLite's keep them as characters
    text = "".join(run for run, _ in excerpt)
    assert "tabby of mine" in text and "& more" in text
    assert by_uri[reply.uri].topic_id == by_uri[topic.uri].id


def test_filters_board_author_type_and_dates(world):
    cats, dogs = board_world(world)
    world.handle(BOB, "bob.test")
    cat_topic = world.post(ALICE, "whiskers here", board=cats, title="Whiskers", minute=1)
    dog_topic = world.post(BOB, "whiskers there", board=dogs, title="Dog whiskers", minute=5)
    cat_reply = world.post(BOB, "more whiskers", root=cat_topic, minute=40)
    q = world.apply()
    assert set(ids(found(q, "whiskers"))) == {cat_topic.uri, dog_topic.uri, cat_reply.uri}
    board_id = cats.rkey
    assert set(ids(found(q, "whiskers", board=board_id))) == {cat_topic.uri, cat_reply.uri}
    assert set(ids(found(q, "whiskers", author="bob.test"))) == {dog_topic.uri, cat_reply.uri}
    assert set(ids(found(q, "whiskers", author="@BOB.test"))) == {dog_topic.uri, cat_reply.uri}
    assert set(ids(found(q, "whiskers", author=ALICE))) == {cat_topic.uri}
    assert set(ids(found(q, "whiskers", type="topics"))) == {cat_topic.uri, dog_topic.uri}
    assert ids(found(q, "whiskers", author="nobody.test")) == []
    assert ids(found(q, "whiskers", board="nosuchboard")) == []
    day = at(0)[:10]
    assert len(ids(found(q, "whiskers", since=day, until=day))) == 3
    assert ids(found(q, "whiskers", until="2000-01-01")) == []
    # by date: newest first
    assert ids(found(q, "whiskers", sort="date")) == [cat_reply.uri, dog_topic.uri,
                                                       cat_topic.uri]


def test_relevance_puts_the_title_and_the_repeated_word_first(world):
    cats, _dogs = board_world(world)
    plain = world.post(ALICE, "a word about parrots, once", board=cats, title="Birds")
    titled = world.post(BOB, "nothing else here", board=cats, title="Parrots", minute=2)
    q = world.apply()
    assert ids(found(q, "parrots"))[0] == titled.uri
    assert set(ids(found(q, "parrots"))) == {plain.uri, titled.uri}


def test_phrases_alternatives_and_exclusions(world):
    cats, _dogs = board_world(world)
    a = world.post(ALICE, "the quick brown fox", board=cats, title="One")
    b = world.post(ALICE, "brown quick fox", board=cats, title="Two", minute=2)
    c = world.post(ALICE, "a lazy dog", board=cats, title="Three", minute=3)
    q = world.apply()
    assert set(ids(found(q, '"quick brown"'))) == {a.uri}
    assert set(ids(found(q, "quick brown"))) == {a.uri, b.uri}
    assert set(ids(found(q, "fox OR dog"))) == {a.uri, b.uri, c.uri}
    assert set(ids(found(q, "fox -the"))) == {b.uri}
    assert set(ids(found(q, 'fox -"quick brown"'))) == {b.uri}


def test_languages_stem_where_the_post_says_its_language(world):
    cats, _dogs = board_world(world)
    english = world.post(ALICE, "She was running home", board=cats, title="Run",
                         langs=["en-GB"])
    unknown = world.post(BOB, "running again", board=cats, title="Again", minute=2)
    q = world.apply()
    # the English post is found by another form of the word; the post without a
    # language only word for word
    assert set(ids(found(q, "runs"))) == {english.uri}
    assert set(ids(found(q, "running"))) == {english.uri, unknown.uri}


def test_moderation_applies_as_on_the_pages(world):
    cats, _dogs = board_world(world)
    topic = world.post(ALICE, "secret plans", board=cats, title="Plans")
    hidden = world.post(BOB, "secret hidden reply", root=topic, minute=2)
    deleted = world.post(BOB, "secret deleted reply", root=topic, minute=3)
    banned_topic = world.post(BOB, "secret banned topic", board=cats, title="Banned")
    q = world.apply()
    assert len(ids(found(q, "secret"))) == 4
    world.action("delete", post=hidden)
    world.delete(deleted)
    world.action("ban", did=BOB)
    q = world.apply()
    assert ids(found(q, "secret")) == [topic.uri]
    assert found(q, "hidden").hits == () and found(q, "deleted").hits == ()
    # a moderator finds the hidden and the banned, marked; never the author's deletion
    seen = {hit.uri: hit for hit in found(q, "secret", viewer=MOD).hits}
    assert set(seen) == {topic.uri, hidden.uri, banned_topic.uri}
    assert seen[hidden.uri].hidden_by_moderator and seen[hidden.uri].author_banned
    assert seen[banned_topic.uri].author_banned
    # a hidden topic takes its replies out of search, as out of the page
    world.action("delete", post=topic)
    q = world.apply()
    reply = world.post(ALICE, "secret visible reply", root=topic, minute=9)
    q = world.apply()
    assert ids(found(q, "secret")) == []
    assert reply.uri in ids(found(q, "secret", viewer=MOD))


def test_suspended_accounts_are_not_found(world):
    cats, _dogs = board_world(world)
    world.post(BOB, "takedown words", board=cats, title="Gone")
    world.account(BOB, False, "takendown")
    q = world.apply()
    assert found(q, "takedown").hits == ()
    assert len(found(q, "takedown", viewer=MOD).hits) == 1


def test_edits_and_deletes_move_the_index(world):
    cats, _dogs = board_world(world)
    topic = world.post(ALICE, "original wording", board=cats, title="Edit me")
    q = world.apply()
    assert ids(found(q, "original")) == [topic.uri]
    world.edit(topic, "changed wording")
    q = world.apply()
    assert ids(found(q, "original")) == []
    assert ids(found(q, "changed")) == [topic.uri]
    world.delete(topic)
    q = world.apply()
    assert ids(found(q, "changed")) == [] and ids(found(q, "wording", viewer=MOD)) == []


def test_paging_and_the_capped_total(world):
    cats, _dogs = board_world(world)
    made = [world.post(ALICE, f"common word {i}", board=cats, title=f"T{i}", minute=i)
            for i in range(7)]
    q = world.apply()
    pages = [found(q, "common", sort="date", offset=o, limit=3) for o in (0, 3, 6)]
    assert [len(p.hits) for p in pages] == [3, 3, 1]
    assert [u for p in pages for u in ids(p)] == [e.uri for e in reversed(made)]
    assert all(p.total == 7 for p in pages)
    # a page past the last hit has no hits, and still the total (and a cut, if any)
    beyond = found(q, "common", sort="date", offset=9, limit=3)
    assert beyond.hits == () and beyond.total == 7 and not beyond.total_capped


def test_the_newest_matches_are_ranked_and_more_are_asked_for_when_too_few_show(world):
    cats, _dogs = board_world(world)
    made = [world.post(ALICE, f"common word {i}", board=cats, title=f"T{i}", minute=i)
            for i in range(7)]
    q = world.apply()

    def cut_at(candidates: int, most: int, **filters: Any) -> SearchResults:
        with q.snapshot(viewer=ANON, now=NOW) as ctx:
            return search(ctx, SearchRequest("common", sort="date", **filters),
                          candidates=candidates, max_candidates=most)

    # two candidates and no more: the two newest, and a total that may be more
    newest = cut_at(2, 2)
    assert ids(newest) == [e.uri for e in reversed(made[-2:])]
    assert newest.total == 2 and newest.total_capped
    # asked again with more: every match, and an exact total
    widened = cut_at(2, 128)
    assert ids(widened) == [e.uri for e in reversed(made)] and widened.total == 7
    assert not widened.total_capped
    # a page past the first candidates widens too
    assert ids(cut_at(2, 128, offset=6, limit=3)) == [made[0].uri]
    # hidden candidates do not count towards the page: more are asked for
    for event in made[-3:]:
        world.action("delete", post=event)
    q = world.apply()
    assert ids(cut_at(2, 128)) == [e.uri for e in reversed(made[:-3])]


def test_a_first_batch_writes_the_posts_oldest_first(world, backend):
    cats, _dogs = board_world(world)
    # in the log, the newest post comes first (a late-delivered older post after it)
    late = world.post(ALICE, "common late", board=cats, title="Late", minute=30)
    early = world.post(BOB, "common early", board=cats, title="Early", minute=1)
    world.apply()
    with first_batch_elsewhere(backend, world, SearchWorld) as again:
        with again.q.snapshot(viewer=ANON, now=NOW) as ctx:
            newest = search(ctx, SearchRequest("common"), candidates=1, max_candidates=1)
        assert ids(newest) == [late.uri] and newest.total_capped
        assert early.uri not in ids(newest)


@pytest.mark.parametrize("text", [
    '"unbalanced', 'quote"', "AND OR NOT", "NEAR(a b)", "title:foo", "a* b^ c:", "(((",
    "-only", "\x00nul\x00", "x" * 10_000, "\ue000marks\ue001", "' OR 1=1 --", "!!&|<->",
    "", "   ", "🙂", "a OR", "OR a", "-", '""', "word -", '"-a"', "a" * 300,
])
def test_bad_queries_answer_results_or_a_message(world, text):
    cats, _dogs = board_world(world)
    world.post(ALICE, "nul marks title foo and quote word a", board=cats, title="AND OR")
    q = world.apply()
    for viewer in (ANON, MOD):
        try:
            results = found(q, text, viewer=viewer)
        except QueryProblem as problem:
            assert str(problem)
        else:
            assert isinstance(results, SearchResults)


def test_bad_filters_answer_a_message(world):
    q = world.apply()
    bad: list[dict[str, Any]] = [{"since": "yesterday"}, {"until": "2026-13-01"},
                                 {"sort": "best"}, {"type": "people"},
                                 {"since": "2026-01-01T00:00"}]
    for filters in bad:
        with pytest.raises(QueryProblem):
            found(q, "word", **filters)


SEARCH_PROPERTY = settings(max_examples=40, deadline=None,
                           suppress_health_check=[HealthCheck.function_scoped_fixture])


@SEARCH_PROPERTY
@given(text=st.text(max_size=60))
def test_any_text_is_a_result_or_a_message(world, text):
    if not world.log:
        cats, _dogs = board_world(world)
        world.post(ALICE, "some words ünïcode ✓ text", board=cats, title="Words")
        world.apply()
    try:
        found(world.q, text)
    except QueryProblem as problem:
        assert str(problem)


def test_a_first_batch_indexes_everything_as_batches_would(world, backend):
    cats, _dogs = board_world(world)
    topic = world.post(ALICE, "alpha words", board=cats, title="Alpha", langs=["fr"])
    reply = world.post(BOB, "beta words", root=topic, minute=2)
    world.apply()
    world.edit(reply, "gamma words")
    world.post(ALICE, "delta", root=topic, minute=4)
    world.apply()
    world.delete(topic)
    world.apply()
    # the search projection's first batch is a single event: it indexes every post
    with first_batch_elsewhere(backend, world, SearchWorld) as again:
        assert again.search.position() == world.log[-1].position
        assert compare(world.projection.store, again.projection.store,
                       tables=("search_docs", "search_languages")) == []


def test_the_search_projection_never_passes_the_forum_one(world):
    cats, _dogs = board_world(world)
    world.apply()
    world.post(ALICE, "ahead", board=cats, title="Ahead")
    batch = [Logged(world.position + 1, world.pending[0])]
    with pytest.raises(RuntimeError, match="cannot pass"):
        world.search.apply(batch)


# --- search never shows what the page would not ----------------------------------------

MEMBER = Viewer("did:plc:membermembermembermembe", frozenset({"space.atbb.permission.react"}))
PROPERTY_VIEWERS = (ANON, MEMBER, Viewer("did:plc:modmodmodmodmodmodmodmodm",
                                         frozenset({"space.atbb.permission.moderatePosts"})))
# words of the generated forums' titles and bodies (tests/forum_strategies.py), and one
# found nowhere
PROPERTY_WORDS = ("hello", "world", "same", "here", "ünïcödé", "x", "reply", "lines",
                  "edited", "first", "help", "title", "nowhere")


@pytest.fixture
def fresh_locations(backend) -> Iterator[Any]:
    made = iter(range(10_000))
    opened: list[ReadModelStore] = []

    def fresh() -> ReadModelStore:
        n = next(made)
        location = (str(backend.tmp / f"p{n}.sqlite3") if backend.name == "sqlite"
                    else f"{backend.schema}_p{n}")
        store = open_read_models(backend.url, location=location)
        opened.append(store)
        return store

    try:
        yield fresh
    finally:
        for store in opened:
            store.close()


def fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word)
                   if not unicodedata.combining(c))


def shown_on_its_page(q: Queries, uri: str, viewer: Viewer, now: Any) -> Any:
    """The post as its topic page shows it to ``viewer`` (None when no page shows it)."""
    location = q.post_location(uri, viewer=viewer, now=now, limit=250)
    if location is None:
        return None
    page = q.topic(location.topic_id, viewer=viewer, now=now, offset=location.offset,
                   limit=250)
    assert page is not None
    for post in (page.topic, *page.replies.items):
        if post.uri == uri:
            return post
    return None


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_search_finds_exactly_what_the_pages_show(fresh_locations, data):
    """Every hit is on its topic page for the same viewer, with the words found; every
    post a page shows with a word is found by it."""
    from projections.forum import ForumProjection
    from projections.search_text import words_of
    from tests.forum_strategies import FORUM_DID, deliveries, forums
    from tests.forum_strategies import NOW as SCENARIO_NOW
    from tests.reference_model import ReferenceModel

    scenario = data.draw(forums())
    batches = data.draw(deliveries(scenario))
    store = fresh_locations()
    forum, search = ForumProjection(FORUM_DID), SearchProjection()
    forum.attach(store)
    search.attach(store)
    for batch in batches:
        forum.apply(batch)
        search.apply(batch)
    q = Queries(store, FORUM_DID)
    ref = ReferenceModel(scenario.events, FORUM_DID)
    now = SCENARIO_NOW
    for viewer in PROPERTY_VIEWERS:
        shown = {}
        for uri in ref.ok_posts():
            post = shown_on_its_page(q, uri, viewer, now)
            if post is not None and not post.deleted_by_author:
                shown[uri] = set(words_of(f"{post.title or ''} {post.text}"))
        for word in PROPERTY_WORDS:
            results = q.search(SearchRequest(word, limit=50), viewer=viewer, now=now)
            hits = {hit.uri: hit for hit in results.hits}
            assert results.total == len(hits) <= 50
            for uri, hit in hits.items():
                assert uri in shown, (viewer, word, uri)
                found = {w for run, matched in (*hit.title, *hit.excerpt) if matched
                         for w in words_of(run)}
                assert {fold(w) for w in found} <= {fold(w) for w in shown[uri]}, (word, found)
                if not viewer.is_moderator:
                    assert not (hit.hidden_by_moderator or hit.author_banned
                                or hit.author_suspended)
            expected = {uri for uri, words in shown.items() if word in words}
            # SQLite folds diacritics (unicode61 remove_diacritics), PostgreSQL's simple
            # configuration does not: between the exact words and the folded ones
            folded = {uri for uri, words in shown.items()
                      if fold(word) in {fold(w) for w in words}}
            assert expected <= set(hits) <= folded, (viewer, word)


# --- a rebuild carries PostgreSQL's documents over ---------------------------------------

CARRIED = "'carriedmark':1"


def search_rows(services: Services) -> dict[str, tuple[Any, ...]]:
    """Each document's row; on PostgreSQL with its ``tsvector`` as text."""
    document = ", CAST(document AS text)" if services.settings.is_postgres else ""
    with services.read_models.read() as session:
        rows = session.query(f"SELECT uri, config, title, body{document} FROM search_docs")
    return {str(row[0]): tuple(row[1:]) for row in rows}


def insertion_order(services: Services) -> list[str]:
    order = "seq" if services.settings.is_postgres else "rowid"
    with services.read_models.read() as session:
        return [str(r[0]) for r in session.query(f"SELECT uri FROM search_docs ORDER BY {order}")]


def oldest_first(services: Services) -> list[str]:
    with services.read_models.read() as session:
        return [str(r[0]) for r in session.query(
            "SELECT p.uri FROM posts p JOIN search_docs d ON d.uri = p.uri"
            " ORDER BY p.created_at, p.uri")]


def test_a_rebuild_carries_documents_where_the_row_is_the_same(backend: Backend) -> None:
    """PostgreSQL: the live generation's documents are marked, so a carried one is told
    from a computed one; the document of a post whose row differs there, and every
    document once the stamp is another's, is computed. SQLite carries nothing: its rows
    come out the same. Either way the rows keep their age order."""
    services = with_child_replays(seeded(backend)[0])
    try:
        before = search_rows(services)
        stale = sorted(before)[0]
        if backend.name == "postgresql":
            with services.read_models.transaction() as session:
                session.execute("UPDATE search_docs SET document = to_tsvector('simple',"
                                " 'carriedmark')")
                # the live post's text differs from what the log says: its document is
                # made anew
                session.execute("UPDATE posts SET text = 'another text' WHERE uri = ?",
                                (stale,))
        assert services.rebuilds is not None
        assert services.rebuilds.run().status == "completed"
        rebuilt = search_rows(services)
        assert rebuilt.keys() == before.keys() and len(rebuilt) > 10
        assert insertion_order(services) == oldest_first(services)
        if backend.name == "sqlite":
            assert rebuilt == before
            return
        assert rebuilt[stale] == before[stale] != (*rebuilt[stale][:3], CARRIED)
        with services.read_models.transaction() as session:
            # what is written next is numbered after the rows copied with their number
            assert session.scalar(
                "SELECT nextval(pg_get_serial_sequence('search_docs', 'seq'))"
            ) > session.scalar("SELECT MAX(seq) FROM search_docs")
        assert all(row[3] == CARRIED for uri, row in rebuilt.items() if uri != stale)
        # documents another stamp made are not carried
        with services.read_models.transaction() as session:
            session.execute("UPDATE search_docs SET document = to_tsvector('simple',"
                            " 'carriedmark')")
            session.execute("UPDATE projection_versions SET version = version + 1"
                            " WHERE name = ?", (DOCUMENTS_STAMP_NAME,))
        assert services.rebuilds.run().status == "completed"
        assert search_rows(services) == before
    finally:
        services.close()
