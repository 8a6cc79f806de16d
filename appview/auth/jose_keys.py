"""ES256 keys and the JWTs the OAuth client signs with them (DPoP proofs, client
assertions), all through joserfc: nothing here encodes or signs a JWT by hand."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

ALG = "ES256"
CURVE = "P-256"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SECONDS = 60


class KeyProblem(ValueError):
    """A key setting or stored key that cannot be used; the message says why."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def sha256_b64url(text: str) -> str:
    """base64url(SHA-256(text)): PKCE's S256 challenge and DPoP's ``ath``."""
    return b64url(hashlib.sha256(text.encode("ascii")).digest())


def random_token(size: int = 32) -> str:
    return secrets.token_urlsafe(size)


def new_key(kid: str | None = None) -> ECKey:
    """A fresh P-256 key (a DPoP key per session, or a client key)."""
    parameters: dict[str, Any] = {"alg": ALG, "use": "sig"}
    if kid is not None:
        parameters["kid"] = kid
    return ECKey.generate_key(CURVE, parameters=parameters, private=True)  # type: ignore[arg-type]


def key_from_jwk(data: Mapping[str, Any], *, private: bool) -> ECKey:
    """An ES256 key from its JWK; refuses other curves and, when ``private``, public
    halves."""
    if not isinstance(data, Mapping) or data.get("kty") != "EC" or data.get("crv") != CURVE:
        raise KeyProblem("not a P-256 (ES256) JWK")
    if private and "d" not in data:
        raise KeyProblem("the JWK has no private part ('d')")
    try:
        return ECKey.import_key(dict(data))
    except (JoseError, ValueError, TypeError) as exc:
        raise KeyProblem(f"unusable JWK: {exc}") from exc


def private_jwk(key: ECKey) -> dict[str, Any]:
    return dict(key.as_dict(private=True))


def public_jwk(key: ECKey) -> dict[str, Any]:
    """The public half as published (kid, alg and use kept; no private member)."""
    return {name: value for name, value in key.as_dict(private=False).items() if name != "d"}


def bare_public_jwk(key: ECKey) -> dict[str, Any]:
    """Only the members RFC 7638 hashes: what goes into a DPoP proof's header."""
    full = key.as_dict(private=False)
    return {name: full[name] for name in ("crv", "kty", "x", "y")}


def thumbprint(key: ECKey) -> str:
    """RFC 7638 SHA-256 thumbprint (DPoP's ``jkt``)."""
    return str(key.thumbprint())


def parse_client_keys(raw: str) -> list[ECKey]:
    """OAUTH_CLIENT_KEYS: a JSON JWK set (``{"keys": [...]}``) or a JSON list of private
    ES256 JWKs, each with a distinct ``kid``; the first signs, all are published."""
    if not raw.strip():
        return []
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise KeyProblem(f"not JSON: {exc}") from None
    items = data.get("keys") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise KeyProblem('expected a JWK set {"keys": [...]} or a list of JWKs')
    keys: list[ECKey] = []
    kids: set[str] = set()
    for index, item in enumerate(items):
        try:
            key = key_from_jwk(item, private=True)
        except KeyProblem as exc:
            raise KeyProblem(f"key {index}: {exc}") from None
        kid = item.get("kid")
        if not isinstance(kid, str) or not kid:
            raise KeyProblem(f"key {index}: has no 'kid'")
        if kid in kids:
            raise KeyProblem(f"key {index}: duplicate kid {kid!r}")
        kids.add(kid)
        keys.append(key)
    return keys


def dpop_proof(key: ECKey, *, method: str, url: str, now_s: int, nonce: str | None,
               access_token: str | None = None) -> str:
    """A DPoP proof (RFC 9449 §4.2) for one request: ``htu`` is the URL without query
    or fragment; ``ath`` binds it to the access token when one is sent."""
    claims: dict[str, Any] = {
        "jti": random_token(16),
        "htm": method.upper(),
        "htu": url.split("#", 1)[0].split("?", 1)[0],
        "iat": now_s,
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if access_token is not None:
        claims["ath"] = sha256_b64url(access_token)
    header = {"typ": "dpop+jwt", "alg": ALG, "jwk": bare_public_jwk(key)}
    return jwt.encode(header, claims, key, algorithms=[ALG])


def client_assertion(key: ECKey, *, client_id: str, audience: str, now_s: int) -> str:
    """A ``private_key_jwt`` client assertion (RFC 7523 §3) for the AS ``audience``."""
    kid = key.kid
    if not kid:
        raise KeyProblem("a client key needs a kid")
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": random_token(16),
        "iat": now_s,
        "exp": now_s + ASSERTION_SECONDS,
    }
    return jwt.encode({"alg": ALG, "kid": kid}, claims, key, algorithms=[ALG])
