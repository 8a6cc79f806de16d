"""`projections.row_diff`: on random forums, the diff between two positions is the
row-by-row comparison of the two states, and applying it to the first gives the second;
what changed, in words."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appview.logbook import reading
from events.store import open_event_log
from projections.row_diff import (
    Snapshot,
    diff_snapshots,
    in_words,
    primary_keys,
    snapshot,
)
from projections.schema import TABLES
from tests.forum_strategies import FORUM_DID, ForumScenario, forums


def _state(scenario: ForumScenario, cuts: tuple[int, int]) -> tuple[Snapshot, Snapshot]:
    log = open_event_log("sqlite:///:memory:")
    try:
        log.append(scenario.events)
        book = reading(log, forum_did=FORUM_DID)
        head = log.head()
        states = []
        for cut in cuts:
            with book.project(upto=cut * head // 100) as projected:
                states.append(snapshot(projected.query))
        return states[0], states[1]
    finally:
        log.close()


def _by_key(rows: list[dict[str, Any]], key: tuple[str, ...]) -> dict[tuple[Any, ...], Any]:
    return {tuple(row[n] for n in key): row for row in rows}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=forums(max_steps=30), cuts=st.tuples(st.integers(0, 100),
                                                      st.integers(0, 100)))
def test_the_diff_is_the_row_by_row_comparison(scenario: ForumScenario,
                                               cuts: tuple[int, int]) -> None:
    before, after = _state(scenario, cuts)
    diffs = {d.table: d for d in diff_snapshots(before, after)}
    keys = primary_keys()
    for table in before:
        old, new = _by_key(before[table], keys[table]), _by_key(after[table], keys[table])
        diff = diffs.get(table)
        added = [] if diff is None else diff.added
        removed = [] if diff is None else diff.removed
        changed = {} if diff is None else {c.key: c for c in diff.changed}
        assert sorted(map(repr, added)) == sorted(repr(new[k]) for k in new.keys() - old.keys())
        assert sorted(map(repr, removed)) == sorted(repr(old[k]) for k in old.keys() - new.keys())
        assert set(changed) == {k for k in old.keys() & new.keys() if old[k] != new[k]}
        for key, change in changed.items():
            assert change.before == old[key] and change.after == new[key]
            assert change.columns == {n: (old[key][n], new[key][n]) for n in old[key]
                                      if old[key][n] != new[key][n]}
        # applied to the first state, the diff gives the second
        rebuilt = {k: v for k, v in old.items() if k not in {
            tuple(r[n] for n in keys[table]) for r in removed}}
        rebuilt.update({tuple(r[n] for n in keys[table]): r for r in added})
        rebuilt.update({k: c.after for k, c in changed.items()})
        assert rebuilt == new
    assert diff_snapshots(after, after) == []
    assert len(in_words(diffs.values(), after)) >= len(diffs)


def _post(uri: str, **fields: Any) -> dict[str, Any]:
    return {"uri": uri, "id": uri[-5:], "kind": "topic", "title": "Welcome", "hidden": 0,
            "deleted": 0, "reply_count": 9, **fields}


def test_what_changed_in_words() -> None:
    topic, reply = "at://did:plc:a/space.atbb.post/3kabc", "at://did:plc:b/space.atbb.post/3kxyz"
    hide = {"uri": "at://forum/space.atbb.modAction/3kmod", "rkey": "3kmod", "family": "hide",
            "deleted": 0, "subject_uri": reply, "subject_did": None,
            "created_by": "did:plc:moderator", "did": "did:plc:forum"}
    before: Snapshot = {"posts": [_post(topic), _post(reply, kind="reply", title=None)],
                        "mod_actions": []}
    after: Snapshot = {"posts": [_post(topic, reply_count=10),
                                 _post(reply, kind="reply", title=None, hidden=1)],
                       "mod_actions": [hide]}
    lines = in_words(diff_snapshots(before, after), after)
    assert lines == [
        "posts: 0 added, 0 removed, 2 changed",
        "  ~ topic 3kabc 'Welcome': reply_count 9 → 10",
        "  ~ reply 3kxyz: hidden by moderator did:plc:moderator",
        "mod_actions: 1 added, 0 removed, 0 changed",
        "  + mod action at://forum/space.atbb.modAction/3kmod",
    ]
    assert in_words(diff_snapshots(after, before), before, limit=1)[2] == "  ... and 1 more"


def test_every_table_has_a_primary_key() -> None:
    assert set(primary_keys()) == set(TABLES)
