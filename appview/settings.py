"""Every setting the appview reads, in one typed object, read once at startup.

Settings come from the environment (and CLI flags that override it); nothing reads the
environment anywhere else. ``SETTINGS_DOC`` names each one with its meaning; a test checks
that each is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_JETSTREAM_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
DEFAULT_PLC_URL = "https://plc.directory"
DEFAULT_FIREHOSE_URL = "wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos"
INGEST_SOURCES = ("jetstream", "firehose")


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite under data_dir
    database_schema: str = "public"
    forum_did: str = ""
    # the Forum account's app password when no `atbb forum login` is stored
    forum_handle: str = ""
    forum_password: str = field(default="", repr=False)
    jetstream_url: str = DEFAULT_JETSTREAM_URL
    jetstream_compress: bool = False
    jetstream_heartbeat_seconds: float = 10.0
    ingest_source: str = "jetstream"  # jetstream | firehose
    firehose_url: str = DEFAULT_FIREHOSE_URL
    plc_url: str = DEFAULT_PLC_URL
    relay_url: str = ""  # empty: full_sync discovers repos on known PDS hosts only
    # development only: see appview/handles.py; empty in production
    handle_resolver_dev_urls: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    ingest_batch_size: int = 500
    ingest_batch_seconds: float = 0.25
    ingest_rewind_seconds: float = 5.0
    projection_batch_size: int = 10_000
    backfill_cursor_max_age_hours: float = 48.0
    backfill_concurrency: int = 10
    backfill_rate_limit: float = 10.0
    page_state_seconds: float = 0.25
    rebuild_worker: str = "auto"  # auto | process | thread
    foreign_read_models: str = "refuse"  # refuse | rebuild
    # empty: generated once and kept in the database; never printed
    session_secret: str = field(default="", repr=False)
    # -- the web server facing clients and proxies (web/forwarded.py, web/server.py) --
    trusted_proxies: str = ""  # comma-separated IPs/CIDRs; empty: believe no proxy
    request_read_timeout: float = 20.0
    # -- members' sign-in (appview/auth, docs/auth.md) --
    # empty: the loopback OAuth client of development; https: the confidential client
    public_url: str = ""
    oauth_client_keys: str = field(default="", repr=False)
    # empty: generated once and kept in the database (docs/auth.md weighs it)
    session_encryption_key: str = field(default="", repr=False)
    member_session_days: float = 30.0
    # -- running it (docs/operations.md) --
    metrics_port: int = 0  # 0: no metrics listener
    metrics_host: str = "127.0.0.1"
    log_format: str = "text"  # text | json
    # -- members' writes (appview/writes, docs/writing.md) --
    writes_per_minute: int = 30
    # -- the log handed out (web/api/admin_events.py, docs/replay.md) --
    events_api_public: bool = False
    avatar_refresh_hours: float = 24.0
    avatar_max_bytes: int = 1_000_000

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network,
                                              ...]:
        """TRUSTED_PROXIES parsed; raises ValueError naming a bad entry."""
        return tuple(ipaddress.ip_network(item.strip(), strict=False)
                     for item in self.trusted_proxies.split(",") if item.strip())

    @property
    def event_log_url(self) -> str:
        """Where the event log lives: DATABASE_URL, else a SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'events.sqlite3').resolve()}"

    @property
    def is_postgres(self) -> bool:
        return self.event_log_url.startswith(("postgresql://", "postgres://"))

    @property
    def read_model_url(self) -> str:
        """Where read-model generations live: the same PostgreSQL database (one schema
        per generation), or a directory of SQLite files under data_dir."""
        if self.is_postgres:
            return self.event_log_url
        return f"sqlite:///{(self.data_dir / 'readmodels').resolve()}"

    @property
    def ingest_cursor_source(self) -> str:
        """The name the ingest source's cursor is stored under: each source keeps its
        own (a Jetstream time and a firehose seq never stand for each other)."""
        return "firehose" if self.ingest_source == "firehose" else "jetstream"

    @property
    def ingest_url(self) -> str:
        return self.firehose_url if self.ingest_source == "firehose" else self.jetstream_url

    @property
    def handle_resolver_dev_url_list(self) -> list[str]:
        return [u.strip().rstrip("/") for u in self.handle_resolver_dev_urls.split(",")
                if u.strip()]

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the given fields changed (None values are ignored), for CLI flags."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# Environment variable -> (field name, meaning). Order is the documentation's order.
SETTINGS_DOC: dict[str, tuple[str, str]] = {
    "DATA_DIR": ("data_dir", "Directory of the embedded SQLite files (default ./data)."),
    "DATABASE_URL": (
        "database_url",
        "postgresql://user@host:port/db to use PostgreSQL; empty for embedded SQLite.",
    ),
    "DATABASE_SCHEMA": (
        "database_schema",
        "PostgreSQL schema of the event log (default public); generations get their own.",
    ),
    "FORUM_DID": ("forum_did", "DID of the Forum account; forum-owned records count only from it."),
    "FORUM_HANDLE": (
        "forum_handle",
        "Handle (or DID) of the Forum account, signed in with FORUM_PASSWORD when no"
        " `atbb forum login` is stored (empty: use the stored login only).",
    ),
    "FORUM_PASSWORD": (
        "forum_password",
        "An app password of the Forum account, with FORUM_HANDLE; never printed. Prefer"
        " `atbb forum login`, which keeps it sealed in the database.",
    ),
    "JETSTREAM_URL": ("jetstream_url", "Jetstream v1 /subscribe websocket URL."),
    "JETSTREAM_COMPRESS": ("jetstream_compress", "Ask Jetstream for zstd-compressed frames."),
    "JETSTREAM_HEARTBEAT_SECONDS": (
        "jetstream_heartbeat_seconds",
        "Seconds of silence on the stream before a ping; no answer within half of it"
        " ends the connection as dead and it reconnects (a quiet stream is normal).",
    ),
    "INGEST_SOURCE": (
        "ingest_source",
        "Where live ingest and catch_up read the network: jetstream (default; JSON from a"
        " Jetstream host) or firehose (signed commits from a relay's or a PDS's"
        " subscribeRepos, each verified; docs/ingest.md says how to choose).",
    ),
    "FIREHOSE_URL": (
        "firehose_url",
        "com.atproto.sync.subscribeRepos websocket URL of a relay or a PDS"
        " (INGEST_SOURCE=firehose).",
    ),
    "PLC_URL": ("plc_url", "PLC directory used to resolve did:plc identities."),
    "RELAY_URL": (
        "relay_url",
        "Relay whose com.atproto.sync.listReposByCollection full_sync asks for the repos"
        " holding forum records, beside the known PDS hosts (empty: hosts only).",
    ),
    "HANDLE_RESOLVER_DEV_URLS": (
        "handle_resolver_dev_urls",
        "Development only, empty in production: comma-separated http(s) base URLs asked"
        " for /.well-known/atproto-did with the handle as the Host header, instead of"
        " https://<handle>/ and the _atproto DNS record (a warning is logged when used).",
    ),
    "HOST": ("host", "Address the web server listens on (default 127.0.0.1)."),
    "PORT": ("port", "Port the web server listens on (default 8080)."),
    "LOG_LEVEL": ("log_level", "Python logging level name (default INFO)."),
    "INGEST_BATCH_SIZE": ("ingest_batch_size", "Most events per ingest transaction."),
    "INGEST_BATCH_SECONDS": (
        "ingest_batch_seconds",
        "Longest wait before a partial ingest batch is committed.",
    ),
    "INGEST_REWIND_SECONDS": (
        "ingest_rewind_seconds",
        "How far before the stored cursor ingest resumes (re-deliveries are harmless).",
    ),
    "PROJECTION_BATCH_SIZE": ("projection_batch_size", "Events per projection transaction."),
    "BACKFILL_CURSOR_MAX_AGE_HOURS": (
        "backfill_cursor_max_age_hours",
        "A cursor older than this triggers catch_up in gap detection (default 48).",
    ),
    "BACKFILL_CONCURRENCY": ("backfill_concurrency", "Repos fetched at once by full_sync."),
    "BACKFILL_RATE_LIMIT": ("backfill_rate_limit", "Requests per second per PDS host."),
    "REBUILD_WORKER": (
        "rebuild_worker",
        "Where a rebuild replays the log: process (a child process with a core of its"
        " own), thread (in the appview's process), or auto (default: a process for a log"
        " of 20,000 events or more, and for the rebuild that follows a full_sync).",
    ),
    "FOREIGN_READ_MODELS": (
        "foreign_read_models",
        "What to do at startup with read models built from another event log (a data"
        " folder copied between appviews, a log restored from an older copy): refuse"
        " (default: say so and exit) or rebuild (from this log, before serving).",
    ),
    "PAGE_STATE_SECONDS": (
        "page_state_seconds",
        "How long pages reuse the read models' positions and bans for their ETags when"
        " this process wrote nothing (another process's writes show within it); 0: never.",
    ),
    "SESSION_SECRET": (
        "session_secret",
        "Key that signs web sign-in cookies and CSRF tokens; empty: generated and stored.",
    ),
    "TRUSTED_PROXIES": (
        "trusted_proxies",
        "Comma-separated IPs/CIDRs of reverse proxies whose Forwarded / X-Forwarded-*"
        " headers are believed (scheme, host, client); empty: none.",
    ),
    "REQUEST_READ_TIMEOUT": (
        "request_read_timeout",
        "Seconds a client may take to send a request's head (from the connection's opening"
        " or the previous response; idle keep-alive connections close after it too), and"
        " then again a form's body.",
    ),
    "PUBLIC_URL": (
        "public_url",
        "The forum's public https origin (https://forum.example): members sign in through"
        " the confidential OAuth client PUBLIC_URL/oauth/client-metadata.json. Empty (or"
        " http://127.0.0.1:PORT): the loopback development client.",
    ),
    "OAUTH_CLIENT_KEYS": (
        "oauth_client_keys",
        "The confidential client's private ES256 keys, a JSON JWK set, each with a kid;"
        " the first signs, all are published at /oauth/jwks.json. Needed with an https"
        " PUBLIC_URL.",
    ),
    "SESSION_ENCRYPTION_KEY": (
        "session_encryption_key",
        "Comma-separated base64url 32-byte keys sealing members' tokens and DPoP keys at"
        " rest (the first seals, all open); empty: one generated and kept in the database.",
    ),
    "MEMBER_SESSION_DAYS": (
        "member_session_days",
        "Days a member stays signed in (default 30); the PDS may end it sooner.",
    ),
    "METRICS_PORT": (
        "metrics_port",
        "Port of the Prometheus /metrics listener, apart from the public port (worker i of"
        " `atbb serve --workers N` listens on METRICS_PORT + i); 0 (default): none.",
    ),
    "METRICS_HOST": (
        "metrics_host",
        "Address the metrics listener binds (default 127.0.0.1: only this machine).",
    ),
    "LOG_FORMAT": (
        "log_format",
        "text (default) or json: one JSON object per log line (time, level, logger,"
        " message, pid, worker, exception).",
    ),
    "WRITES_PER_MINUTE": (
        "writes_per_minute",
        "Most writes (posts, edits, deletes, reactions) one member may make in any 60"
        " seconds through this appview process; more are answered 429 with Retry-After.",
    ),
    "EVENTS_API_PUBLIC": (
        "events_api_public",
        "Serve only the public view of the log at /api/admin/events (as ?public=1):"
        " no invalid records' reasons, source cursors or rejected commits.",
    ),
    "AVATAR_REFRESH_HOURS": (
        "avatar_refresh_hours",
        "Hours a member's cached avatar (or the verdict that they have none) is kept"
        " before their PDS is asked again (default 24); network failures are retried"
        " sooner.",
    ),
    "AVATAR_MAX_BYTES": (
        "avatar_max_bytes",
        "Largest avatar image fetched and cached, in bytes (default 1000000); larger"
        " ones show the initials.",
    ),
}

