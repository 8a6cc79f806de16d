"""The `atbb` commands that need no web front end, run through click on both backends."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from appview.cli import cli
from events.jetstream import to_line
from events.model import RecordEvent
from tests.conftest import CAPTURE, Backend

FORUM_DID = "did:plc:forumforumforumforumforu"


def _env(backend: Backend) -> dict[str, str]:
    env = {"DATA_DIR": str(backend.tmp / "data"), "FORUM_DID": FORUM_DID, "DATABASE_URL": ""}
    if backend.name == "postgresql":
        env["DATABASE_URL"] = backend.url
        assert backend.schema is not None
        env["DATABASE_SCHEMA"] = backend.schema
    return env


def _run(backend: Backend, *args: str, input: str | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), env=_env(backend), input=input,
                           catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _post_line(did: str, rkey: str, rev: str, time_us: int, text: str = "hello") -> str:
    event = RecordEvent(
        operation="create", did=did, collection="space.atbb.post", rkey=rkey, rev=rev,
        cid="bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
        record={
            "$type": "space.atbb.post", "text": text, "title": "A topic",
            "forum": {"uri": f"at://{FORUM_DID}/space.atbb.forum.forum/self",
                      "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
            "board": {"uri": f"at://{FORUM_DID}/space.atbb.forum.board/3kboard2222222",
                      "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
            "createdAt": "2026-11-28T10:00:00.000Z",
        },
        valid=True, reason=None, source="jetstream", source_cursor=time_us, observed_at=0,
    )
    return to_line(event, time_us)


def test_the_real_capture_appends_nothing_and_reports_the_manifest_counts(
    backend: Backend,
) -> None:
    manifest = json.loads((CAPTURE / "manifest.json").read_text())
    code, out, _ = _run(backend, "events", "append", "--json",
                        str(CAPTURE / "expected_v1.jsonl"))
    assert code == 0
    report = json.loads(out)
    assert report["lines"] == manifest["v1_events"] == 152
    assert report["by_kind"] == {
        "commit.create": manifest["creates"],
        "commit.update": manifest["updates"],
        "commit.delete": manifest["deletes"],
        "identity": manifest["identity"],
        "account": manifest["account"],
    }
    assert report["stored"] == 0
    assert report["errors"] == 0
    code, out, _ = _run(backend, "status", "--json")
    assert json.loads(out)["event_log"]["events"] == 0


def test_bad_lines_are_reported_by_number_and_the_rest_is_appended(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    did = "did:plc:memberaaaaaaaaaaaaaaaaaa"
    good_1 = _post_line(did, "3kaaaaaaaaaa2", "3kaaaaaaaaaa2", 1_000)
    good_2 = _post_line(did, "3kaaaaaaaaab2", "3kaaaaaaaaab2", 2_000)
    huge = _post_line(did, "3kaaaaaaaaac2", "3kaaaaaaaaac2", 3_000, text="x" * 2_000_000)
    lines = [
        good_1,
        "{not json",
        good_2[: len(good_2) // 2],  # truncated
        '{"did": "did:plc:x", "time_us": 5, "kind": "commit", "commit": []}',  # wrong shape
        huge,
        good_2,
        good_1,  # a re-delivery
    ]
    code, out, err = _run(backend, "events", "append", "-", input="\n".join(lines) + "\n")
    assert code == 0
    # each bad line once, as a warning (so LOG_LEVEL=WARNING shows it), not echoed again
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for number in (2, 3, 4, 5):
        assert len([m for m in warned if m.startswith(f"line {number}:")]) == 1
    assert not [m for m in warned if m.startswith(("line 1:", "line 6:", "line 7:"))]
    assert "line " not in err
    assert "7 lines read" in out
    assert "stored 2" in out
    assert "duplicates 1" in out
    assert "rejected lines 4" in out

    code, _, _ = _run(backend, "events", "append", "--strict", "-", input="{oops\n")
    assert code == 1


def test_the_json_report_lists_every_refused_or_invalid_line_once(backend: Backend) -> None:
    did = "did:plc:memberaaaaaaaaaaaaaaaaaa"
    good = _post_line(did, "3kaaaaaaaaaa2", "3kaaaaaaaaaa2", 1_000)
    no_text = json.loads(_post_line(did, "3kaaaaaaaaab2", "3kaaaaaaaaab2", 2_000))
    del no_text["commit"]["record"]["text"]
    invalid = json.dumps(no_text)
    identity = json.dumps({"did": "did:plc:strangerstrangerstranger", "time_us": 3_000,
                           "kind": "identity", "identity": {"seq": 4, "handle": "s.test"}})
    lines = [good, "{not json", invalid, "", good, identity, invalid,
             good.replace("space.atbb.post", "app.bsky.feed.post")]

    code, out, _ = _run(backend, "events", "append", "--json", "-",
                        input="\n".join(lines) + "\n")

    assert code == 0
    report = json.loads(out)
    buckets = ("stored", "duplicates", "ignored", "held", "errors", "pending")
    assert {key: report[key] for key in ("lines", "invalid", *buckets)} == {
        "lines": 8, "stored": 2, "invalid": 1, "duplicates": 2, "ignored": 2, "held": 1,
        "errors": 1, "pending": 0}
    assert sum(report[key] for key in buckets) == report["lines"]
    assert [(r["line"], r["outcome"]) for r in report["reported"]] == [
        (2, "error"), (3, "invalid"), (5, "duplicate"), (7, "duplicate")]
    reasons = {r["line"]: r["reason"] for r in report["reported"]}
    assert reasons[2].startswith("malformed JSON")
    assert reasons[3].startswith(f"at://{did}/space.atbb.post/3kaaaaaaaaab2: ")
    assert reasons[5] == (f"already in the log: at://{did}/space.atbb.post/3kaaaaaaaaaa2"
                          " at rev 3kaaaaaaaaaa2")


def test_project_then_status_reports_positions_and_rows(backend: Backend) -> None:
    did = "did:plc:memberaaaaaaaaaaaaaaaaaa"
    lines = [_post_line(did, f"3kaaaaaaaaa{c}2", f"3kaaaaaaaaa{c}2", i)
             for i, c in enumerate("abcdefg", start=1)]
    _run(backend, "events", "append", "-", input="\n".join(lines))
    code, out, _ = _run(backend, "project")
    assert code == 0
    assert "applied 21 events" in out  # 7 by each of the three projections
    code, out, _ = _run(backend, "status", "--json")
    status = json.loads(out)
    assert status["event_log"]["head"] >= 7
    for info in status["projections"].values():
        assert info["lag"] == 0
        assert info["position"] == status["event_log"]["head"]
    assert sum(status["rows"].values()) > 0


def test_a_bad_setting_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status"], env={"PORT": "eighty",
                                                      "DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2
    assert "PORT" in result.output


def _replace_the_log(backend: Backend) -> None:
    """What an operator does by mistake: another event log beside the read models (a
    fresh database, or a log restored from somewhere else)."""
    if backend.schema is None:
        for suffix in ("", "-wal", "-shm"):
            (backend.tmp / "data" / f"events.sqlite3{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    with psycopg.connect(backend.url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{backend.schema}" CASCADE')  # the generations stay


def test_read_models_of_another_log_are_refused_then_rebuilt_when_asked(
        backend: Backend) -> None:
    did = "did:plc:memberaaaaaaaaaaaaaaaaaa"
    first = [_post_line(did, f"3kaaaaaaaaa{c}2", f"3kaaaaaaaaa{c}2", i, text=f"first {c}")
             for i, c in enumerate("abcdef", start=1)]
    _run(backend, "events", "append", "-", input="\n".join(first))
    assert _run(backend, "project")[0] == 0
    _replace_the_log(backend)
    second = [_post_line(did, f"3kbbbbbbbbb{c}2", f"3kbbbbbbbbb{c}2", i, text=f"second {c}")
              for i, c in enumerate("ab", start=1)]
    _run(backend, "events", "append", "-", input="\n".join(second))

    for command in (["project"], ["ingest", "--jetstream-url", "ws://127.0.0.1:9/x"]):
        code, _, err = _run(backend, *command)
        assert code == 1
        assert "built from another event log" in err and "atbb rebuild" in err
    code, out, _ = _run(backend, "status")
    assert code == 0 and "read models NOT USABLE" in out
    from appview.settings import load_settings
    from web.cli import serve

    served = CliRunner().invoke(serve, ["--port", "0"], obj=load_settings(_env(backend)))
    assert served.exit_code == 1 and "another event log" in served.stderr

    result = CliRunner().invoke(cli, ["project"], catch_exceptions=False,
                                env={**_env(backend), "FOREIGN_READ_MODELS": "rebuild"})
    assert result.exit_code == 0, result.output
    assert "projections at position 2 (log head 2)" in result.stdout
    code, out, _ = _run(backend, "status", "--json")
    status = json.loads(out)
    assert status["read_models_problem"] is None
    assert status["rows"]["posts"] == 2  # the second log's, none of the first's
    assert _run(backend, "project")[0] == 0
