"""Members' sessions, server-side, in the event-log database beside the other side
tables: one row per session, keyed by the SHA-256 of the opaque id the cookie carries
(so the table alone does not let anyone present a session), with what must stay secret
(tokens, the DPoP private key) sealed by ``SecretBox``. The sign-ins in progress (PKCE
verifier, DPoP key) are kept the same way for ten minutes. Rows outlive restarts; an
expired row is never answered and ``cleanup`` removes it.

The encryption key is SESSION_ENCRYPTION_KEY, or one generated at first use and kept
in ``auth_secrets`` (docs/auth.md weighs the two)."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

from appview.auth.errors import AuthError
from appview.auth.oauth_client import PendingAuthorization
from appview.auth.secret_box import SecretBox, SecretBoxError, new_key_text, parse_keys
from appview.clock import Clock
from appview.settings import Settings
from appview.side_db import Execute, SideDatabase

SessionKind = Literal["oauth", "password"]
PENDING_SECONDS = 600.0
SESSION_ID_PREFIX = "atbbs_"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS auth_sessions (key TEXT PRIMARY KEY, did TEXT NOT NULL,"
    " kind TEXT NOT NULL, handle TEXT, pds_url TEXT NOT NULL,"
    " created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,"
    " version INTEGER NOT NULL, sealed TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS auth_sessions_did ON auth_sessions (did, created_at)",
    "CREATE TABLE IF NOT EXISTS auth_pending (key TEXT PRIMARY KEY,"
    " expires_at DOUBLE PRECISION NOT NULL, sealed TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS auth_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_COLUMNS = "key, did, kind, handle, pds_url, created_at, expires_at, version, sealed"


@dataclass(frozen=True)
class StoredSession:
    key: str  # the row's key: SHA-256 of the session id
    did: str
    kind: SessionKind
    handle: str | None
    pds_url: str
    created_at: float
    expires_at: float
    version: int  # grows with every update (a refresh elsewhere shows as a new version)
    secret: dict[str, Any]


def session_key(session_id: str) -> str:
    return hashlib.sha256(("session|" + session_id).encode()).hexdigest()


def _pending_key(state: str) -> str:
    return hashlib.sha256(("pending|" + state).encode()).hexdigest()


class SessionStore:
    def __init__(self, settings: Settings, clock: Clock, *, lifetime_seconds: float,
                 side: SideDatabase | None = None) -> None:
        self._settings = settings
        self._side = side or SideDatabase(settings)
        self._clock = clock
        self.lifetime_seconds = lifetime_seconds
        with self._connection() as execute:
            for statement in _SCHEMA:
                execute(statement, ())
        configured = parse_keys(settings.session_encryption_key)
        self._box = SecretBox(configured or [self._stored_key()])

    @property
    def box(self) -> SecretBox:
        """What seals the sessions' secrets (the Forum account's login too)."""
        return self._box

    def _connection(self) -> AbstractContextManager[Execute]:
        return self._side.transaction()

    def _now(self) -> float:
        return self._clock.now_us() / 1e6

    def _stored_key(self) -> bytes:
        candidate = new_key_text()
        with self._connection() as execute:
            execute("INSERT INTO auth_secrets (name, value) VALUES ('session_encryption', ?)"
                    " ON CONFLICT (name) DO NOTHING", (candidate,))
            rows = execute("SELECT value FROM auth_secrets WHERE name = 'session_encryption'",
                           ())
        return parse_keys(str(rows[0][0]))[0]

    # -- sessions -----------------------------------------------------------------------

    def create(self, *, did: str, kind: SessionKind, handle: str | None, pds_url: str,
               secret: Mapping[str, Any]) -> tuple[str, StoredSession]:
        """A new session: its opaque id (for the cookie, shown once) and its record."""
        session_id = SESSION_ID_PREFIX + secrets.token_urlsafe(32)
        key = session_key(session_id)
        now = self._now()
        record = StoredSession(key, did, kind, handle, pds_url, now,
                               now + self.lifetime_seconds, 1, dict(secret))
        with self._connection() as execute:
            execute(f"INSERT INTO auth_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, did, kind, handle, pds_url, record.created_at, record.expires_at,
                     1, self._seal(key, secret)))
        return session_id, record

    def get(self, session_id: str) -> StoredSession | None:
        """The live session of a cookie's id; None if unknown, expired or unreadable."""
        if not session_id.startswith(SESSION_ID_PREFIX) or len(session_id) > 100:
            return None
        return self.by_key(session_key(session_id))

    def by_key(self, key: str) -> StoredSession | None:
        with self._connection() as execute:
            rows = execute(f"SELECT {_COLUMNS} FROM auth_sessions WHERE key = ?"
                           " AND expires_at > ?", (key, self._now()))
        return self._record(rows[0]) if rows else None

    def for_did(self, did: str) -> list[StoredSession]:
        """The live sessions of one member, newest first (a member may be signed in from
        several browsers, and by app password for scripts)."""
        with self._connection() as execute:
            rows = execute(f"SELECT {_COLUMNS} FROM auth_sessions WHERE did = ?"
                           " AND expires_at > ? ORDER BY created_at DESC, key",
                           (did, self._now()))
        return [record for record in map(self._record, rows) if record is not None]

    def update(self, session: StoredSession, *, secret: Mapping[str, Any],
               pds_url: str | None = None) -> StoredSession:
        """Store new secrets (refreshed tokens) if nobody else did since ``session`` was
        read; else raise ``StaleSession`` (the caller re-reads and uses the newer ones)."""
        version = session.version + 1
        url = pds_url if pds_url is not None else session.pds_url
        with self._connection() as execute:
            rows = execute("UPDATE auth_sessions SET sealed = ?, version = ?, pds_url = ?"
                           " WHERE key = ? AND version = ? RETURNING key",
                           (self._seal(session.key, secret), version, url, session.key,
                            session.version))
        if not rows:
            raise StaleSession(session.key)
        return StoredSession(session.key, session.did, session.kind, session.handle, url,
                             session.created_at, session.expires_at, version, dict(secret))

    def delete(self, key: str) -> bool:
        with self._connection() as execute:
            rows = execute("DELETE FROM auth_sessions WHERE key = ? RETURNING key", (key,))
        return bool(rows)

    # -- sign-ins in progress -----------------------------------------------------------

    def put_pending(self, pending: PendingAuthorization) -> None:
        key = _pending_key(pending.state)
        sealed = self._seal(key, pending.to_json())
        with self._connection() as execute:
            execute("INSERT INTO auth_pending (key, expires_at, sealed) VALUES (?, ?, ?)",
                    (key, self._now() + PENDING_SECONDS, sealed))

    def take_pending(self, state: str) -> PendingAuthorization | None:
        """The sign-in waiting under ``state``, removed as it is read (a state works
        once); None if there is none or it is too old."""
        if not state or len(state) > 200:
            return None
        key = _pending_key(state)
        with self._connection() as execute:
            rows = execute("DELETE FROM auth_pending WHERE key = ? RETURNING expires_at, sealed",
                           (key,))
        if not rows or float(rows[0][0]) <= self._now():
            return None
        try:
            return PendingAuthorization.from_json(self._open(key, str(rows[0][1])))
        except (SecretBoxError, KeyError, TypeError):
            return None

    # -- housekeeping -------------------------------------------------------------------

    def cleanup(self) -> int:
        """Remove expired sessions and sign-ins; how many rows went."""
        now = self._now()
        with self._connection() as execute:
            gone = execute("DELETE FROM auth_sessions WHERE expires_at <= ? RETURNING key",
                           (now,))
            gone += execute("DELETE FROM auth_pending WHERE expires_at <= ? RETURNING key",
                            (now,))
        return len(gone)

    def _seal(self, key: str, secret: Mapping[str, Any]) -> str:
        return self._box.seal(json.dumps(dict(secret), sort_keys=True).encode(), bound_to=key)

    def _open(self, key: str, sealed: str) -> dict[str, Any]:
        data = json.loads(self._box.open(sealed, bound_to=key))
        if not isinstance(data, dict):
            raise SecretBoxError("the sealed value is not an object")
        return data

    def _record(self, row: tuple[Any, ...]) -> StoredSession | None:
        key = str(row[0])
        try:
            secret = self._open(key, str(row[8]))
        except SecretBoxError:
            return None  # sealed with a key no longer configured: as good as signed out
        kind: SessionKind = "oauth" if row[2] == "oauth" else "password"
        return StoredSession(key, str(row[1]), kind, None if row[3] is None else str(row[3]),
                             str(row[4]), float(row[5]), float(row[6]), int(row[7]), secret)


class StaleSession(AuthError):
    """Another request updated the session first (its refresh won)."""
