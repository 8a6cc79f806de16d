"""Docs kept honest: every event type, projection and setting is documented."""

from __future__ import annotations

import typing
from pathlib import Path

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
