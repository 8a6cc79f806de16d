"""How the appview's processes log: readable lines, or one JSON object per line
(LOG_FORMAT=json) for a log collector, to stderr either way."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from appview.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, ``pid``, ``worker`` (the `atbb serve --workers` index, when there is
    one) and ``exception`` (the formatted traceback) when the record has one."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self._worker = worker

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, object] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": os.getpid(),
        }
        if self._worker is not None:
            line["worker"] = self._worker
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def configure_logging(settings: Settings, *, worker: int | None = None) -> None:
    """Send the root logger's records to stderr in LOG_FORMAT at LOG_LEVEL, as
    ``logging.basicConfig`` does: not when the root logger has a handler already (one a
    test or an embedding program set up)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(worker))
    else:
        prefix = "" if worker is None else f"[worker {worker}] "
        handler.setFormatter(logging.Formatter(
            TEXT_FORMAT.replace("%(message)s", prefix + "%(message)s")))
    root.addHandler(handler)
    root.setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))
    # The XRPC client logs every request at INFO; that is noise in a terminal.
    logging.getLogger("httpx").setLevel(logging.WARNING)
