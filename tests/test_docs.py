"""Docs kept honest: every event type, projection and setting is documented."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from appview.settings import SETTINGS_DOC
from events import codec
from events.model import LogEvent
from projections.forum import all_projections

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_event_type_and_topic_is_in_the_architecture_doc() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    for event_type in typing.get_args(LogEvent):
        assert f"`{event_type.__name__}`" in text, event_type.__name__
    topics = [value for name, value in vars(codec).items() if name.startswith("TOPIC_")]
    assert len(topics) == 6
    for topic in topics:
        assert f"`{topic}`" in text, topic


def test_every_setting_is_in_the_configuration_doc() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for variable in SETTINGS_DOC:
        assert f"`{variable}`" in text, variable


def test_every_projection_is_in_the_projections_doc() -> None:
    text = (DOCS / "projections.md").read_text(encoding="utf-8")
    for projection in all_projections("did:plc:forum"):
        assert f"`{projection.name}`" in text, projection.name
        assert f"version {projection.version}" in text.lower(), projection.name


@pytest.mark.parametrize(("doc", "at_least"),
                         [("security.md", 20), ("operations.md", 15), ("api.md", 5)])
def test_every_test_a_promise_table_names_exists(doc: str, at_least: int) -> None:
    """The promise tables of security.md and operations.md name the tests that hold
    each promise: `tests/x.py::name`, `x.py::name`, or `::name` after one of those."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    tests = DOCS.parent / "tests"
    named = 0
    for row in (line for line in text.splitlines() if line.startswith("| ")):
        current = None
        for reference in re.findall(r"`((?:(?:tests/)?[\w/]+\.py)?::\w+)`", row):
            path, _, name = reference.partition("::")
            current = path.removeprefix("tests/") or current
            assert current is not None, reference
            source = (tests / current).read_text(encoding="utf-8")
            assert re.search(rf"^(async )?def {name}\(", source, re.M), reference
            named += 1
    assert named >= at_least
