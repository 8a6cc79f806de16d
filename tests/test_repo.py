"""A devnet repository: writes, the sink, listing, and a CAR the SDK reads back."""

from __future__ import annotations

from typing import Any

import pytest
from atproto_crypto.verify import verify_signature

from appview.devnet.clock import DevClock
from appview.devnet.keys import SigningKey
from appview.devnet.repo import Repo, RepoError
from appview.devnet.tid import TidClock
from appview.repos import mst
from appview.repos.car import read_car
from appview.repos.cbor import Cid, encode, record_cid
from events.model import tid_to_int
from tests.recording_sink import RecordingSink

DID = "did:plc:abcdefghijklmnopqrstuvwx"
POST = "space.atbb.post"
FROZEN_US = 1_735_689_600_000_000


def post(text: str) -> dict[str, Any]:
    return {"$type": POST, "text": text, "createdAt": "2025-01-01T00:00:00.000Z"}


def make_repo(sink: RecordingSink | None = None, seed: bytes = b"repo") -> Repo:
    clock = DevClock(frozen_us=FROZEN_US)
    return Repo(
        DID, SigningKey.from_seed(seed), TidClock(clock, clock_id=3), sink or RecordingSink()
    )


def test_writes_are_reported_to_the_sink_with_real_cids_and_rising_revs() -> None:
    sink = RecordingSink()
    repo = make_repo(sink)
    created = repo.create(POST, post("one"), rkey="3kaaaaaaaaaaa")
    updated = repo.put(POST, "3kaaaaaaaaaaa", post("one, edited"))
    deleted = repo.delete(POST, "3kaaaaaaaaaaa")
    assert deleted is not None
    ops = [(rev, op.operation, op.rkey, op.cid) for _, rev, [op] in sink.commits]
    assert ops == [
        (created.rev, "create", "3kaaaaaaaaaaa", record_cid(post("one"))),
        (updated.rev, "update", "3kaaaaaaaaaaa", record_cid(post("one, edited"))),
        (deleted.rev, "delete", "3kaaaaaaaaaaa", None),
    ]
    assert sink.commits[0][2][0].record == post("one")
    assert sink.commits[2][2][0].record is None
    revs = [tid_to_int(rev) for _, rev, _ in sink.commits]
    assert revs == sorted(revs) and len(set(revs)) == 3
    assert created.uri == f"at://{DID}/{POST}/3kaaaaaaaaaaa"
    assert repo.rev == deleted.rev


def test_create_generates_a_tid_rkey_and_put_creates_when_absent() -> None:
    repo = make_repo()
    write = repo.create(POST, post("tid"))
    assert len(write.op.rkey) == 13 and tid_to_int(write.op.rkey) > 0
    assert repo.put(POST, "self", post("new")).op.operation == "create"


def test_deleting_a_missing_record_commits_nothing() -> None:
    sink = RecordingSink()
    repo = make_repo(sink)
    rev = repo.rev
    assert repo.delete(POST, "3kaaaaaaaaaaa") is None
    assert sink.commits == [] and repo.rev == rev


def test_stored_records_are_copies() -> None:
    repo = make_repo()
    record = post("original")
    repo.create(POST, record, rkey="a")
    record["text"] = "mutated by the caller"
    stored = repo.get(POST, "a")
    assert stored is not None and stored.value["text"] == "original"
    stored.value["text"] = "mutated by a reader"
    again = repo.get(POST, "a")
    assert again is not None and again.value["text"] == "original"


