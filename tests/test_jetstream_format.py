"""Jetstream v1 lines are written byte for byte as production Jetstream writes them."""

from __future__ import annotations

import json

from appview.devnet.jetstream_format import (
    account_line,
    canonical_record,
    commit_line,
    go_json,
    identity_line,
    iso_time,
)
from appview.devnet.sink import CommitOp
from tests.conftest import CAPTURE


def reencode(line: str) -> str:
    event = json.loads(line)
    if event["kind"] == "commit":
        commit = event["commit"]
        op = CommitOp(
            commit["operation"],
            commit["collection"],
            commit["rkey"],
            commit.get("record"),
            commit.get("cid"),
        )
        return commit_line(event["did"], event["time_us"], commit["rev"], op)
    if event["kind"] == "identity":
        body = event["identity"]
        return identity_line(
            event["did"], event["time_us"], body.get("handle"), body["seq"], time=body["time"]
        )
    body = event["account"]
    return account_line(
        event["did"],
        event["time_us"],
        body["active"],
        body.get("status"),
        body["seq"],
        time=body["time"],
    )


def test_every_captured_line_is_reproduced_byte_for_byte() -> None:
    lines = (CAPTURE / "expected_v1.jsonl").read_text(encoding="utf-8").splitlines()
    kinds = {json.loads(line)["kind"] for line in lines}
    assert kinds == {"commit", "identity", "account"} and len(lines) == 152
    assert [reencode(line) for line in lines] == lines


def test_go_escapes_html_characters_and_line_separators_only() -> None:
    assert go_json({"t": "a<b>&c\u2028é"}) == '{"t":"a\\u003cb\\u003e\\u0026c\\u2028é"}'


def test_records_are_sorted_except_blobs() -> None:
    blob = {"size": 3, "$type": "blob", "mimeType": "image/png", "ref": {"$link": "bafk"}}
    record = {"text": "x", "$type": "a.b.c", "embed": {"image": blob, "alt": ""}}
    assert json.dumps(canonical_record(record)) == json.dumps(
        {
            "$type": "a.b.c",
            "embed": {
                "alt": "",
                "image": {"$type": "blob", "ref": {"$link": "bafk"}, "mimeType": "image/png",
                          "size": 3},
            },
            "text": "x",
        }
    )


def test_delete_has_no_record_or_cid_and_time_has_milliseconds() -> None:
    line = commit_line("did:plc:x", 5, "rev", CommitOp("delete", "a.b.c", "k", None, None))
    assert json.loads(line)["commit"] == {
        "rev": "rev", "operation": "delete", "collection": "a.b.c", "rkey": "k"
    }
    assert iso_time(1_783_175_888_384_849) == "2026-07-04T14:38:08.384Z"
    assert json.loads(identity_line("did:plc:x", 7, "h.test", 1))["identity"] == {
        "did": "did:plc:x", "handle": "h.test", "seq": 1, "time": "1970-01-01T00:00:00.000Z"
    }
