"""`atbb diff`: two positions, two moments, a generation and the live read models, in
words and as JSON, on both backends."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from appview.bootstrap import Services
from appview.cli import cli
from events.moments import from_micros
from tests.conftest import Backend
from tests.rebuild_support import seeded


def _env(services: Services) -> dict[str, str]:
    s = services.settings
    return {"DATA_DIR": str(s.data_dir), "DATABASE_URL": s.database_url,
            "DATABASE_SCHEMA": s.database_schema, "FORUM_DID": s.forum_did}


def _diff(services: Services, *args: str) -> Result:
    return CliRunner().invoke(cli, ["diff", *args], env=_env(services))


def test_positions_moments_and_generations(backend: Backend) -> None:
    services, _ = seeded(backend, topics=4)
    try:
        head = services.event_log.head()
        middle = head // 2
        words = _diff(services, "--from", str(middle), "--to", str(head))
        assert words.exit_code == 0, words.output
        assert words.output.startswith(f"from position {middle} to position {head}:")
        assert "posts: " in words.output and " added, " in words.output
        as_json = _diff(services, "--from", str(middle), "--to", str(head), "--json")
        body = json.loads(as_json.output)
        posts = next(t for t in body["tables"] if t["table"] == "posts")
        assert posts["added"] and all("uri" in row for row in posts["added"])
        # the log's head, projected afresh, is the live read models (times included)
        same = _diff(services, "--from", str(head), "--to", "live")
        assert same.exit_code == 0 and "no row differs" in same.output, same.output
        assert "no row differs" in _diff(services, "--from", "gen:1").output
        observed = next(services.event_log.iter_from(middle - 1, middle)).event.observed_at
        moment = from_micros(observed).isoformat()
        at = _diff(services, "--from", moment, "--to", str(head))
        assert at.exit_code == 0 and "(position " in at.output.splitlines()[0]
        missing = _diff(services, "--from", "gen:9")
        assert missing.exit_code == 1 and "there is no generation 9" in missing.output
        bad = _diff(services, "--from", "Tuesday")
        assert bad.exit_code == 2 and "neither a position" in bad.output
    finally:
        services.close()
