"""The seeded forum scenario: determinism, sizes, DIDs, and its Jetstream stream."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict

import pytest

from appview.devnet.clock import DevClock
from appview.devnet.forum_summary import summarize
from appview.devnet.jetstream_format import canonical_record, commit_line, go_json
from appview.devnet.pds import PdsHost
from appview.devnet.plc import PlcDirectory
from appview.devnet.scenario import (
    EPOCH_US,
    ScenarioSize,
    build_scenario,
    clock_id,
    scenario_to_jetstream_lines,
)
from appview.devnet.scenario_model import Operation
from appview.devnet.sink import CommitOp
from appview.repos.cbor import record_cid
from events.jetstream import parse_line
from events.lexicon import LexiconValidator
from events.model import RecordEvent, tid_to_int
from tests.conftest import CAPTURE
from tests.recording_sink import RecordingSink

START_US = 1_780_000_000_000_000
TINY = ScenarioSize(members=6, categories=2, boards=3, topics=8, replies_per_topic=3.0)


def fingerprint(scenario) -> str:
    accounts = [asdict(account) | {"key_seed": account.key_seed.hex()} for account in
                scenario.accounts]
    operations = [asdict(op) for op in scenario.operations()]
    return json.dumps({"accounts": accounts, "operations": operations}, sort_keys=True)


def test_same_seed_same_scenario_byte_for_byte_and_another_seed_differs() -> None:
    first = fingerprint(build_scenario(5, "small"))
    assert fingerprint(build_scenario(5, "small")) == first
    assert fingerprint(build_scenario(6, "small")) != first


def test_the_bare_shape_tells_the_same_story_with_bare_references() -> None:
    original = build_scenario(7, TINY, real_dids=False).operation_list()
    bare = build_scenario(7, TINY, real_dids=False, shape="bare").operation_list()

    def outline(ops: list[Operation]) -> list[tuple[str, str, str, str, int]]:
        return [(op.actor, op.op, op.collection, op.rkey, op.at_us) for op in ops]

    assert outline(bare) == outline(original)
    assert [op.cid for op in bare] != [op.cid for op in original]
    posts = [op.record for op in bare
             if op.record is not None and op.collection == "space.atbb.post"]
    assert posts and all(set(post["forum"]) == {"cid", "uri"} for post in posts)
    forum_did = build_scenario(7, TINY, real_dids=False).forum.did
    assert summarize(bare, forum_did) == summarize(original, forum_did)


def test_small_has_the_sizes_the_demo_promises() -> None:
    scenario = build_scenario(1, "small")
    counts = Counter((op.collection, op.op) for op in scenario.operations())
    assert len(scenario.members) == 10
    assert counts["space.atbb.forum.category", "create"] == 3
    assert counts["space.atbb.forum.board", "create"] == 6
    assert counts["space.atbb.membership", "create"] == 10
    assert counts["space.atbb.forum.roleAssignment", "create"] == 10
    posts = counts["space.atbb.post", "create"]
    topics = sum(
        1 for op in scenario.operations()
        if op.collection == "space.atbb.post" and op.op == "create"
        and "reply" not in (op.record or {})
    )
    assert topics == 40 and 200 <= posts - topics <= 215  # 200 replies plus the spam
    assert counts["space.atbb.post", "put"] > 0 and counts["space.atbb.post", "delete"] > 0
    assert counts["space.atbb.reaction", "create"] > 40


def test_large_reaches_five_thousand_posts() -> None:
    scenario = build_scenario(1, "large", real_dids=False)
    counts = Counter((op.collection, op.op) for op in scenario.operations())
    assert len(scenario.members) == 200
    assert 5_000 <= counts["space.atbb.post", "create"] <= 5_100


def test_real_dids_are_the_ones_the_pds_gives() -> None:
    scenario = build_scenario(3, TINY, pds_names=("alpha", "beta"))
    hosts = {
        name: PdsHost(name, clock=DevClock(), sink=RecordingSink(), plc=PlcDirectory())
        for name in ("alpha", "beta")
    }
    assert {account.pds for account in scenario.accounts} == {"alpha", "beta"}
    for account in scenario.accounts:
        created = hosts[account.pds].create_account(
            account.handle, account.password, seed=account.key_seed
        )
        assert created.did == account.did


def test_hashed_dids_differ_from_plc_ones_but_keep_the_story() -> None:
    real = build_scenario(3, TINY)
    hashed = build_scenario(3, TINY, real_dids=False)
    assert all(a.did != b.did for a, b in zip(real.accounts, hashed.accounts, strict=True))
    assert [(op.collection, op.op, op.at_us) for op in real.operations()] == [
        (op.collection, op.op, op.at_us) for op in hashed.operations()
    ]


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        ("medium", "unknown size 'medium'"),
        (ScenarioSize(members=0), "at least 1 member"),
        (ScenarioSize(categories=3, boards=2), "a board per category"),
        (ScenarioSize(edit_rate=2.0), "edit_rate must be between 0 and 1"),
    ],
)
def test_bad_sizes_are_refused_with_a_reason(size, reason) -> None:
    with pytest.raises(ValueError, match=reason):
        build_scenario(1, size)


# --- Jetstream lines ---------------------------------------------------------------------


def captured_shapes() -> dict[str, list[str]]:
    shapes: dict[str, list[str]] = {}
    for line in (CAPTURE / "expected_v1.jsonl").read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        key = event["kind"] + "." + event.get("commit", {}).get("operation", "")
        body = event.get("commit") or event.get(event["kind"])
        shapes.setdefault(key, list(event) + list(body))
    return shapes


def test_lines_are_v1_with_real_cids_and_per_repo_revs() -> None:
    scenario = build_scenario(2, "small")
    lines = list(scenario_to_jetstream_lines(scenario, start_time_us=START_US))
    events = [json.loads(line) for line in lines]
    operations = scenario.operation_list()
    assert len(events) == 2 * len(scenario.accounts) + len(operations)
    shapes = captured_shapes()
    last_rev: dict[str, int] = {}
    times = [event["time_us"] for event in events]
    assert times == sorted(set(times)) and times[0] == START_US
    clocks = {account.did: clock_id(account.pds) for account in scenario.accounts}
    for event in events:
        kind = event["kind"]
        if kind != "commit":
            body = event[kind]
            assert list(event) + list(body) in (
                shapes[f"{kind}."], [*event, "did", "handle", "seq", "time"]
            )
            continue
        commit = event["commit"]
        assert list(event) + list(commit) == shapes["commit." + commit["operation"]]
        if "record" in commit:
            assert commit["cid"] == record_cid(commit["record"])
        rev = tid_to_int(commit["rev"])
        assert rev & 1023 == clocks[event["did"]]
        assert rev > last_rev.get(event["did"], 0)
        last_rev[event["did"]] = rev
    ops = Counter(event["commit"]["operation"] for event in events if event["kind"] == "commit")
    assert set(ops) == {"create", "update", "delete"}


def test_fast_lines_equal_the_reference_formatter_byte_for_byte() -> None:
    scenario = build_scenario(2, TINY, real_dids=False)
    for line in scenario_to_jetstream_lines(scenario, start_time_us=START_US):
        event = json.loads(line)
        if event["kind"] != "commit":
            continue
        commit = event["commit"]
        op = CommitOp(commit["operation"], commit["collection"], commit["rkey"],
                      commit.get("record"), commit.get("cid"))
        assert commit_line(event["did"], event["time_us"], commit["rev"], op) == line


def test_story_records_are_already_in_jetstream_key_order() -> None:
    for op in build_scenario(4, "small").operations():
        if op.record is not None:
            assert go_json(op.record) == go_json(canonical_record(op.record)), op.uri


def test_duplicates_and_redeliveries_repeat_lines_and_nothing_else() -> None:
    scenario = build_scenario(2, TINY)
    clean = list(scenario_to_jetstream_lines(scenario, start_time_us=START_US))
    noisy = list(
        scenario_to_jetstream_lines(
            scenario, start_time_us=START_US, duplicate_rate=0.2, redelivery_rate=0.05,
            redelivery_window=10,
        )
    )
    assert len(noisy) > len(clean) * 1.3
    assert set(noisy) == set(clean)
    first_seen = list(dict.fromkeys(noisy))
    assert first_seen == clean
    again = list(
        scenario_to_jetstream_lines(
            scenario, start_time_us=START_US, duplicate_rate=0.2, redelivery_rate=0.05,
            redelivery_window=10,
        )
    )
    assert again == noisy


def test_fixed_spacing_and_bad_rates() -> None:
    scenario = build_scenario(2, TINY, real_dids=False)
    lines = scenario_to_jetstream_lines(scenario, start_time_us=START_US, spacing_us=1000)
    times = [json.loads(line)["time_us"] for line in lines]
    accounts = 2 * len(scenario.accounts)
    assert {b - a for a, b in zip(times[accounts:], times[accounts + 1:], strict=False)} == {1000}
    with pytest.raises(ValueError, match="between 0 and 1"):
        next(scenario_to_jetstream_lines(scenario, start_time_us=0, duplicate_rate=1.5))


def test_scenario_time_starts_at_the_fixed_epoch() -> None:
    scenario = build_scenario(9, TINY, real_dids=False)
    first = next(scenario.operations())
    assert scenario.start_us == EPOCH_US < first.at_us < EPOCH_US + 86_400_000_000


def test_the_ingest_parser_accepts_every_line_as_a_valid_event() -> None:
    scenario = build_scenario(2, TINY, real_dids=False)
    validator = LexiconValidator.load()
    kinds: Counter[str] = Counter()
    for line in scenario_to_jetstream_lines(scenario, start_time_us=START_US):
        parsed = parse_line(
            line, forum_did=scenario.forum.did, validator=validator, observed_at=START_US
        )
        assert parsed.error is None and parsed.ignored is None, (parsed, line)
        assert parsed.event is not None
        kinds[type(parsed.event).__name__] += 1
        if isinstance(parsed.event, RecordEvent):
            assert parsed.event.valid, parsed.event.reason
    assert set(kinds) == {"RecordEvent", "IdentityChanged", "AccountStatusChanged"}
