"""The Forum account's agent: the one session through which the appview writes the
forum's own records (moderation actions, roles, role assignments, structure, themes)
to the Forum account's repo (``FORUM_DID``).

Its credentials are an app password of the Forum account, stored by ``atbb forum
login`` beside the event log, sealed with the members' session key (``SecretBox``,
bound to the row), together with the tokens of the PDS session it opened; or, without
a stored login, ``FORUM_HANDLE`` and ``FORUM_PASSWORD`` from the environment, as the
original atBB takes them.

The agent signs in when the web app starts and keeps itself signed in: an access token
about to expire is refreshed (``refreshSession``); a refresh the PDS refuses (another
process of the appview spent the token first, or it expired) falls back to a new
``createSession`` with the app password; a PDS that cannot be reached is retried with
exponential backoff (1 s doubling to 5 minutes). Its state, in the original's words:

- ``initializing``: not tried yet;
- ``authenticated``: signed in, writes go through;
- ``retrying``: the PDS did not answer; ``next_retry_at`` says when it tries again;
- ``failed``: the PDS refused the credentials (a revoked app password): it waits for
  ``atbb forum login``;
- ``unavailable``: no credentials at all (a read-only forum).

``/api/health`` and ``/admin`` show it. A write asked of an agent that is not
``authenticated`` is refused before anything is sent: 500 when the forum has no
agent at all, 503 (try again) otherwise, as the original answers."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp

from appview.auth import app_password
from appview.auth.errors import AuthError, ServerRefused, SessionExpired
from appview.auth.identity import NetworkIdentity, is_did, normalise_handle
from appview.auth.pds_session import PdsSession
from appview.auth.secret_box import SecretBox, SecretBoxError
from appview.auth.session_store import StoredSession
from appview.auth.transport import DpopNonces, TransportError
from appview.clock import Clock
from appview.handles import HandleResolver
from appview.settings import Settings
from appview.side_db import make_side_tables, side_transaction
from appview.writes.errors import WriteError
from appview.writes.writer import RepoSession

log = logging.getLogger(__name__)

AgentStatus = Literal["initializing", "authenticated", "retrying", "failed", "unavailable"]
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 300.0
_ROW = "forum-agent"  # the sealed row's key, and what the ciphertext is bound to

_SCHEMA = ("CREATE TABLE IF NOT EXISTS forum_agent (name TEXT PRIMARY KEY, did TEXT NOT NULL,"
           " updated_at DOUBLE PRECISION NOT NULL, sealed TEXT NOT NULL)",)


class NoForumAgent(WriteError):
    """The appview has no credentials of the Forum account: it cannot write the forum's
    records (``atbb forum login``)."""

    status = 500
    code = "ForumAgentUnavailable"


class ForumAgentNotReady(WriteError):
    """The agent is not signed in now (retrying, or its credentials were refused)."""

    status = 503
    code = "ForumAgentNotAuthenticated"


class ForumLoginError(Exception):
    """``atbb forum login`` could not sign the Forum account in; the message says why."""


@dataclass(frozen=True)
class ForumLogin:
    """What is stored (sealed): the app password and the session opened with it."""

    did: str
    handle: str | None
    pds_url: str
    identifier: str
    password: str
    access_jwt: str
    refresh_jwt: str

    def to_json(self) -> dict[str, Any]:
        return {"did": self.did, "handle": self.handle, "pds_url": self.pds_url,
                "identifier": self.identifier, "password": self.password,
                "access_jwt": self.access_jwt, "refresh_jwt": self.refresh_jwt}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> ForumLogin:
        handle = data.get("handle")
        return ForumLogin(str(data["did"]), handle if isinstance(handle, str) else None,
                          str(data["pds_url"]), str(data["identifier"]),
                          str(data["password"]), str(data["access_jwt"]),
                          str(data["refresh_jwt"]))


class ForumCredentials:
    """The sealed row of the Forum account's login, beside the event log (kept across
    rebuilds and restarts). ``box`` seals it: the members' session key."""

    def __init__(self, settings: Settings, box: Callable[[], SecretBox]) -> None:
        self._settings = settings
        self._box = box
        self._ready = False

    def _tables(self) -> None:
        if not self._ready:
            make_side_tables(self._settings, _SCHEMA)
            self._ready = True

    def load(self) -> ForumLogin | None:
        """The stored login; None when there is none, or it no longer opens (a key
        dropped from SESSION_ENCRYPTION_KEY: log in again)."""
        self._tables()
        with side_transaction(self._settings) as execute:
            rows = execute("SELECT sealed FROM forum_agent WHERE name = ?", (_ROW,))
        if not rows:
            return None
        try:
            data = json.loads(self._box().open(str(rows[0][0]), bound_to=_ROW))
            return ForumLogin.from_json(data)
        except (SecretBoxError, ValueError, KeyError, TypeError) as exc:
            log.warning("the stored Forum account login does not open (%s): run `atbb"
                        " forum login` again", exc)
            return None

    def save(self, login: ForumLogin, now: float) -> None:
        self._tables()
        sealed = self._box().seal(json.dumps(login.to_json(), sort_keys=True).encode(),
                                  bound_to=_ROW)
        with side_transaction(self._settings) as execute:
            execute("INSERT INTO forum_agent (name, did, updated_at, sealed) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET did = excluded.did,"
                    " updated_at = excluded.updated_at, sealed = excluded.sealed",
                    (_ROW, login.did, now, sealed))

    def forget(self) -> bool:
        self._tables()
        with side_transaction(self._settings) as execute:
            rows = execute("DELETE FROM forum_agent WHERE name = ? RETURNING name", (_ROW,))
        return bool(rows)


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


