"""ES256 keys from the settings, DPoP proofs and client assertions (decoded back with
joserfc to check what they claim)."""

from __future__ import annotations

import json

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from appview.auth.jose_keys import (
    ASSERTION_SECONDS,
    KeyProblem,
    client_assertion,
    dpop_proof,
    new_key,
    parse_client_keys,
    private_jwk,
    public_jwk,
    sha256_b64url,
    thumbprint,
)


def test_client_keys_parse_from_a_jwk_set_or_a_list() -> None:
    one, two = private_jwk(new_key("one")), private_jwk(new_key("two"))
    assert [k.kid for k in parse_client_keys(json.dumps({"keys": [one, two]}))] == [
        "one", "two"]
    assert [k.kid for k in parse_client_keys(json.dumps([two]))] == ["two"]
    assert parse_client_keys("  ") == []


@pytest.mark.parametrize(("raw", "problem"), [
    ("{nope", "not JSON"),
    ("[]", "expected a JWK set"),
    (json.dumps([public_jwk(new_key("pub"))]), "no private part"),
    (json.dumps([{**private_jwk(new_key("x")), "kid": ""}]), "no 'kid'"),
    (json.dumps([private_jwk(new_key("x")), private_jwk(new_key("x"))]), "duplicate kid"),
    (json.dumps([{"kty": "OKP", "crv": "Ed25519", "x": "a", "d": "b", "kid": "e"}]), "P-256"),
])
def test_unusable_client_keys_are_named(raw: str, problem: str) -> None:
    with pytest.raises(KeyProblem, match=problem):
        parse_client_keys(raw)


def test_a_dpop_proof_names_the_request_and_binds_the_token() -> None:
    key = new_key()
    proof = dpop_proof(key, method="post", url="https://pds.example/xrpc/x?y=1#z",
                       now_s=1_700_000_000, nonce="n1", access_token="tok")
    decoded = jwt.decode(proof, ECKey.import_key(public_jwk(key)), algorithms=["ES256"])
    assert decoded.header["typ"] == "dpop+jwt" and "d" not in decoded.header["jwk"]
    assert ECKey.import_key(decoded.header["jwk"]).thumbprint() == thumbprint(key)
    claims = decoded.claims
    assert (claims["htm"], claims["htu"], claims["nonce"], claims["iat"]) == (
        "POST", "https://pds.example/xrpc/x", "n1", 1_700_000_000)
    assert claims["ath"] == sha256_b64url("tok")
    other = jwt.decode(dpop_proof(key, method="GET", url="https://a.example/", now_s=1,
                                  nonce=None), ECKey.import_key(public_jwk(key))).claims
    assert "nonce" not in other and "ath" not in other and other["jti"] != claims["jti"]


def test_a_client_assertion_is_short_lived_and_names_the_server() -> None:
    key = new_key("k1")
    assertion = client_assertion(key, client_id="https://f.example/oauth/client-metadata.json",
                                 audience="https://pds.example", now_s=100)
    decoded = jwt.decode(assertion, ECKey.import_key(public_jwk(key)), algorithms=["ES256"])
    assert decoded.header["kid"] == "k1"
    claims = decoded.claims
    assert claims["iss"] == claims["sub"] == "https://f.example/oauth/client-metadata.json"
    assert (claims["aud"], claims["exp"]) == ("https://pds.example", 100 + ASSERTION_SECONDS)
    with pytest.raises(KeyProblem, match="kid"):
        client_assertion(new_key(), client_id="c", audience="a", now_s=1)
