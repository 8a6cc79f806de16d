"""Admin bearer tokens, until the web has AT Protocol sign-in.

`atbb admin token create --did DID` issues a token for a DID; what the token may do is
decided on every request by the DID's role in the read models, so revoking a role takes
effect at once. Tokens live hashed (SHA-256) in the event-log database, beside the log
and not in the read models, which are thrown away on every rebuild. The same table set
keeps the secret that signs web sessions, so every web process of one appview shares it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appview.clock import Clock
from appview.settings import Settings
from appview.side_db import Execute, SideDatabase

TOKEN_PREFIX = "atbb_"
# A resolved token is trusted this long before the table is asked again (revocation
# reaches every process within it).
CACHE_SECONDS = 5.0
# How many presented tokens are remembered, live ones and unknown ones apart: anyone can
# make up tokens, so the unknown are bounded on their own and can never push a live
# token out. The least recently used entry goes first.
KNOWN_CACHE_SIZE = 256
UNKNOWN_CACHE_SIZE = 1024

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS admin_tokens ("
    " id TEXT PRIMARY KEY, did TEXT NOT NULL, label TEXT NOT NULL,"
    " token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked_at TEXT)",
    "CREATE TABLE IF NOT EXISTS admin_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


@dataclass(frozen=True)
class AdminToken:
    id: str
    did: str
    label: str
    created_at: str
    revoked_at: str | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class _Recent:
    """The results of the last ``size`` digests looked up, each with its monotonic time;
    the least recently used is dropped first. Not thread-safe: the caller locks."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[float, AdminToken | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str, now: float) -> tuple[AdminToken | None] | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if now - entry[0] >= CACHE_SECONDS:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return (entry[1],)

    def put(self, digest: str, now: float, record: AdminToken | None) -> None:
        self._entries[digest] = (now, record)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def drop(self, digest: str) -> None:
        self._entries.pop(digest, None)

    def clear(self) -> None:
        self._entries.clear()


class AdminTokens:
    """Issue, resolve, list and revoke admin tokens; hand out the session secret."""

    def __init__(self, settings: Settings, clock: Clock, *,
                 cache_sizes: tuple[int, int] = (KNOWN_CACHE_SIZE, UNKNOWN_CACHE_SIZE),
                 side: SideDatabase | None = None) -> None:
        self._settings = settings
        self._side = side or SideDatabase(settings)
        self._clock = clock
        self._lock = threading.Lock()
        self._known = _Recent(cache_sizes[0])
        self._unknown = _Recent(cache_sizes[1])
        self._secret: bytes | None = None
        with self._connection() as execute:
            for statement in _SCHEMA:
                execute(statement, ())

    # -- storage ------------------------------------------------------------------------

    def _connection(self) -> AbstractContextManager[Execute]:
        return self._side.transaction()

    def _now(self) -> str:
        when = datetime.fromtimestamp(self._clock.now_us() / 1e6, UTC)
        return when.isoformat(timespec="seconds").replace("+00:00", "Z")

    # -- tokens -------------------------------------------------------------------------

    def issue(self, did: str, label: str = "") -> tuple[AdminToken, str]:
        """A new token for ``did``: the record, and the secret shown once."""
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        record = AdminToken(token_id, did, label, self._now(), None)
        with self._connection() as execute:
            execute("INSERT INTO admin_tokens (id, did, label, token_hash, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (record.id, did, label, token_hash(token), record.created_at))
        return record, token

    def resolve(self, token: str) -> AdminToken | None:
        """The live token record for a presented token; None if unknown or revoked."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = token_hash(token)
        now = time.monotonic()
        with self._lock:
            cached = self._known.get(digest, now) or self._unknown.get(digest, now)
        if cached is not None:
            return cached[0]
        with self._connection() as execute:
            rows = execute("SELECT id, did, label, created_at, revoked_at FROM admin_tokens"
                           " WHERE token_hash = ?", (digest,))
        record = _record(rows[0]) if rows and rows[0][4] is None else None
        with self._lock:
            # a token issued since it was looked up must not stay unknown in the other
            (self._unknown if record is None else self._known).put(digest, now, record)
            (self._known if record is None else self._unknown).drop(digest)
        return record

    def cached(self) -> tuple[int, int]:
        """How many live and how many unknown tokens are remembered."""
        with self._lock:
            return len(self._known), len(self._unknown)

    def by_id(self, token_id: str) -> AdminToken | None:
        """The live (unrevoked) token with this id: a web session names its token."""
        with self._connection() as execute:
            rows = execute("SELECT id, did, label, created_at, revoked_at FROM admin_tokens"
                           " WHERE id = ? AND revoked_at IS NULL", (token_id,))
        return _record(rows[0]) if rows else None

    def list(self) -> list[AdminToken]:
        with self._connection() as execute:
            rows = execute("SELECT id, did, label, created_at, revoked_at FROM admin_tokens"
                           " ORDER BY created_at, id", ())
        return [_record(row) for row in rows]

    def revoke(self, token_id: str) -> bool:
        """Revoke a token by id; False when there is no live token with that id."""
        with self._connection() as execute:
            rows = execute("UPDATE admin_tokens SET revoked_at = ? WHERE id = ?"
                           " AND revoked_at IS NULL RETURNING id", (self._now(), token_id))
        with self._lock:
            self._known.clear()
        return bool(rows)

    # -- the web session secret ---------------------------------------------------------

    def session_secret(self) -> bytes:
        """SESSION_SECRET when set; else one generated at first use and kept in the
        database, so every web process (and every restart) signs the same sessions."""
        if self._settings.session_secret:
            return self._settings.session_secret.encode()
        if self._secret is None:
            candidate = secrets.token_hex(32)
            with self._connection() as execute:
                execute("INSERT INTO admin_secrets (name, value) VALUES ('session', ?)"
                        " ON CONFLICT (name) DO NOTHING", (candidate,))
                rows = execute("SELECT value FROM admin_secrets WHERE name = 'session'", ())
            self._secret = str(rows[0][0]).encode()
        return self._secret

    def sign(self, message: str) -> str:
        return hmac.new(self.session_secret(), message.encode(), hashlib.sha256).hexdigest()


def _record(row: tuple[Any, ...]) -> AdminToken:
    return AdminToken(str(row[0]), str(row[1]), str(row[2]), str(row[3]),
                      None if row[4] is None else str(row[4]))