class ForumAgent:
    """The Forum account's session (module doc). One per process, built by bootstrap;
    tests hand it a ``RepoSession`` of their own with :meth:`use`."""

    def __init__(self, settings: Settings, clock: Clock, credentials: ForumCredentials, *,
                 rng: random.Random | None = None) -> None:
        self._settings = settings
        self._clock = clock
        self._credentials = credentials
        self._rng = rng or random.Random()
        self._http: aiohttp.ClientSession | None = None
        self._nonces = DpopNonces()
        self._login: ForumLogin | None = None
        self._session: RepoSession | None = None
        self._lock = asyncio.Lock()
        self.status: AgentStatus = "initializing"
        self.error: str | None = None
        self.retry_count = 0
        self.last_auth_attempt: float | None = None
        self.next_retry_at: float | None = None
        self._version = 1

    # -- what others read --------------------------------------------------------------

    @property
    def did(self) -> str:
        return self._settings.forum_did

    @property
    def authenticated(self) -> bool:
        return self.status == "authenticated" and self._session is not None

    def health(self) -> dict[str, Any]:
        """``services.forumAgent`` of /api/health: the original's fields (no secrets,
        no DID, no handle; the error is the caller's to redact)."""
        body: dict[str, Any] = {"status": self.status, "authenticated": self.authenticated}
        if self.last_auth_attempt is not None:
            body["last_auth_attempt"] = _iso(self.last_auth_attempt)
        if self.status == "retrying":
            body["retry_count"] = self.retry_count
            body["next_retry_at"] = _iso(self.next_retry_at)
        if self.error is not None and self.status in ("retrying", "failed"):
            body["error"] = self.error
        return body

    def session(self) -> RepoSession:
        """The session that writes the forum's records; raises ``NoForumAgent`` (500) or
        ``ForumAgentNotReady`` (503) before anything is sent."""
        if self._session is not None and self.status == "authenticated":
            return self._session
        if self.status == "unavailable":
            raise NoForumAgent("This appview holds no credentials of the Forum account:"
                               " the operator runs `atbb forum login`.")
        detail = f" ({self.error})" if self.error else ""
        raise ForumAgentNotReady(f"The Forum account's agent is {self.status}{detail}:"
                                 " nothing was written; try again shortly.")

    def use(self, session: RepoSession) -> None:
        """Write through ``session`` from now on (tests, and a caller holding one)."""
        self._session = session
        self._set("authenticated", None)

    # -- signing in ----------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock.now_us() / 1e6

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _set(self, status: AgentStatus, error: str | None) -> None:
        if status != self.status:
            log.info("Forum account's agent: %s%s", status, f" ({error})" if error else "")
        self.status = status
        self.error = error
        if status != "retrying":
            self.retry_count = 0
            self.next_retry_at = None

    async def _pds_of(self, identifier: str, pds_url: str | None) -> tuple[str, str, str | None]:
        """(did, pds_url, handle) of what the operator named."""
        http = self._client()
        identity = NetworkIdentity(self._settings, http, HandleResolver(self._settings, http))
        value = identifier.strip()
        if is_did(value):
            did = value
        else:
            handle = normalise_handle(value)
            if handle is None:
                raise ForumLoginError(f"{value!r} is not a handle or a DID")
            did = await identity.resolve_handle(handle)
        if pds_url:
            return did, pds_url, None
        resolved = await identity.resolve_did(did, fresh=True)
        return did, resolved.pds_url, resolved.handle

    async def login(self, identifier: str, password: str, *,
                    pds_url: str | None = None) -> ForumLogin:
        """Sign the Forum account in with an app password, store the login sealed and
        start writing through it. Refuses any account but FORUM_DID."""
        try:
            did, url, handle = await self._pds_of(identifier, pds_url)
            if self.did and did != self.did:
                raise ForumLoginError(f"{identifier} is {did}, not the Forum account"
                                      f" FORUM_DID={self.did}")
            tokens = await app_password.create_session(self._client(), url, did, password)
        except TransportError:
            raise  # the PDS did not answer: the caller retries
        except AuthError as exc:
            raise ForumLoginError(str(exc)) from exc
        if tokens.did != did:
            raise ForumLoginError(f"{url} signed in {tokens.did}, not {did}")
        login = ForumLogin(did, handle or tokens.handle, url, identifier.strip(), password,
                           tokens.access_jwt, tokens.refresh_jwt)
        await asyncio.to_thread(self._credentials.save, login, self._now())
        self._adopt(login)
        return login

    async def logout(self) -> bool:
        """Forget the stored login (and end its session at the PDS, best effort)."""
        login = self._login or await asyncio.to_thread(self._credentials.load)
        if login is not None:
            await app_password.delete_session(self._client(), login.pds_url, login.refresh_jwt)
        self._login = None
        self._session = None
        self._set("unavailable", None)
        return await asyncio.to_thread(self._credentials.forget)

    def _adopt(self, login: ForumLogin) -> None:
        self._login = login
        self._version += 1
        stored = StoredSession(_ROW, login.did, "password", login.handle, login.pds_url,
                               self._now(), float("inf"), self._version,
                               {"access_jwt": login.access_jwt,
                                "refresh_jwt": login.refresh_jwt})
        self._session = PdsSession(stored, http=self._client(), clock=self._clock,
                                   nonces=self._nonces, refresher=self)
        self._set("authenticated", None)

    def _configured(self) -> tuple[str, str] | None:
        handle, password = self._settings.forum_handle, self._settings.forum_password
        return (handle, password) if handle and password else None

    async def start(self) -> AgentStatus:
        """One attempt to be signed in: the stored login (its tokens refreshed, else a
        new session with its app password), else FORUM_HANDLE / FORUM_PASSWORD."""
        async with self._lock:
            if self.authenticated:
                return self.status
            self.last_auth_attempt = self._now()
            login = await asyncio.to_thread(self._credentials.load)
            configured = self._configured()
            if login is None and configured is None:
                self._set("unavailable", None)
                return self.status
            try:
                if login is not None:
                    fresh = await self._renew(login)
                    await asyncio.to_thread(self._credentials.save, fresh, self._now())
                    self._adopt(fresh)
                else:
                    assert configured is not None
                    await self.login(*configured)
            except (ServerRefused, ForumLoginError) as exc:
                refused = not isinstance(exc, ServerRefused) or exc.status in (400, 401, 403)
                if refused and not _unreachable(exc):
                    self._session = None
                    self._set("failed", str(exc))
                else:
                    self._retry_later(str(exc))
            except AuthError as exc:  # TransportError: the PDS did not answer
                self._retry_later(str(exc))
            return self.status

    def _retry_later(self, error: str) -> None:
        self._session = None
        self._set("retrying", error)
        self.retry_count += 1
        delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (self.retry_count - 1))
        self.next_retry_at = self._now() + delay * (0.5 + self._rng.random() / 2)

    async def run(self, stop: asyncio.Event) -> None:
        """Sign in and keep trying while the PDS does not answer, until ``stop``."""
        while not stop.is_set():
            try:
                status = await self.start() if not self.authenticated else self.status
            except Exception as exc:  # the database, say: the agent must not die of it
                log.exception("the Forum account's agent could not sign in")
                self._retry_later(f"{type(exc).__name__}: {exc}")
                status = self.status
            if status == "retrying" and self.next_retry_at is not None:
                wait = max(0.05, self.next_retry_at - self._now())
            else:
                wait = 60.0  # a stored login may appear (`atbb forum login` elsewhere)
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                continue

    async def _renew(self, login: ForumLogin) -> ForumLogin:
        """New tokens: refreshSession, else createSession with the app password."""
        http = self._client()
        try:
            fresh = await app_password.refresh_session(http, login.pds_url, login.refresh_jwt)
        except ServerRefused as exc:
            if exc.status not in (400, 401):
                raise
            fresh = await app_password.create_session(http, login.pds_url, login.did,
                                                      login.password)
        return ForumLogin(login.did, login.handle or fresh.handle, login.pds_url,
                          login.identifier, login.password, fresh.access_jwt,
                          fresh.refresh_jwt)

    # -- the Refresher port of PdsSession ------------------------------------------------

    async def refresh(self, session: StoredSession) -> StoredSession:
        login = self._login
        if login is None:
            raise SessionExpired("the Forum account's agent is signed out")
        async with self._lock:
            current = self._login
            if current is not None and current is not login:
                login = current  # refreshed meanwhile by another write
            else:
                try:
                    login = await self._renew(login)
                except ServerRefused as exc:
                    self._session = None
                    self._set("failed", str(exc))
                    raise SessionExpired(f"the Forum account's session: {exc}") from exc
                await asyncio.to_thread(self._credentials.save, login, self._now())
                self._login = login
        self._version += 1
        return StoredSession(_ROW, login.did, "password", login.handle, login.pds_url,
                             session.created_at, session.expires_at, self._version,
                             {"access_jwt": login.access_jwt, "refresh_jwt": login.refresh_jwt})

    async def forget(self, session: StoredSession) -> None:
        self._session = None
        self._set("failed", "the PDS no longer accepts the Forum account's tokens")


def _unreachable(exc: Exception) -> bool:
    """A login error that is the network's fault (an identity look-up that timed out)."""
    text = str(exc).lower()
    return any(word in text for word in ("timeout", "timed out", "cannot connect",
                                         "connection refused", "unreachable"))