def test_listing_is_rkey_ordered_descending_by_default_with_cursors() -> None:
    repo = make_repo()
    rkeys = [f"3k{i:011d}".replace("0", "a").replace("1", "b") for i in range(7)]
    for rkey in reversed(rkeys):
        repo.create(POST, post(rkey), rkey=rkey)
    page = repo.list_records(POST, limit=3)
    assert [r.rkey for r in page] == sorted(rkeys, reverse=True)[:3]
    rest = repo.list_records(POST, limit=10, cursor=page[-1].rkey)
    assert [r.rkey for r in page + rest] == sorted(rkeys, reverse=True)
    forward = repo.list_records(POST, limit=4, reverse=True)
    assert [r.rkey for r in forward] == sorted(rkeys)[:4]
    after = repo.list_records(POST, limit=10, reverse=True, cursor=forward[-1].rkey)
    assert [r.rkey for r in after] == sorted(rkeys)[4:]
    assert repo.list_records("space.atbb.reaction", limit=10) == []
    assert repo.collections() == [POST] and repo.count() == 7


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda r: r.create("not an nsid", post("x")), "not a valid NSID"),
        (lambda r: r.create(POST, post("x"), rkey=".."), "not a valid record key"),
        (lambda r: r.create(POST, post("x"), rkey="has space"), "not a valid record key"),
        (lambda r: r.create(POST, {"text": "no type"}), r"\$type must be"),
        (lambda r: r.create(POST, {"$type": "space.atbb.reaction"}), r"\$type must be"),
        (lambda r: r.create(POST, {**post("x"), "score": 1.5}), "data model"),
        (lambda r: r.create(POST, ["not", "an", "object"]), "JSON object"),
        (
            lambda r: r.create(POST, post("dup"), rkey="a") and r.create(POST, post("x"), rkey="a"),
            "already exists",
        ),
    ],
)
def test_bad_writes_are_refused_with_a_reason_and_commit_nothing(call, reason) -> None:
    sink = RecordingSink()
    repo = make_repo(sink)
    with pytest.raises(RepoError, match=reason):
        call(repo)
    assert all(op.rkey == "a" for _, _, [op] in sink.commits)


def test_car_export_lists_exactly_the_records_and_the_commit_verifies() -> None:
    repo = make_repo()
    kept = {}
    for i in range(40):
        write = repo.create(
            POST if i % 3 else "space.atbb.reaction",
            {
                "$type": POST if i % 3 else "space.atbb.reaction",
                "n": i,
                "createdAt": "2025-01-01T00:00:00.000Z",
            },
        )
        kept[f"{write.op.collection}/{write.op.rkey}"] = write.op.cid
    for key in list(kept)[:5]:
        collection, rkey = key.split("/")
        repo.delete(collection, rkey)
        del kept[key]

    car = read_car(repo.export_car())
    commit = car.blocks[car.root]
    assert commit["did"] == DID and commit["version"] == 3 and commit["prev"] is None
    assert commit["rev"] == repo.rev
    listing = {key: str(cid) for key, cid in mst.walk(commit["data"], car.blocks.get)}
    assert listing == kept
    for cid in listing.values():
        assert Cid.parse(cid) in car.blocks
    unsigned = {k: v for k, v in commit.items() if k != "sig"}
    unsigned["data"] = Cid.coerce(unsigned["data"])
    assert verify_signature(repo.key.did_key, encode(unsigned), commit["sig"])
    assert not verify_signature(
        SigningKey.from_seed(b"other").did_key, encode(unsigned), commit["sig"]
    )
    assert len(car.blocks) == len(repo.blocks())


def test_the_commit_is_rebuilt_only_when_the_rev_moves() -> None:
    repo = make_repo()
    first = repo.commit()
    assert repo.commit() is first
    assert str(first.data) == "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    repo.create(POST, post("x"))
    second = repo.commit()
    assert second.cid != first.cid and second.rev == repo.rev


def test_same_seed_and_frozen_clock_give_the_same_repo_byte_for_byte() -> None:
    def build() -> bytes:
        repo = make_repo(seed=b"deterministic")
        for i in range(25):
            repo.create(POST, post(f"post {i}"))
        repo.delete(POST, repo.list_records(POST, limit=1)[0].rkey)
        return repo.export_car()

    assert build() == build()
