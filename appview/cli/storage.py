"""Is the configured storage there? Asked once, by the group, before a command runs.

A wrong ``DATABASE_URL`` would otherwise surface deep in the connection pool, after its
10 s timeout, as a traceback that hides the cause. Here one direct connection with a
short timeout names what is wrong in one line (no such database, role or host, refused,
authentication failed), never the password, and the command exits with status 2.

SQLite: atbb creates the file or folder it is told to use, never the folders above it.
``DATA_DIR`` (default ``./data``) is made when missing if the folder it sits in exists; a
file named by ``DATABASE_URL=sqlite:///PATH`` is made if its folder exists. A missing
folder above is a typo more often than a wish, so it is refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

import click

from appview.settings import Settings
from events.store_postgres import DEFAULT_PORT, redact

# Long enough for a server across a network, short enough that a typo fails at once.
CONNECT_TIMEOUT_SECONDS = 3


class StorageUnavailable(click.ClickException):
    """The configured storage cannot be used; printed as one line, exit status 2."""

    exit_code = 2


class StandaloneCommand(click.Command):
    """A command that opens no storage of ``DATABASE_URL`` or ``DATA_DIR`` (the devnet
    has none; the demo and a replay make their own): the group does not check it."""


def check_storage(settings: Settings) -> None:
    """Raise StorageUnavailable unless the event log's database answers (PostgreSQL) or
    its files can be made where they are asked for (SQLite)."""
    if settings.is_postgres:
        _check_postgres(settings.event_log_url)
    else:
        _check_sqlite(settings)


def _check_sqlite(settings: Settings) -> None:
    if settings.database_url:
        path = settings.database_url.removeprefix("sqlite:///")
        where = f"DATABASE_URL={settings.database_url}"
        if not path:
            raise StorageUnavailable(f"{where} names no file: use sqlite:///PATH")
        if path != ":memory:":
            file = Path(path)
            if file.is_dir():
                raise StorageUnavailable(f"{where} names a folder, not a database file")
            if not file.parent.is_dir():
                raise StorageUnavailable(
                    f"{where}: the folder {file.parent} does not exist (atbb creates the "
                    "database file, not the folders above it)")
    data_dir = settings.data_dir
    if data_dir.exists() and not data_dir.is_dir():
        raise StorageUnavailable(f"DATA_DIR={data_dir} is a file, not a folder")
    if not data_dir.exists() and not data_dir.absolute().parent.is_dir():
        raise StorageUnavailable(
            f"DATA_DIR={data_dir}: the folder {data_dir.absolute().parent} does not exist "
            "(atbb creates DATA_DIR, not the folders above it)")


def _check_postgres(url: str) -> None:
    import psycopg  # only a PostgreSQL deployment pays for it

    shown = f"DATABASE_URL={redact(url)}"
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise StorageUnavailable(f"{shown}: the port is not a number") from None
    host = parts.hostname or "127.0.0.1"
    # The same shape the event log's store demands (events.store_postgres).
    if "host=" in parts.query or host.startswith("/"):
        raise StorageUnavailable(f"{shown}: the event log connects over TCP only; give "
                                 "host:port")
    dbname, user = unquote(parts.path.lstrip("/")), unquote(parts.username or "")
    if not dbname:
        raise StorageUnavailable(f"{shown}: no database name (postgresql://user@host:port/db)")
    if not user:
        raise StorageUnavailable(f"{shown}: no user (postgresql://user@host:port/db)")
    try:
        psycopg.connect(host=host, port=port, dbname=dbname, user=user,
                        password=unquote(parts.password or ""),
                        connect_timeout=CONNECT_TIMEOUT_SECONDS).close()
    except psycopg.Error as exc:
        raise StorageUnavailable(
            f"{shown}: {_reason(str(exc), parts, host, port, dbname, user)}") from None


def _reason(message: str, parts: SplitResult, host: str, port: int, dbname: str,
            user: str) -> str:
    """What libpq's message means, in a few words."""
    lowered = message.lower()
    if re.search(r'database ".*" does not exist', lowered):
        return f'no such database "{dbname}"'
    if re.search(r'role ".*" does not exist', lowered):
        return f'no such role "{user}"'
    if "password authentication failed" in lowered or "authentication failed" in lowered:
        return f'authentication failed for role "{user}" (wrong password?)'
    if "no password supplied" in lowered:
        return f'role "{user}" needs a password and the URL gives none'
    if "pg_hba.conf" in lowered:
        return f'the server does not let role "{user}" in from here (pg_hba.conf)'
    if ("resolve host" in lowered or "translate host name" in lowered
            or "name or service not known" in lowered):
        return f'unknown host "{host}"'
    if "connection refused" in lowered:
        return f"connection refused by {host}:{port} (is PostgreSQL listening there?)"
    if "timeout expired" in lowered or "timed out" in lowered:
        return f"no answer from {host}:{port} within {CONNECT_TIMEOUT_SECONDS} s"
    # Anything else: libpq's own words, on one line, without the password.
    text = " ".join(message.split())
    if parts.password:
        text = text.replace(unquote(parts.password), "***").replace(parts.password, "***")
    return text
