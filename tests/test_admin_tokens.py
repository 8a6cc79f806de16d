"""Admin tokens: stored hashed beside the log, resolved, listed, revoked; the session
secret shared by every process of one appview."""

from __future__ import annotations

from appview.admin_tokens import AdminTokens, token_hash
from appview.bootstrap import bootstrap
from tests.conftest import Backend
from tests.test_consumer import settings_for

DID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


def test_tokens_are_issued_resolved_listed_and_revoked(backend: Backend) -> None:
    services = bootstrap(settings_for(backend, "tokens", DID))
    try:
        tokens = services.admin_tokens
        record, secret = tokens.issue(DID, "ops laptop")
        assert secret.startswith("atbb_") and len(secret) > 40
        resolved = tokens.resolve(secret)
        assert resolved is not None and (resolved.did, resolved.label) == (DID, "ops laptop")
        assert tokens.resolve(secret + "x") is None
        assert tokens.resolve("not-a-token") is None
        assert [t.id for t in tokens.list()] == [record.id]
        assert secret not in repr(tokens.list())
        assert tokens.revoke(record.id)
        assert not tokens.revoke(record.id)
        assert tokens.resolve(secret) is None
        assert tokens.by_id(record.id) is None
        assert tokens.list()[0].revoked_at is not None
    finally:
        services.close()


def test_the_token_table_outlives_the_process_and_holds_only_hashes(backend: Backend) -> None:
    settings = settings_for(backend, "tokens", DID)
    first = bootstrap(settings)
    try:
        record, secret = first.admin_tokens.issue(DID)
        key = first.admin_tokens.session_secret()
    finally:
        first.close()
    second = AdminTokens(settings, first.clock)
    resolved = second.resolve(secret)
    assert resolved is not None and resolved.id == record.id
    assert second.session_secret() == key  # every process signs the same sessions
    assert len(token_hash(secret)) == 64


def test_a_configured_session_secret_wins(backend: Backend) -> None:
    settings = settings_for(backend, "tokens", DID).with_overrides(session_secret="s3cret")
    services = bootstrap(settings)
    try:
        assert services.admin_tokens.session_secret() == b"s3cret"
        assert "s3cret" not in repr(settings)
    finally:
        services.close()


def test_made_up_tokens_cannot_grow_the_cache(backend: Backend) -> None:
    settings = settings_for(backend, "tokens", DID)
    services = bootstrap(settings)
    try:
        tokens = AdminTokens(settings, services.clock, cache_sizes=(4, 16))
        record, secret = services.admin_tokens.issue(DID)
        assert tokens.resolve(secret) == record
        for number in range(200):  # each made up, each looked up twice
            made_up = f"atbb_{number:012x}_{'x' * 43}"
            assert tokens.resolve(made_up) is None
            assert tokens.resolve(made_up) is None
        assert tokens.cached() == (1, 16)  # bounded; the live token was never pushed out
        assert tokens.resolve(secret) == record
        assert tokens.revoke(record.id)
        assert tokens.resolve(secret) is None  # revocation still takes effect at once
        assert tokens.cached() == (0, 16)
    finally:
        services.close()
