"""Authenticated XRPC calls to a member's own PDS, the same for OAuth sessions (DPoP-bound
access tokens, nonces retried) and app-password sessions (Bearer): tokens about to
expire are refreshed first, and a call the PDS refuses for an expired token is refreshed
and sent once more."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp

from appview.auth.app_password import refusal
from appview.auth.errors import AuthError, SessionExpired
from appview.auth.jose_keys import key_from_jwk
from appview.auth.session_store import SessionKind, StoredSession
from appview.auth.transport import Answer, DpopNonces, send, send_with_dpop
from appview.clock import Clock

REFRESH_AHEAD_SECONDS = 30.0


class Refresher(Protocol):
    async def refresh(self, session: StoredSession) -> StoredSession:
        """The session with new tokens (or with those another request already got);
        raises SessionExpired when the PDS will not refresh it."""
        ...

    async def forget(self, session: StoredSession) -> None:
        """Drop a session the PDS no longer accepts."""
        ...


class XrpcFailure(AuthError):
    """The PDS refused a call: ``status``, XRPC ``error`` name and its message."""

    def __init__(self, message: str, *, status: int, error: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


def _expired(answer: Answer, kind: SessionKind) -> bool:
    if kind == "oauth":
        challenge = answer.headers.get("WWW-Authenticate", "")
        return answer.status == 401 and 'error="invalid_token"' in challenge
    data = answer.json()
    return answer.status == 400 and isinstance(data, dict) and data.get("error") == "ExpiredToken"


class PdsSession:
    """One member's session at their PDS. ``did``, ``handle``, ``pds_url``, ``kind``
    (``oauth`` or ``password``) and ``key`` (the stored row's key) say whose it is."""

    def __init__(self, session: StoredSession, *, http: aiohttp.ClientSession, clock: Clock,
                 nonces: DpopNonces, refresher: Refresher) -> None:
        self._session = session
        self._http = http
        self._clock = clock
        self._nonces = nonces
        self._refresher = refresher

    @property
    def did(self) -> str:
        return self._session.did

    @property
    def handle(self) -> str | None:
        return self._session.handle

    @property
    def pds_url(self) -> str:
        return self._session.pds_url

    @property
    def kind(self) -> SessionKind:
        return self._session.kind

    @property
    def key(self) -> str:
        return self._session.key

    def _expires_soon(self) -> bool:
        if self._session.kind != "oauth":
            return False
        expires_at = self._session.secret["tokens"].get("expires_at")
        now = self._clock.now_us() / 1e6
        return isinstance(expires_at, int | float) and expires_at < now + REFRESH_AHEAD_SECONDS

    async def call(self, method: str, nsid: str, *, params: Mapping[str, str] | None = None,
                   body: Any = None) -> dict[str, Any]:
        """``method`` (GET or POST) ``/xrpc/<nsid>`` with the member's credentials; the
        answer's JSON object. Raises ``XrpcFailure`` for a refusal (4xx/5xx, in the
        PDS's words), ``SessionExpired`` when the session cannot be renewed, and
        ``TransportError`` when the PDS cannot be reached."""
        if self._expires_soon():
            self._session = await self._refresher.refresh(self._session)
        answer = await self._send(method, nsid, params, body)
        if _expired(answer, self._session.kind):
            self._session = await self._refresher.refresh(self._session)
            answer = await self._send(method, nsid, params, body)
            if _expired(answer, self._session.kind):
                await self._refresher.forget(self._session)
                raise SessionExpired("the PDS no longer accepts this session's tokens")
        if not 200 <= answer.status < 300:
            failure = refusal(answer, f"{nsid} refused")
            raise XrpcFailure(str(failure), status=failure.status, error=failure.error)
        data = answer.json()
        return data if isinstance(data, dict) else {}

    async def _send(self, method: str, nsid: str, params: Mapping[str, str] | None,
                    body: Any) -> Answer:
        url = f"{self._session.pds_url.rstrip('/')}/xrpc/{nsid}"
        secret = self._session.secret
        if self._session.kind == "oauth":
            return await send_with_dpop(
                self._http, key_from_jwk(secret["dpop_jwk"], private=True), self._nonces,
                self._clock, method, url, auth_server=False,
                access_token=str(secret["tokens"]["access_token"]), params=params, body=body)
        return await send(self._http, method, url, params=params, body=body,
                          headers={"Authorization": f"Bearer {secret['access_jwt']}"})

    # -- the repo writes and reads the forum makes ---------------------------------------

    async def create_record(self, collection: str, record: Mapping[str, Any], *,
                            rkey: str | None = None, validate: bool | None = None,
                            ) -> dict[str, Any]:
        """``com.atproto.repo.createRecord`` in the member's repo: ``{uri, cid, commit}``."""
        body: dict[str, Any] = {"repo": self.did, "collection": collection,
                                "record": dict(record)}
        if rkey is not None:
            body["rkey"] = rkey
        if validate is not None:
            body["validate"] = validate
        return await self.call("POST", "com.atproto.repo.createRecord", body=body)

    async def put_record(self, collection: str, rkey: str, record: Mapping[str, Any], *,
                         swap_record: str | None = None, validate: bool | None = None,
                         ) -> dict[str, Any]:
        body: dict[str, Any] = {"repo": self.did, "collection": collection, "rkey": rkey,
                                "record": dict(record)}
        if swap_record is not None:
            body["swapRecord"] = swap_record
        if validate is not None:
            body["validate"] = validate
        return await self.call("POST", "com.atproto.repo.putRecord", body=body)

    async def delete_record(self, collection: str, rkey: str, *,
                            swap_record: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"repo": self.did, "collection": collection, "rkey": rkey}
        if swap_record is not None:
            body["swapRecord"] = swap_record
        return await self.call("POST", "com.atproto.repo.deleteRecord", body=body)

    async def get_record(self, collection: str, rkey: str, *,
                         repo: str | None = None) -> dict[str, Any]:
        return await self.call("GET", "com.atproto.repo.getRecord", params={
            "repo": repo or self.did, "collection": collection, "rkey": rkey})
