"""Session tokens: JWT-shaped as the SDK decodes them, and checked on use."""

from __future__ import annotations

import pytest
from atproto_server.auth.jwt import get_jwt_payload

from appview.devnet.tokens import (
    ACCESS_SCOPE,
    APP_PASS_SCOPE,
    REFRESH_SCOPE,
    TokenError,
    TokenIssuer,
)

DID = "did:plc:abcdefghijklmnopqrstuvwx"


class FakeTime:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_tokens_decode_with_the_sdk() -> None:
    issuer = TokenIssuer("did:web:pds1", now=FakeTime(1_000_000.0))
    access = get_jwt_payload(issuer.access(DID))
    assert (access.sub, access.scope, access.aud) == (DID, ACCESS_SCOPE, "did:web:pds1")
    assert access.exp == 1_000_000 + 7200
    refresh = get_jwt_payload(issuer.refresh(DID))
    assert refresh.scope == REFRESH_SCOPE and refresh.jti
    assert get_jwt_payload(issuer.access(DID, app_password=True)).scope == APP_PASS_SCOPE


def test_verify_accepts_the_right_scope_only() -> None:
    issuer = TokenIssuer("did:web:pds1")
    claims = issuer.verify(issuer.access(DID), scopes=frozenset({ACCESS_SCOPE}))
    assert claims.sub == DID
    with pytest.raises(TokenError, match="scope") as refused:
        issuer.verify(issuer.refresh(DID), scopes=frozenset({ACCESS_SCOPE}))
    assert refused.value.error == "InvalidToken"


def test_expired_tokens_are_refused_as_expired() -> None:
    clock = FakeTime(1_000_000.0)
    issuer = TokenIssuer("did:web:pds1", now=clock)
    token = issuer.access(DID)
    clock.now += 7200
    with pytest.raises(TokenError) as refused:
        issuer.verify(token, scopes=frozenset({ACCESS_SCOPE}))
    assert refused.value.error == "ExpiredToken"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "x",
        lambda t: t.rsplit(".", 1)[0],
        lambda t: "a.b.c",
        lambda t: "",
        lambda t: TokenIssuer("did:web:other").access(DID),
    ],
)
def test_forged_or_malformed_tokens_are_refused_with_a_reason(mangle) -> None:
    issuer = TokenIssuer("did:web:pds1")
    with pytest.raises(TokenError) as refused:
        issuer.verify(mangle(issuer.access(DID)), scopes=frozenset({ACCESS_SCOPE}))
    assert refused.value.error == "InvalidToken" and str(refused.value)
