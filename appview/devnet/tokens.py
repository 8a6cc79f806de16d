"""Session tokens of a devnet PDS: JWT-shaped, HS256, with the claims and scopes of the
reference PDS, because the SDK decodes them (it schedules refreshes from ``exp``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ACCESS_SCOPE = "com.atproto.access"
APP_PASS_SCOPE = "com.atproto.appPass"
REFRESH_SCOPE = "com.atproto.refresh"


class TokenError(ValueError):
    """A token that is refused. ``error`` is the XRPC error name to answer with."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    scope: str
    iat: int
    exp: int
    jti: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Issues and checks tokens. ``now`` is wall-clock seconds: clients compare ``exp`` with
    their own real clock, so a devnet clock frozen in the past must not age tokens."""

    def __init__(
        self,
        service_did: str,
        *,
        secret: bytes | None = None,
        access_ttl_s: int = 2 * 3600,
        refresh_ttl_s: int = 90 * 24 * 3600,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.service_did = service_did
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._access_ttl_s = access_ttl_s
        self._refresh_ttl_s = refresh_ttl_s
        self._now = now

    def access(self, did: str, *, app_password: bool = False) -> str:
        scope = APP_PASS_SCOPE if app_password else ACCESS_SCOPE
        return self._sign("at+jwt", did, scope, self._access_ttl_s, None)

    def refresh(self, did: str) -> str:
        return self._sign(
            "refresh+jwt", did, REFRESH_SCOPE, self._refresh_ttl_s, _b64(secrets.token_bytes(16))
        )

    def _sign(self, typ: str, did: str, scope: str, ttl_s: int, jti: str | None) -> str:
        iat = int(self._now())
        payload: dict[str, Any] = {
            "scope": scope,
            "sub": did,
            "aud": self.service_did,
            "iat": iat,
            "exp": iat + ttl_s,
        }
        if jti is not None:
            payload["jti"] = jti
        header = {"typ": typ, "alg": "HS256"}
        signing_input = (
            _b64(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64(json.dumps(payload, separators=(",", ":")).encode())
        )
        signature = hmac.new(self._secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        return signing_input + "." + _b64(signature)

    def verify(self, token: str, *, scopes: frozenset[str]) -> Claims:
        """The claims of a valid, unexpired token with one of ``scopes``; raises
        :class:`TokenError` otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("InvalidToken", "token is not a JWT")
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", errors="replace")
        expected = hmac.new(self._secret, signing_input, hashlib.sha256).digest()
        try:
            signature = _unb64(parts[2])
            payload = json.loads(_unb64(parts[1]))
        except (ValueError, UnicodeDecodeError) as exc:
            raise TokenError("InvalidToken", f"token is malformed: {exc}") from exc
        if not hmac.compare_digest(signature, expected):
            raise TokenError("InvalidToken", "token signature is invalid")
        if not isinstance(payload, dict):
            raise TokenError("InvalidToken", "token payload is not an object")
        sub, scope = payload.get("sub"), payload.get("scope")
        iat, exp, jti = payload.get("iat"), payload.get("exp"), payload.get("jti")
        if not isinstance(sub, str) or not isinstance(scope, str):
            raise TokenError("InvalidToken", "token lacks sub or scope")
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise TokenError("InvalidToken", "token lacks iat or exp")
        if scope not in scopes:
            raise TokenError("InvalidToken", f"bad token scope {scope!r}")
        if exp <= self._now():
            raise TokenError("ExpiredToken", "token has expired")
        return Claims(sub, scope, iat, exp, jti if isinstance(jti, str) else None)
