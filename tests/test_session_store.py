"""Members' sessions in the event-log database: several per DID, expiry and cleanup,
updates that lose to a concurrent refresh, sign-ins in progress spent once, and the
encryption key from the settings or generated once."""

from __future__ import annotations

import pytest

from appview.auth.jose_keys import new_key, private_jwk
from appview.auth.oauth_client import PendingAuthorization
from appview.auth.secret_box import new_key_text
from appview.auth.session_store import PENDING_SECONDS, SessionStore, StaleSession
from appview.devnet.clock import DevClock
from appview.settings import Settings
from tests.conftest import Backend

DID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
OTHER = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
DAY = 86400.0


def settings_of(backend: Backend, **changes: str) -> Settings:
    if backend.name == "sqlite":
        return Settings(data_dir=backend.tmp / "data").with_overrides(**changes)
    return Settings(data_dir=backend.tmp / "data", database_url=backend.url,
                    database_schema=backend.schema or "public").with_overrides(**changes)


def store_of(backend: Backend, clock: DevClock, **changes: str) -> SessionStore:
    return SessionStore(settings_of(backend, **changes), clock, lifetime_seconds=DAY)


def pending(state: str) -> PendingAuthorization:
    return PendingAuthorization(state, "https://pds.example", private_jwk(new_key()),
                                "verifier", DID, "alice.test", "/next", 0.0)


def test_a_did_may_hold_several_sessions_each_expiring(backend: Backend) -> None:
    clock = DevClock()
    store = store_of(backend, clock)
    first, _ = store.create(did=DID, kind="oauth", handle="alice.test",
                            pds_url="https://pds.example", secret={"a": 1})
    clock.advance(10)
    second, _ = store.create(did=DID, kind="password", handle=None,
                             pds_url="https://pds.example", secret={"b": 2})
    store.create(did=OTHER, kind="password", handle=None, pds_url="https://pds.example",
                 secret={"c": 3})
    assert [s.secret for s in store.for_did(DID)] == [{"b": 2}, {"a": 1}]
    assert store.get(first) is not None and store.get("atbbs_unknown") is None
    assert store.get("not-even-the-form") is None
    clock.advance(DAY - 5)  # the first is past its lifetime, the second not yet
    assert store.get(first) is None and store.get(second) is not None
    assert store.cleanup() == 1
    clock.advance(10)
    assert store.cleanup() == 2
    assert store.for_did(DID) == [] and store.for_did(OTHER) == []


def test_an_update_loses_to_one_made_since_it_was_read(backend: Backend) -> None:
    store = store_of(backend, DevClock())
    session_id, record = store.create(did=DID, kind="oauth", handle=None,
                                      pds_url="https://pds.example", secret={"v": 1})
    newer = store.update(record, secret={"v": 2}, pds_url="https://moved.example")
    assert (newer.version, newer.pds_url) == (2, "https://moved.example")
    with pytest.raises(StaleSession):
        store.update(record, secret={"v": 3})
    current = store.get(session_id)
    assert current is not None and current.secret == {"v": 2}
    assert store.delete(record.key) and not store.delete(record.key)


def test_a_sign_in_in_progress_is_taken_once_and_not_after_ten_minutes(
        backend: Backend) -> None:
    clock = DevClock()
    store = store_of(backend, clock)
    store.put_pending(pending("s1"))
    store.put_pending(pending("s2"))
    taken = store.take_pending("s1")
    assert taken is not None and taken.dpop_jwk["d"] and taken.app_state == "/next"
    assert store.take_pending("s1") is None and store.take_pending("") is None
    clock.advance(PENDING_SECONDS + 1)
    assert store.take_pending("s2") is None


def test_the_generated_key_is_shared_and_a_configured_one_replaces_it(
        backend: Backend) -> None:
    clock = DevClock()
    session_id, _ = store_of(backend, clock).create(
        did=DID, kind="oauth", handle=None, pds_url="https://pds.example", secret={"k": 1})
    again = store_of(backend, clock).get(session_id)  # another process of the appview
    assert again is not None and again.secret == {"k": 1}
    configured = store_of(backend, clock, session_encryption_key=new_key_text())
    # a session sealed with a key that is no longer configured reads as signed out
    assert configured.get(session_id) is None
    other_id, _ = configured.create(did=DID, kind="oauth", handle=None,
                                    pds_url="https://pds.example", secret={"k": 2})
    assert configured.get(other_id) is not None
