"""What the web layer calls to sign members in and out and to write as them: one object
built by the composition root, holding the OAuth client, the session store and one HTTP
client pool.

- ``begin_oauth(text)`` → the URL to send the browser to (``NoOAuth``: offer the app
  password form instead);
- ``finish_oauth(query)`` → ``SignedIn`` (the cookie's session id);
- ``sign_in_with_password(identifier, password)`` → ``SignedIn``;
- ``pds_session(session_id)`` / ``pds_session_for_did(did)`` → ``PdsSession``;
- ``sign_out(session_id)``; ``client_metadata()`` and ``jwks()`` for ``/oauth/…``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from appview.auth import app_password
from appview.auth.errors import (
    AuthError,
    CallbackError,
    IdentityError,
    ServerRefused,
    SessionExpired,
)
from appview.auth.http_clients import PooledClient
from appview.auth.identity import Identity, is_did, normalise_handle
from appview.auth.jose_keys import KeyProblem, parse_client_keys
from appview.auth.oauth_client import OAuthClient, TokenSet
from appview.auth.oauth_metadata import (
    CALLBACK_PATH,
    ClientConfig,
    client_metadata_document,
    confidential_client,
    jwks_document,
    loopback_client,
)
from appview.auth.pds_session import PdsSession
from appview.auth.session_store import (
    SESSION_ID_PREFIX,
    SessionStore,
    StaleSession,
    StoredSession,
    session_key,
)
from appview.auth.transport import DpopNonces
from appview.clock import Clock
from appview.settings import Settings, SettingsError
from appview.side_db import SideDatabase

# A session read from the store serves this process's requests for a few seconds (every
# signed-in request names one: without this, each paid a database round trip, a new
# connection on PostgreSQL). Signing out or renewing here updates it at once; elsewhere,
# within this time (and the member's server has revoked the tokens meanwhile anyway).
SESSION_CACHE_SECONDS = 5.0
SESSION_CACHE_SIZE = 1024


@dataclass(frozen=True)
class SignedIn:
    session_id: str  # what the cookie carries; shown here once
    did: str
    handle: str | None
    kind: str  # oauth | password
    app_state: str  # what begin_oauth was given (e.g. the page to return to)


def client_config(settings: Settings) -> ClientConfig:
    """The OAuth client this appview is, from PUBLIC_URL and OAUTH_CLIENT_KEYS."""
    url = settings.public_url.rstrip("/")
    if not url.startswith("https://"):
        base = url or f"http://127.0.0.1:{settings.port}"
        try:
            return loopback_client(base + CALLBACK_PATH)
        except AuthError as exc:
            raise SettingsError(f"PUBLIC_URL={settings.public_url!r}: {exc}") from None
    try:
        keys = parse_client_keys(settings.oauth_client_keys)
    except KeyProblem as exc:
        raise SettingsError(f"OAUTH_CLIENT_KEYS: {exc}") from None
    if not keys:
        raise SettingsError(f"PUBLIC_URL={url!r} needs OAUTH_CLIENT_KEYS (docs/auth.md)")
    host = url.removeprefix("https://").split("/", 1)[0]
    try:
        return confidential_client(url, tuple(keys), client_name=f"atBB forum at {host}")
    except AuthError as exc:
        raise SettingsError(f"PUBLIC_URL={url!r}: {exc}") from None


class MemberAuth:
    def __init__(self, settings: Settings, clock: Clock, *, client: ClientConfig | None = None,
                 store: SessionStore | None = None, identity: Identity | None = None,
                 side: SideDatabase | None = None) -> None:
        self._settings = settings
        self._side = side
        self._clock = clock
        self.client = client if client is not None else client_config(settings)
        self._store = store
        self._store_lock = threading.Lock()
        self._net = PooledClient(settings, identity)
        self._oauth: OAuthClient | None = None
        self._oauth_http: aiohttp.ClientSession | None = None
        self._nonces = DpopNonces()
        self._locks: dict[str, asyncio.Lock] = {}
        self._recent: OrderedDict[str, tuple[float, StoredSession]] = OrderedDict()
        self._recent_lock = threading.Lock()

    @property
    def store(self) -> SessionStore:
        """The session store, made (its tables too) at first use: every command
        bootstraps the services, few of them sign anyone in."""
        with self._store_lock:
            if self._store is None:
                self._store = SessionStore(
                    self._settings, self._clock,
                    lifetime_seconds=self._settings.member_session_days * 86400,
                    side=self._side)
            return self._store

    # -- documents served by the web ----------------------------------------------------

    def client_metadata(self) -> dict[str, Any]:
        """``/oauth/client-metadata.json`` (raises MetadataError for the loopback client,
        which has none: answer 404)."""
        return client_metadata_document(self.client)

    def jwks(self) -> dict[str, Any]:
        """``/oauth/jwks.json``."""
        return jwks_document(self.client)

    # -- plumbing -----------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        return self._net.session()

    def _oauth_client(self) -> OAuthClient:
        http = self._net.session()
        if self._oauth is None or self._oauth_http is not http:  # made with a closed pool
            self._oauth = OAuthClient(self.client, http, self._net.identity(), self._clock,
                                      self._nonces)
            self._oauth_http = http
        return self._oauth

    def identity(self) -> Identity:
        """The identity port sign-in resolves handles and DIDs through."""
        return self._net.identity()

    async def aclose(self) -> None:
        """Close the HTTP client pool (the web app's cleanup)."""
        await self._net.aclose()
        self._oauth = self._oauth_http = None

    # -- OAuth sign-in ------------------------------------------------------------------

    async def begin_oauth(self, text: str, *, app_state: str = "") -> str:
        """The authorization URL for what the member typed (handle, DID or PDS URL).
        Raises ``NoOAuth`` (carrying did, handle, pds_url) when the PDS has no OAuth,
        ``IdentityError`` / ``MetadataError`` / ``ServerRefused`` otherwise."""
        url, pending = await self._oauth_client().authorize(text, app_state=app_state)
        await asyncio.to_thread(self.store.put_pending, pending)
        return url

    async def finish_oauth(self, params: Mapping[str, str]) -> SignedIn:
        """The redirect to ``/oauth/callback``: its query parameters. Raises
        ``CallbackError`` (nothing stored) for an unknown or reused state, a wrong issuer,
        a refusal, or tokens for another account."""
        pending = await asyncio.to_thread(self.store.take_pending, params.get("state", ""))
        if pending is None:
            raise CallbackError("this sign-in is unknown or has expired (state): start again")
        oauth = self._oauth_client()
        tokens = await oauth.callback(params, pending)
        handle = pending.handle
        if handle is None:
            try:
                handle = (await self.identity().resolve_did(tokens.sub, fresh=False)).handle
            except IdentityError:
                handle = None
        session_id, record = await asyncio.to_thread(
            self.store.create, did=tokens.sub, kind="oauth", handle=handle,
            pds_url=tokens.pds_url, secret={"tokens": tokens.to_json(),
                                            "dpop_jwk": pending.dpop_jwk})
        await asyncio.to_thread(self.store.cleanup)
        return SignedIn(session_id, record.did, record.handle, "oauth", pending.app_state)

    # -- app-password sign-in -----------------------------------------------------------

    async def sign_in_with_password(self, identifier: str, password: str) -> SignedIn:
        """``identifier`` is a handle or DID; its PDS is found through the DID document
        and must answer for that very DID."""
        value = identifier.strip()
        if is_did(value):
            did = value
        else:
            handle = normalise_handle(value)
            if handle is None:
                raise IdentityError(f"{value!r} is not a handle or a DID")
            did = await self.identity().resolve_handle(handle)
        resolved = await self.identity().resolve_did(did, fresh=False)
        tokens = await app_password.create_session(self._session(), resolved.pds_url, did,
                                                   password)
        if tokens.did != did:
            raise ServerRefused(f"{resolved.pds_url} signed in {tokens.did}, not {did}",
                                status=401, error="AuthenticationRequired")
        session_id, record = await asyncio.to_thread(
            self.store.create, did=did, kind="password",
            handle=resolved.handle or tokens.handle, pds_url=resolved.pds_url,
            secret=tokens.to_json())
        await asyncio.to_thread(self.store.cleanup)
        return SignedIn(session_id, record.did, record.handle, "password", "")

    # -- sessions -----------------------------------------------------------------------

    def _wrap(self, record: StoredSession) -> PdsSession:
        return PdsSession(record, http=self._session(), clock=self._clock,
                          nonces=self._nonces, refresher=self)

    def _cached(self, key: str) -> StoredSession | None:
        with self._recent_lock:
            entry = self._recent.get(key)
            if entry is None:
                return None
            until, record = entry
            if until < time.monotonic() or record.expires_at <= self._clock.now_us() / 1e6:
                del self._recent[key]
                return None
            self._recent.move_to_end(key)
            return record

    def _remember(self, record: StoredSession) -> None:
        with self._recent_lock:
            self._recent[record.key] = (time.monotonic() + SESSION_CACHE_SECONDS, record)
            self._recent.move_to_end(record.key)
            while len(self._recent) > SESSION_CACHE_SIZE:
                self._recent.popitem(last=False)

    def _drop(self, key: str) -> None:
        with self._recent_lock:
            self._recent.pop(key, None)

    async def pds_session(self, session_id: str) -> PdsSession | None:
        """The session a cookie names, ready for XRPC calls; None when signed out or
        expired."""
        if not session_id.startswith(SESSION_ID_PREFIX) or len(session_id) > 100:
            return None
        record = self._cached(session_key(session_id))
        if record is None:
            record = await asyncio.to_thread(self.store.get, session_id)
            if record is not None:
                self._remember(record)
        return None if record is None else self._wrap(record)

    async def pds_session_for_did(self, did: str) -> PdsSession | None:
        """The newest live session of ``did`` (a Bearer token acting as its DID writes
        through it); None when the member never signed in here."""
        records = await asyncio.to_thread(self.store.for_did, did)
        return self._wrap(records[0]) if records else None

    async def sign_out(self, session_id: str) -> bool:
        """Revoke the session's grant at its server and forget it; False if there was no
        such session."""
        record = await asyncio.to_thread(self.store.get, session_id)
        if record is None:
            return False
        try:
            if record.kind == "oauth":
                await self._oauth_client().revoke(TokenSet.from_json(record.secret["tokens"]),
                                                  record.secret["dpop_jwk"])
            else:
                await app_password.delete_session(self._session(), record.pds_url,
                                                  str(record.secret["refresh_jwt"]))
        finally:
            self._drop(record.key)
            await asyncio.to_thread(self.store.delete, record.key)
        return True

    async def cleanup(self) -> int:
        return await asyncio.to_thread(self.store.cleanup)

    # -- the Refresher port of PdsSession -----------------------------------------------

    async def forget(self, session: StoredSession) -> None:
        self._drop(session.key)
        await asyncio.to_thread(self.store.delete, session.key)

    async def refresh(self, session: StoredSession) -> StoredSession:
        self._drop(session.key)  # whatever happens, the next request reads the store
        lock = self._locks.setdefault(session.key, asyncio.Lock())
        async with lock:
            current = await asyncio.to_thread(self.store.by_key, session.key)
            if current is None:
                raise SessionExpired("the session has ended: sign in again")
            if current.version != session.version:
                return current  # another request of this process refreshed it meanwhile
            try:
                secret, pds_url = await self._renew(current)
            except (ServerRefused, CallbackError) as exc:
                if isinstance(exc, ServerRefused) and exc.status not in (400, 401):
                    raise  # the server failed, the session may well be fine
                newer = await asyncio.to_thread(self.store.by_key, session.key)
                if newer is not None and newer.version != current.version:
                    return newer  # another process spent the refresh token first
                await asyncio.to_thread(self.store.delete, session.key)
                raise SessionExpired(f"the session could not be renewed: {exc}") from exc
            try:
                return await asyncio.to_thread(self.store.update, current, secret=secret,
                                               pds_url=pds_url)
            except StaleSession:
                newer = await asyncio.to_thread(self.store.by_key, session.key)
                if newer is None:
                    raise SessionExpired("the session has ended: sign in again") from None
                return newer

    async def _renew(self, session: StoredSession) -> tuple[dict[str, Any], str]:
        if session.kind == "oauth":
            tokens = await self._oauth_client().refresh(
                TokenSet.from_json(session.secret["tokens"]), session.secret["dpop_jwk"])
            return {"tokens": tokens.to_json(), "dpop_jwk": session.secret["dpop_jwk"]}, \
                tokens.pds_url
        fresh = await app_password.refresh_session(self._session(), session.pds_url,
                                                   str(session.secret["refresh_jwt"]))
        return fresh.to_json(), session.pds_url
