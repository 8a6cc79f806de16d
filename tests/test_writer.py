"""The record writer: validated before sending, logged at once as ``local`` with the
PDS's uri, cid and rev, projected for the author's next page; nothing left behind by a
PDS that fails; the network's copy a duplicate; the per-member limit; on both
backends."""

from __future__ import annotations

import asyncio
import itertools
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appview.bootstrap import Services
from appview.clock import Clock
from appview.devnet.clock import DevClock
from appview.projector import SharedProjector
from appview.writes.errors import (
    InvalidRecord,
    PdsUnavailable,
    RateLimited,
    SignInAgain,
    WriteRefused,
)
from appview.writes.ratelimit import WriteLimiter
from appview.writes.writer import RecordKeys, RecordWriter
from events.collections import POST
from events.lexicon import LexiconValidator
from events.model import RecordEvent
from events.records import StrongRef, reply_record, topic_record
from events.store import open_event_log
from projections.forum import ForumProjection
from projections.ids import post_id
from projections.readmodel import open_read_models
from projections.runner import project_to_head
from tests.conftest import Backend
from tests.fakes import dump_tables
from tests.writes_support import (
    CREATED,
    FAULTS,
    OWNER,
    FakeRepoSession,
    WriteForum,
    did_for,
    pds_failure,
    write_forum,
    write_services,
)

NOW = datetime.now(UTC)
VALIDATOR = LexiconValidator.load()


class StepClock:
    def __init__(self, now_us: int = 1_750_000_000_000_000) -> None:
        self.now = now_us

    def now_us(self) -> int:
        return self.now


def topic(forum: WriteForum, title: str = "Hello", text: str = "First words.",
          ) -> dict[str, Any]:
    assert forum.forum.cid is not None and forum.board.cid is not None
    return topic_record(title, text, forum=StrongRef(forum.forum.uri, forum.forum.cid),
                        board=StrongRef(forum.board.uri, forum.board.cid), created_at=CREATED)


def topics_in(services: Services, forum: WriteForum) -> int:
    page = services.queries.board_topics(forum.board.uri, now=NOW)
    assert page is not None
    return page.total


async def test_a_write_is_logged_as_local_with_the_pdss_answer_and_shown_at_once(
        backend: Backend) -> None:
    with write_services(backend) as services:
        forum = await write_forum(services.writer, FakeRepoSession(OWNER))
        alice = FakeRepoSession("alice")
        written = await services.writer.create(alice, POST, topic(forum))
        stored = alice.repo.get(POST, written.rkey)
        assert stored is not None and written.cid == stored.cid
        assert written.rev == alice.repo.rev and written.shown
        [logged] = services.event_log.history(written.uri)
        assert isinstance(logged.event, RecordEvent)
        assert (logged.event.source, logged.event.rev, logged.event.cid, logged.event.valid) \
            == ("local", alice.repo.rev, stored.cid, True)
        assert logged.event.record == stored.value
        page = services.queries.topic(post_id(written.uri), now=NOW)
        assert page is not None and page.topic.title == "Hello"
        # the network's copy later is the same version: a duplicate, not a second post
        before = services.event_log.count()
        result = services.event_log.append(alice.network_copies())
        assert (result.appended, result.duplicates) == (0, 1)
        assert services.event_log.count() == before


@pytest.mark.parametrize("text, field", [("", "text"), ("x" * 10_001, "text")])
async def test_an_invalid_record_is_never_sent(backend: Backend, text: str, field: str) -> None:
    with write_services(backend) as services:
        forum = await write_forum(services.writer, FakeRepoSession(OWNER))
        alice = FakeRepoSession("alice")
        head = services.event_log.head()
        with pytest.raises(InvalidRecord) as refused:
            await services.writer.create(alice, POST, topic(forum, text=text))
        assert refused.value.field == field and "post.text" in str(refused.value)
        assert alice.calls == [] and alice.repo.count() == 0
        assert services.event_log.head() == head


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_failing_pds_leaves_nothing_behind(backend: Backend, fault: str) -> None:
    with write_services(backend) as services:
        forum = await write_forum(services.writer, FakeRepoSession(OWNER))
        alice = FakeRepoSession("alice", faults=[FAULTS[fault]()])
        head = services.event_log.head()
        expected = SignInAgain if fault == "expired" else PdsUnavailable
        with pytest.raises(expected) as failed:
            await services.writer.create(alice, POST, topic(forum))
        assert failed.value.status == (401 if fault == "expired" else 503)
        assert services.event_log.head() == head
        assert topics_in(services, forum) == 0
        # and the same write goes through once the PDS is back
        written = await services.writer.create(alice, POST, topic(forum))
        assert topics_in(services, forum) == 1
        assert written.shown