REBUILD_WORKERS = ("auto", "process", "thread")
LOG_FORMATS = ("text", "json")
FOREIGN_READ_MODELS = ("refuse", "rebuild")

_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def _convert(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            lowered = raw.strip().lower()
            if lowered in _BOOL_TRUE:
                return True
            if lowered in _BOOL_FALSE:
                return False
            raise ValueError(f"not a boolean: {raw!r}")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from None
    return raw


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    defaults = Settings()
    values: dict[str, Any] = {}
    for var, (attr, _meaning) in SETTINGS_DOC.items():
        if var in env:
            values[attr] = _convert(var, env[var], getattr(defaults, attr))
    settings = replace(defaults, **values)
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    url = settings.event_log_url
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise SettingsError(
            f"DATABASE_URL={settings.database_url!r}: expected postgresql://... or empty"
        )
    if settings.relay_url and not settings.relay_url.startswith(("http://", "https://")):
        raise SettingsError(f"RELAY_URL={settings.relay_url!r}: expected an http(s):// URL")
    for url in settings.handle_resolver_dev_url_list:
        if not url.startswith(("http://", "https://")):
            raise SettingsError(
                f"HANDLE_RESOLVER_DEV_URLS={settings.handle_resolver_dev_urls!r}: {url!r} is"
                " not an http(s):// URL")
    if settings.forum_did and not settings.forum_did.startswith("did:"):
        raise SettingsError(f"FORUM_DID={settings.forum_did!r}: not a DID")
    for name, value in (
        ("INGEST_BATCH_SIZE", settings.ingest_batch_size),
        ("PROJECTION_BATCH_SIZE", settings.projection_batch_size),
        ("BACKFILL_CONCURRENCY", settings.backfill_concurrency),
        ("WRITES_PER_MINUTE", settings.writes_per_minute),
        ("AVATAR_MAX_BYTES", settings.avatar_max_bytes),
    ):
        if value < 1:
            raise SettingsError(f"{name}={value}: must be at least 1")
    if settings.rebuild_worker not in REBUILD_WORKERS:
        raise SettingsError(
            f"REBUILD_WORKER={settings.rebuild_worker!r}: expected one of "
            + ", ".join(REBUILD_WORKERS))
    if not settings.jetstream_heartbeat_seconds > 0:  # also refuses NaN
        raise SettingsError(
            f"JETSTREAM_HEARTBEAT_SECONDS={settings.jetstream_heartbeat_seconds}:"
            " must be more than 0")
    if settings.ingest_source not in INGEST_SOURCES:
        raise SettingsError(
            f"INGEST_SOURCE={settings.ingest_source!r}: expected one of "
            + ", ".join(INGEST_SOURCES))
    if settings.foreign_read_models not in FOREIGN_READ_MODELS:
        raise SettingsError(
            f"FOREIGN_READ_MODELS={settings.foreign_read_models!r}: expected one of "
            + ", ".join(FOREIGN_READ_MODELS))
    if settings.log_format not in LOG_FORMATS:
        raise SettingsError(
            f"LOG_FORMAT={settings.log_format!r}: expected one of " + ", ".join(LOG_FORMATS))
    if not 0 <= settings.metrics_port <= 65535:
        raise SettingsError(f"METRICS_PORT={settings.metrics_port}: expected 0 to 65535")
    if not settings.member_session_days > 0:  # also refuses NaN
        raise SettingsError(
            f"MEMBER_SESSION_DAYS={settings.member_session_days}: must be more than 0")
    if settings.public_url and not settings.public_url.startswith(("https://", "http://")):
        raise SettingsError(f"PUBLIC_URL={settings.public_url!r}: expected https://host")
    if not (settings.avatar_refresh_hours > 0
            and math.isfinite(settings.avatar_refresh_hours)):
        raise SettingsError(
            f"AVATAR_REFRESH_HOURS={settings.avatar_refresh_hours}: must be hours above 0")
    if not settings.page_state_seconds >= 0:  # also refuses NaN
        raise SettingsError(
            f"PAGE_STATE_SECONDS={settings.page_state_seconds}: must be 0 or more"
        )
    try:
        _ = settings.trusted_proxy_networks  # parsed here so a bad entry stops startup
    except ValueError as exc:
        raise SettingsError(f"TRUSTED_PROXIES={settings.trusted_proxies!r}: {exc}") from None
    timeout = settings.request_read_timeout
    if not (timeout > 0 and math.isfinite(timeout)):
        raise SettingsError(f"REQUEST_READ_TIMEOUT={timeout}: must be seconds above 0")
