"""`atbb replay` of files that are not (wholly) an export: a clear error and a non-zero
exit, as `atbb events import` gives, and nothing made when the file is not an export.
(Replaying good exports, and `events export|import|history`, is tests/test_replay.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from appview.bootstrap import bootstrap
from appview.cli import cli
from appview.settings import Settings
from events.export import ExportHeader, to_line
from events.model import Logged, RecordEvent
from tests.conftest import CAPTURE

FORUM = "did:plc:forumforumforumforumforu"
MEMBER = "did:plc:memberaaaaaaaaaaaaaaaaaa"
CID = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"


def _post(position: int, rev: str | None = None) -> str:
    rkey = "3kaaaaaaaaa" + "abcdefghij"[position] + "2"
    event = RecordEvent(
        operation="create", did=MEMBER, collection="space.atbb.post", rkey=rkey,
        rev=rev or rkey,
        cid=CID,
        record={"$type": "space.atbb.post", "text": f"post {position}", "title": "A topic",
                "forum": {"uri": f"at://{FORUM}/space.atbb.forum.forum/self", "cid": CID},
                "createdAt": "2026-11-28T10:00:00.000Z"},
        valid=True, reason=None, source="jetstream", source_cursor=position,
        observed_at=position,
    )
    return to_line(Logged(position, event))


def _export(*body: str) -> str:
    header = ExportHeader(FORUM, 0, None, len(body)).to_line()
    return "\n".join([header, *body]) + "\n"


def _replay(tmp_path: Path, content: bytes | str) -> tuple[Result, Path]:
    source = tmp_path / "input"
    if isinstance(content, str):
        source.write_text(content)
    else:
        source.write_bytes(content)
    db = tmp_path / "replayed"
    result = CliRunner().invoke(cli, ["replay", str(source), "--db", str(db)],
                                env={"FORUM_DID": ""})
    return result, db


def _events_in(db: Path) -> int:
    services = bootstrap(Settings(data_dir=db, forum_did=FORUM))
    try:
        return services.event_log.count()
    finally:
        services.close()


@pytest.mark.parametrize(("content", "reason"), [
    ("", "the file is empty"),
    ("\n\n  \n", "the file is empty"),
    ("hello, this is not JSON\n", "line 1 is neither the header nor an event"),
    (b"\x28\xb5\x2f\xfd\x00\x58\x61\x00\x00", "not JSON"),  # a zstd frame
    ('["a", "list"]\n', "not a JSON object"),
    ('\n{"format": "atbb-event-log", "version": 7}\n', "line 2 is neither"),
])
def test_a_file_that_is_not_an_export_is_refused_and_nothing_is_made(
    tmp_path: Path, content: str | bytes, reason: str,
) -> None:
    result, db = _replay(tmp_path, content)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and reason in lines[0], lines
    assert "nothing was replayed" in lines[0]
    assert not db.exists()


def test_jetstream_lines_are_refused_with_the_command_that_reads_them(
    tmp_path: Path,
) -> None:
    result, db = _replay(tmp_path, (CAPTURE / "expected_v1.jsonl").read_bytes())
    assert result.exit_code == 1
    assert "a Jetstream event: `atbb events append` reads those" in result.output
    assert not db.exists()


def test_bad_lines_are_reported_the_rest_replayed_and_the_exit_is_1(tmp_path: Path) -> None:
    content = _export(_post(1), "{truncated", _post(3), json.dumps({"kind": "commit"}),
                      _post(5, rev="not-a-tid!"))
    result, db = _replay(tmp_path, content)
    assert result.exit_code == 1
    assert "line 3: not JSON" in result.stderr
    assert "line 5: position must be a positive integer" in result.stderr
    assert "line 6: cannot be stored: a TID has 13 characters" in result.stderr
    assert "replayed 2 events" in result.stdout and "bad lines 3" in result.stdout
    assert "posts:" in result.stdout  # the status report still follows
    assert _events_in(db) == 2


def test_a_good_export_replays_with_exit_0(tmp_path: Path) -> None:
    result, db = _replay(tmp_path, "\n" + _export(_post(1), _post(2)))
    assert result.exit_code == 0, result.output
    assert "replayed 2 events" in result.stdout and "bad lines 0" in result.stdout
    assert _events_in(db) == 2


def test_an_export_of_no_events_replays_with_a_warning(tmp_path: Path) -> None:
    result, db = _replay(tmp_path, _export())
    assert result.exit_code == 0, result.output
    assert "warning: the export holds no events" in result.stderr
    assert _events_in(db) == 0