async def test_a_pds_refusal_comes_back_in_its_words(backend: Backend) -> None:
    with write_services(backend) as services:
        forum = await write_forum(services.writer, FakeRepoSession(OWNER))
        alice = FakeRepoSession("alice", faults=[pds_failure(400, "InvalidRequest")])
        with pytest.raises(WriteRefused) as refused:
            await services.writer.create(alice, POST, topic(forum))
        assert refused.value.status == 400 and refused.value.pds_error == "InvalidRequest"
        assert "refused" in str(refused.value)
        swapped = FakeRepoSession("bob")
        first = await services.writer.create(swapped, POST, topic(forum))
        with pytest.raises(WriteRefused) as conflict:
            await services.writer.put(swapped, POST, first.rkey, topic(forum, text="Edit"),
                                      swap_record="bafyreinotthecidthatisthere")
        assert conflict.value.status == 409
        # the PDS's own words ("Record was at <cid>") are kept, after what they mean
        message = str(conflict.value)
        assert message.startswith("This post was changed elsewhere") and "Record was at" in message


async def test_without_a_rev_in_the_answer_the_head_is_asked_and_checked(
        backend: Backend) -> None:
    with write_services(backend) as services:
        forum = await write_forum(services.writer, FakeRepoSession(OWNER))
        alice = FakeRepoSession("alice", omit_rev=True)
        written = await services.writer.create(alice, POST, topic(forum))
        assert written.rev == alice.repo.rev and written.shown
        assert alice.calls[1:] == ["com.atproto.sync.getLatestCommit",
                                   "com.atproto.repo.getRecord",
                                   "com.atproto.sync.getLatestCommit"]
        assert services.event_log.append(alice.network_copies()).appended == 0
        # a delete answered with no commit: the record is gone at the head's rev
        deleted = await services.writer.delete(alice, POST, written.rkey)
        assert deleted.rev == alice.repo.rev and deleted.position is not None

        # the member edits the record between our two looks at the head: no rev can be
        # trusted, nothing is logged, the network's copy brings it
        async def meanwhile() -> None:
            alice.repo.put(POST, again.rkey, topic(forum, text="Edited elsewhere"))

        again_record = topic(forum, text="Second")
        alice.between = None
        again = await services.writer.create(alice, POST, again_record)
        alice.between = meanwhile
        head = services.event_log.head()
        edited = await services.writer.put(alice, POST, again.rkey,
                                           topic(forum, text="Mine"))
        assert edited.rev is None and edited.position is None and not edited.shown
        assert services.event_log.head() == head


async def test_each_member_is_limited_per_minute(backend: Backend) -> None:
    with write_services(backend, writes_per_minute=7) as services:
        assert services.writer.limiter.per_minute == 7  # the setting
        forum = await write_forum(services.writer, FakeRepoSession(OWNER))
        services.writer.limiter = WriteLimiter(2, services.clock)
        alice, bob = FakeRepoSession("alice"), FakeRepoSession("bob")
        with pytest.raises(InvalidRecord):  # refused before the PDS: costs nothing
            await services.writer.create(alice, POST, topic(forum, text=""))
        for _ in range(2):
            await services.writer.create(alice, POST, topic(forum))
        with pytest.raises(RateLimited) as limited:
            await services.writer.create(alice, POST, topic(forum))
        assert limited.value.status == 429 and 1 <= limited.value.retry_after <= 60
        assert alice.repo.count() == 2
        await services.writer.create(bob, POST, topic(forum))  # others are not


def test_the_window_slides() -> None:
    clock = StepClock()
    limiter = WriteLimiter(3, clock)
    for _ in range(3):
        limiter.take("did:plc:a")
        clock.now += 10_000_000
    with pytest.raises(RateLimited) as limited:
        limiter.take("did:plc:a")
    assert limited.value.retry_after == 30  # the first write leaves the window at 60 s
    clock.now += 30_000_000
    limiter.take("did:plc:a")
    with pytest.raises(RateLimited):
        limiter.take("did:plc:a")


def test_the_limiter_remembers_a_bounded_number_of_members() -> None:
    limiter = WriteLimiter(5, StepClock(), max_members=100)
    for n in range(1000):
        limiter.take(f"did:plc:{n}")
    assert limiter.remembered() == 100


def test_record_keys_rise_even_when_the_clock_stands_still() -> None:
    clock: Clock = StepClock()
    keys = RecordKeys(clock, clock_id=5)
    made = [keys.next() for _ in range(100)]
    assert made == sorted(made) and len(set(made)) == 100


