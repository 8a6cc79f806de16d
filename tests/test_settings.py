from __future__ import annotations

from pathlib import Path

import pytest

from appview.settings import SETTINGS_DOC, Settings, SettingsError, load_settings


def test_defaults_are_the_embedded_sqlite_on_localhost() -> None:
    settings = load_settings({})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.event_log_url == f"sqlite:///{(Path('data') / 'events.sqlite3').resolve()}"
    assert not settings.is_postgres
    assert settings.backfill_cursor_max_age_hours == 48
    assert settings.backfill_concurrency == 10
    assert settings.backfill_rate_limit == 10


def test_environment_values_are_converted_to_their_types() -> None:
    settings = load_settings({
        "PORT": "9000",
        "JETSTREAM_COMPRESS": "true",
        "INGEST_BATCH_SECONDS": "0.5",
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test",
        "FORUM_DID": "did:plc:abc",
        "DATA_DIR": "/tmp/x",
    })
    assert settings.port == 9000
    assert settings.jetstream_compress is True
    assert settings.ingest_batch_seconds == 0.5
    assert settings.is_postgres
    assert settings.read_model_url == settings.event_log_url
    assert settings.data_dir == Path("/tmp/x")


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"JETSTREAM_COMPRESS": "maybe"}, "JETSTREAM_COMPRESS"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"FORUM_DID": "alice"}, "FORUM_DID"),
        ({"INGEST_BATCH_SIZE": "0"}, "INGEST_BATCH_SIZE"),
        ({"MEMBER_SESSION_DAYS": "0"}, "MEMBER_SESSION_DAYS"),
        ({"AVATAR_REFRESH_HOURS": "0"}, "AVATAR_REFRESH_HOURS"),
        ({"AVATAR_REFRESH_HOURS": "inf"}, "AVATAR_REFRESH_HOURS"),
        ({"AVATAR_MAX_BYTES": "0"}, "AVATAR_MAX_BYTES"),
        ({"PUBLIC_URL": "forum.example"}, "PUBLIC_URL"),
        ({"RELAY_URL": "wss://relay.example"}, "RELAY_URL"),
        ({"HANDLE_RESOLVER_DEV_URLS": "http://127.0.0.1:2583, 127.0.0.1:2584"},
         "HANDLE_RESOLVER_DEV_URLS"),
    ],
)
def test_unusable_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        load_settings(env)


def test_no_relay_and_no_development_handle_urls_by_default() -> None:
    settings = load_settings({})
    assert settings.relay_url == "" and settings.handle_resolver_dev_url_list == []
    listed = load_settings({"HANDLE_RESOLVER_DEV_URLS": " http://127.0.0.1:2583/ ,"
                                                        "http://127.0.0.1:2584"})
    assert listed.handle_resolver_dev_url_list == ["http://127.0.0.1:2583",
                                                   "http://127.0.0.1:2584"]


def test_overrides_ignore_missing_flags() -> None:
    settings = Settings().with_overrides(port=None, host="0.0.0.0")
    assert settings.port == 8080
    assert settings.host == "0.0.0.0"


def test_every_documented_variable_maps_to_a_field() -> None:
    fields = set(Settings.__dataclass_fields__)
    assert {attr for attr, _ in SETTINGS_DOC.values()} <= fields
