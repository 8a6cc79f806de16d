"""Log lines (appview/logs.py): LOG_FORMAT=json gives one JSON object per record with
its exception; text stays readable; a handler set up before is left alone."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from appview.logs import JsonFormatter

ROOT = Path(__file__).resolve().parent.parent


def test_a_record_is_one_line_of_json_with_its_exception() -> None:
    logger = logging.getLogger("atbb.test")
    try:
        raise ValueError("bad \"input\"\nsecond line")
    except ValueError:
        record = logger.makeRecord("atbb.test", logging.ERROR, __file__, 1,
                                   "failed %s", ("once",), sys.exc_info())
    line = JsonFormatter(worker=2).format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert (data["level"], data["logger"], data["message"], data["worker"]) == (
        "ERROR", "atbb.test", "failed once", 2)
    assert data["pid"] == os.getpid() and data["time"].endswith("Z")
    assert "ValueError: bad \"input\"" in data["exception"]


def test_atbb_logs_json_lines_when_asked(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path / "data"),
           "DATABASE_URL": "", "LOG_FORMAT": "json"}
    source = tmp_path / "lines.jsonl"
    source.write_text("not json at all\n", encoding="utf-8")  # a WARNING line is logged
    done = subprocess.run([sys.executable, "-c", "from web.cli import main; main()",
                           "events", "append", str(source)], env=env, capture_output=True,
                          text=True)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, "nothing logged"
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message", "pid"} <= set(r) for r in records)
    assert any(r["level"] == "WARNING" and "line 1" in r["message"] for r in records)


def test_a_bad_log_format_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path / "data"),
           "LOG_FORMAT": "xml"}
    done = subprocess.run([sys.executable, "-c", "from web.cli import main; main()",
                           "status"], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "LOG_FORMAT='xml'" in done.stderr