async def test_a_reply_to_a_written_topic_is_in_its_thread(backend: Backend) -> None:
    with write_services(backend) as services:
        forum = await write_forum(services.writer, FakeRepoSession(OWNER))
        alice, bob = FakeRepoSession("alice"), FakeRepoSession("bob")
        opened = await services.writer.create(alice, POST, topic(forum))
        assert opened.cid is not None
        assert forum.forum.cid is not None
        answer = reply_record("Welcome!", forum=StrongRef(forum.forum.uri, forum.forum.cid),
                              root=StrongRef(opened.uri, opened.cid),
                              parent=StrongRef(opened.uri, opened.cid), created_at=CREATED)
        await services.writer.create(bob, POST, answer)
        page = services.queries.topic(post_id(opened.uri), now=NOW)
        assert page is not None and [r.text for r in page.replies.items] == ["Welcome!"]


# --- property: one post per write, whatever the interleaving ----------------------------

OPS = st.lists(st.one_of(
    st.just(("write",)),
    st.just(("write, the network's copy first",)),
    st.tuples(st.just("redeliver"), st.integers(0, 30)),
    st.tuples(st.just("edit"), st.integers(0, 30)),
    st.just(("rebuild",)),
), min_size=1, max_size=14)


@pytest.fixture
def fresh(backend: Backend):
    """A new event log and read-model location per call (per hypothesis example)."""
    counter = itertools.count()

    @contextmanager
    def make():
        n = next(counter)
        if backend.name == "sqlite":
            event_log = open_event_log(f"sqlite:///{backend.tmp / f'log-{n}.sqlite3'}")
        else:
            event_log = open_event_log(backend.url, schema=f"{backend.schema}_l{n}")
        stores = []

        def store(name: str):
            if backend.name == "sqlite":
                opened = open_read_models(backend.url,
                                          location=str(backend.tmp / f"rm-{n}-{name}.sqlite3"))
            else:
                opened = open_read_models(backend.url, location=f"{backend.schema}_{n}{name}")
            stores.append(opened)
            return opened

        try:
            yield event_log, store
        finally:
            for opened in stores:
                opened.close()
            event_log.close()

    return make


async def _interleave(event_log, store, ops) -> None:
    live = store("live")
    projection = ForumProjection(did_for(OWNER))
    projection.attach(live)
    clock = DevClock()
    writer = RecordWriter(event_log=event_log, validator=VALIDATOR, forum_did=did_for(OWNER),
                          clock=clock, projector=SharedProjector(event_log, [projection],
                                                                 batch_size=500),
                          limiter=WriteLimiter(1_000_000, clock))
    forum = await write_forum(writer, FakeRepoSession(OWNER))
    alice = FakeRepoSession("alice")
    written: list[str] = []  # rkeys
    texts: dict[str, str] = {}
    versions: dict[str, int] = {}
    rebuilds = 0
    for n, op in enumerate(ops):
        if op[0].startswith("write"):
            if op[0] != "write":
                async def network_first() -> None:
                    event_log.append(alice.network_copies()[-1:])
                alice.after_write = network_first
            done = await writer.create(alice, POST, topic(forum, text=f"post {n}"))
            alice.after_write = None
            written.append(done.rkey)
            texts[done.rkey] = f"post {n}"
            versions[done.rkey] = 1
        elif op[0] == "redeliver":
            copies = alice.network_copies()
            if copies:
                event_log.append([copies[op[1] % len(copies)]])
        elif op[0] == "edit" and written:
            rkey = written[op[1] % len(written)]
            await writer.put(alice, POST, rkey, topic(forum, text=f"edit {n}"))
            texts[rkey] = f"edit {n}"
            versions[rkey] += 1
        elif op[0] == "rebuild":
            rebuilds += 1
            rebuilt = store(f"r{rebuilds}")
            again = ForumProjection(did_for(OWNER))
            again.attach(rebuilt)
            project_to_head(event_log, [again])
            projection_now = ForumProjection(did_for(OWNER))
            projection_now.attach(live)
            project_to_head(event_log, [projection_now])
            assert dump_tables(rebuilt) == dump_tables(live)
    with live.read() as session:
        rows = session.query("SELECT rkey, text FROM posts WHERE did = ? AND deleted = 0",
                             (alice.did,))
    assert sorted(rkey for rkey, _text in rows) == sorted(written)  # one post per write
    assert dict(rows) == texts
    # every copy delivered at last: each version is in the log once, whoever came first
    event_log.append(alice.network_copies())
    for rkey in written:
        assert len(event_log.history(f"at://{alice.did}/{POST}/{rkey}")) == versions[rkey]


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_any_interleaving_of_writes_redeliveries_and_rebuilds_gives_one_post_per_write(
        fresh, ops) -> None:
    with fresh() as (event_log, store):
        asyncio.run(_interleave(event_log, store, ops))
